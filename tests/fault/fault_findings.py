"""Comparing what the fault tests sent with what the inbox shows, under load and a fault: the findings, waiting
for them to settle, and the outcome each test prints."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from fault_kit import FaultStack, Inbox, OrderLoad, SendLoad
from fault_meta import NUMBER, Customer, Meta, WebhookLoad, new_customers, text_webhook

from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox_testkit.stack import Stack


@dataclass
class Findings:
    inbound_expected: int = 0
    inbound_found: int = 0
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    unread_wrong: list[str] = field(default_factory=list)
    outbound_expected: int = 0
    outbound_found: int = 0
    outbound_missing: list[str] = field(default_factory=list)
    outbound_unsent: list[str] = field(default_factory=list)
    outbound_duplicated: list[str] = field(default_factory=list)
    outbound_unexpected: list[str] = field(default_factory=list)
    stats_wrong: list[str] = field(default_factory=list)

    # The lists above, each a kind of difference between what was sent and what the inbox shows.
    PROBLEMS = ("missing", "unexpected", "duplicated", "unread_wrong", "outbound_missing", "outbound_unsent",
                "outbound_duplicated", "outbound_unexpected", "stats_wrong")

    def problems(self) -> int:
        return sum(len(getattr(self, name)) for name in self.PROBLEMS)

    def report(self, title: str) -> str:
        lines = [f"[{title}] inbound: sent (answered 200) {self.inbound_expected}, found {self.inbound_found}, "
                 f"missing {len(self.missing)}, unexpected {len(self.unexpected)}, "
                 f"duplicated {len(self.duplicated)}; unread counts wrong {len(self.unread_wrong)}",
                 f"[{title}] outbound: sent {self.outbound_expected}, found {self.outbound_found}, "
                 f"missing {len(self.outbound_missing)}, never accepted by Meta {len(self.outbound_unsent)}, "
                 f"duplicated {len(self.outbound_duplicated)}, unexpected {len(self.outbound_unexpected)}; "
                 f"customer stats wrong {len(self.stats_wrong)}",
                 f"[{title}] difference: {self.problems()}"]
        for name in self.PROBLEMS:
            values = getattr(self, name)
            if values:
                lines.append(f"  {name}: {values[:10]}{' ...' if len(values) > 10 else ''}")
        return "\n".join(lines)


async def check_inbox(inbox: Inbox, customers: list[Customer], inbound: dict[str, Customer],
                      outbound: dict[str, Customer] | None = None, stats: bool = False,
                      may_fail: frozenset[str] = frozenset(), sends: SendLoad | None = None) -> Findings:
    """One look at the inbox: every expected inbound wamid once, nothing else inbound, unread counts equal to
    the inbound messages (nobody read them), every outbound message once and accepted by Meta (a wamid and a
    status past pending; failed only for ``may_fail``), and, with ``stats``, each customer's stats equal to a
    recount of its orders. With ``sends``, every outbound message in the conversations is one of its replies
    under the id it was given (or, for a reply whose call never succeeded, at most once): nothing stored
    twice under another id, nothing nobody sent."""
    outbound = outbound or {}
    f = Findings(inbound_expected=len(inbound), outbound_expected=len(outbound))
    for customer in customers:
        expected = {w for w, c in inbound.items() if c is customer}
        expected_out = {m for m, c in outbound.items() if c is customer}
        messages = await inbox.messages(customer.conversation_id)
        ins = Counter(m.wamid for m in messages if m.direction == cpb.DIRECTION_IN)
        outs = Counter(m.id for m in messages if m.direction == cpb.DIRECTION_OUT)
        f.inbound_found += sum(1 for w in ins if w in expected)
        f.missing += sorted(expected - set(ins))
        f.unexpected += sorted(set(ins) - expected)
        f.duplicated += sorted(w for w, n in ins.items() if n > 1)
        f.outbound_found += sum(1 for m in outs if m in expected_out)
        f.outbound_missing += sorted(expected_out - set(outs))
        f.outbound_duplicated += sorted(m for m, n in outs.items() if n > 1)
        if sends is not None:
            texts = Counter(m.text for m in messages if m.direction == cpb.DIRECTION_OUT)
            for m in messages:
                if m.direction != cpb.DIRECTION_OUT:
                    continue
                given = sends.texts.get(m.text)
                if given is not None and given != m.id:
                    f.outbound_unexpected.append(f"{m.id}: {m.text!r} stored again (the reply is {given})")
                elif given is None and (m.text not in sends.unanswered or texts[m.text] > 1):
                    f.outbound_unexpected.append(f"{m.id}: {m.text!r}")
        by_id = {m.id: m for m in messages}
        f.outbound_unsent += sorted(m for m in expected_out if m in by_id and (
            not by_id[m].wamid or by_id[m].status == cpb.MESSAGE_STATUS_PENDING
            or (by_id[m].status == cpb.MESSAGE_STATUS_FAILED and m not in may_fail)))
        conversation = await inbox.conversation(customer.conversation_id)
        unread = conversation.unread_count if conversation is not None else -1
        if unread != len(expected):
            f.unread_wrong.append(f"{customer.conversation_id}: unread {unread}, inbound {len(expected)}")
        if stats:
            recount, kept = await inbox.recount(customer), await inbox.stats(customer)
            if recount["orders"] and recount != kept:
                f.stats_wrong.append(f"{customer.customer_id}: stats {kept}, recount {recount}")
    return f


async def settle(look: Callable[[], Awaitable[Findings]], within: float = 90.0, quiet_s: float = 3.0) -> Findings:
    """Looks until nothing is missing or wrong (consumers catch up after a fault), then once more after
    ``quiet_s`` so that a late duplicate would be seen too; gives the last look at the deadline."""
    deadline = time.monotonic() + within
    while True:
        found = await look()
        if found.problems() == 0:
            await asyncio.sleep(quiet_s)
            return await look()
        if time.monotonic() > deadline:
            return found
        await asyncio.sleep(1.0)


async def say_hello(sandbox_url: str, customers: list[Customer], run: str, number: str = NUMBER) -> dict[str, Customer]:
    """Each customer writes once through the sandbox's simulator, so that the sandbox (like Meta) knows
    their 24-hour window is open and accepts the agent's free-form replies. Retried until answered 200."""
    accepted: dict[str, Customer] = {}
    async with httpx.AsyncClient(timeout=30) as client:
        for n, customer in enumerate(customers):
            wamid = f"wamid.hello.{run}.{n}"
            for _ in range(20):
                reply = await client.post(f"{sandbox_url}/sandbox/simulate/text", json={
                    "phone_number_id": number, "wa_id": customer.wa_id, "name": customer.name, "wamid": wamid,
                    "body": "hello"})
                reply.raise_for_status()
                if reply.json().get("status_code") == 200:
                    accepted[wamid] = customer
                    break
                await asyncio.sleep(0.5)
            else:
                raise AssertionError(f"the simulator's hello of {customer.wa_id} was never answered 200")
    return accepted


@dataclass
class Outcome:
    load: WebhookLoad
    orders: OrderLoad
    sends: SendLoad
    hello: dict[str, Customer]
    found: Findings

    def final_errors(self) -> dict[str, int]:
        """Calls of the agent's side (orders, replies) that failed for good: each would be a bug."""
        return {f"{who} {what}": n for who, errors in (("orders", self.orders.errors), ("replies", self.sends.errors))
                for what, n in errors.items() if what.startswith("final")}

    def summary(self) -> str:
        meta = self.load.meta
        return (f"webhooks: {len(self.load.sent)} sent, {len(self.load.accepted)} answered 200, "
                f"{len(self.load.failed)} never; answers {dict(meta.answers)}, {meta.retried} retries; "
                f"{len(self.hello)} hellos; orders created {self.orders.created}, moved {self.orders.moves}, "
                f"gRPC errors {dict(self.orders.errors)}; replies {len(self.sends.sent)}, gRPC errors "
                f"{dict(self.sends.errors)}")


async def under_load(stack: Stack, inbox: Inbox, title: str, fault: Callable[[], Awaitable[None]], *,
                     customers: int = 4, rate: float = 5.0, warmup_s: float = 3.0, after_s: float = 2.0,
                     settle_s: float = 100.0) -> Outcome:
    """Webhooks (retried as Meta does), replies and orders run; ``fault`` runs after ``warmup_s`` (it breaks
    something and repairs it); the load goes on ``after_s`` more, every webhook is delivered, and the inbox
    is compared with what was answered 200 until it matches (or ``settle_s`` passes)."""
    run = uuid.uuid4().hex[:8]
    people = new_customers(inbox.workspace_id, customers)
    hello = await say_hello(stack.url("sandbox"), people, run)
    await inbox.wait_conversations(people)
    meta = Meta(f"{stack.url('ingest')}/webhooks/whatsapp")
    load = WebhookLoad(meta, people, run, rate=rate).start()
    orders = OrderLoad(inbox, people, every_s=0.8).start()
    sends = SendLoad(inbox, people, every_s=1.5).start()
    try:
        await asyncio.sleep(warmup_s)
        await fault()
        await asyncio.sleep(after_s)
    finally:
        await sends.stop()
        await orders.stop()
        await load.stop_and_drain(within=60)
        await meta.aclose()
    inbound = {**hello, **load.accepted}
    # Webhooks never answered 200 fail the test on their own; the inbox then gets one look, not a wait.
    found = await settle(lambda: check_inbox(inbox, people, inbound, sends.sent, stats=True, sends=sends),
                         within=5 if load.failed else settle_s)
    outcome = Outcome(load, orders, sends, hello, found)
    print(outcome.summary())
    print(found.report(title))
    return outcome


async def heal(stack: FaultStack, workspace_id: str) -> str | None:
    """Makes sure the webhook answers 200 before a test starts: a stack left broken by an earlier failed
    test (that test reported it) gets its ingest processes restarted, so that each test shows its own
    fault. Returns what was done, or None."""
    wa_id = "1" + "".join(random.choices("0123456789", k=11))
    meta = Meta(f"{stack.url('ingest')}/webhooks/whatsapp")
    try:
        body = text_webhook(wa_id, "Health probe", f"wamid.probe.{uuid.uuid4().hex}", "probe")
        if await meta.deliver(body, time.monotonic() + 20):
            return None
        for key in ("ingest", "ingest_worker"):
            stack.processes[key].kill()
            await asyncio.to_thread(stack.restart, key)
        if await meta.deliver(body, time.monotonic() + 30):
            return f"the webhook did not answer 200 ({dict(meta.answers)}): ingest restarted"
        raise AssertionError(f"the webhook does not answer 200 even after a restart of ingest: {dict(meta.answers)}")
    finally:
        await meta.aclose()
