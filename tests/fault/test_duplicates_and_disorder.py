"""Duplicate deliveries and statuses out of order: no duplicate message, no status going backwards.

Meta delivers the same webhook more than once (also concurrently, and inside a later batch) and delivers
statuses in any order. Here every inbound webhook is posted three times at once and once more later, two
are repeated inside a batch with a new message, and then every event on ``whatsapp.events.v1`` is
published a second time straight to Kafka (past ingest's dedupe, as after a producer retry or a
consumer crash before its commit), status events in reverse order. The agent's replies get their
statuses scrambled (read before delivered before sent, repeats with other timestamps, a failed one among
them), while the timeline is watched: a status seen never goes back, and the final one is the highest.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections import Counter
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from fault_findings import check_inbox, say_hello, settle
from fault_kit import STATUS_NAMES, STATUS_RANK, FaultStack, Inbox
from fault_meta import Meta, multi_text_webhook, new_customers, status_webhook, text_webhook

from inbox_core.events import Event
from inbox_core.topics import WHATSAPP_EVENTS
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import TopicReader

pytestmark = pytest.mark.timeout(170, func_only=True)


async def test_duplicates_and_out_of_order_statuses_change_nothing(
    fault_stack: FaultStack, fault_infra: Infra, inbox: Inbox
) -> None:
    run = uuid.uuid4().hex[:8]
    customers = new_customers(inbox.workspace_id, 3)
    hello = await say_hello(fault_stack.url("sandbox"), customers, run)
    await inbox.wait_conversations(customers)
    meta = Meta(f"{fault_stack.url('ingest')}/webhooks/whatsapp")
    deadline = time.monotonic() + 60
    posts = 0

    async with TopicReader(fault_infra.kafka_bootstrap, WHATSAPP_EVENTS.name) as topic:
        # 1. Inbound duplicates through ingest: three at once, then once more.
        inbound = dict(hello)
        bodies: list[bytes] = []
        for n in range(30):
            customer = customers[n % len(customers)]
            wamid = f"wamid.dup.{run}.{n:03d}"
            inbound[wamid] = customer
            bodies.append(text_webhook(customer.wa_id, customer.name, wamid, f"dup {n}"))
        for body in bodies:
            assert all(await asyncio.gather(*(meta.deliver(body, deadline) for _ in range(3))))
            posts += 3
        for body in random.sample(bodies, len(bodies)):
            assert await meta.deliver(body, deadline)
            posts += 1
        # Two known messages again inside a batch with a new one.
        a, b = customers[0], customers[1]
        new_wamid = f"wamid.dup.{run}.batch"
        batch = multi_text_webhook([(a.wa_id, a.name, f"wamid.dup.{run}.000", "dup 0"),
                                    (b.wa_id, b.name, f"wamid.dup.{run}.001", "dup 1"),
                                    (a.wa_id, a.name, new_wamid, "new in a batch")])
        assert await meta.deliver(batch, deadline)
        posts += 1
        inbound[new_wamid] = a

        # 2. The agent's replies, accepted by Meta (they get a wamid).
        replies: dict[str, Any] = {}
        for n in range(9):
            customer = customers[n % len(customers)]
            replies[await inbox.send_text(customer, f"reply {n}")] = customer
        wamids = await _wait_wamids(inbox, replies)

        # 3. Their statuses out of order, with repeats; two of them fail.
        failing = set(random.sample(sorted(wamids.values()), 2))
        scripts: list[bytes] = []
        base = int(time.time())
        for message_id, wamid in wamids.items():
            recipient = replies[message_id].wa_id
            statuses = ["read", "delivered", "sent", "delivered", "read"] + (["failed"] if wamid in failing else [])
            random.shuffle(statuses)
            for k, status in enumerate(statuses):
                scripts.append(status_webhook(wamid, status, recipient, base + k))
        random.shuffle(scripts)
        watch = StatusWatch(inbox, replies).start()
        for chunk in range(0, len(scripts), 6):
            assert all(await asyncio.gather(*(meta.deliver(s, deadline) for s in scripts[chunk:chunk + 6])))
        posts += len(scripts)

        # 4. Everything of this test on the topic once more, straight to Kafka, statuses in reverse order.
        await topic.read(within=3)
        markers = [run.encode(), *(w.encode() for w in wamids.values())]
        mine = [r for r in topic.records if any(m in r.value for m in markers)]
        statuses = [r for r in mine if Event.from_bytes(r.value).type == "whatsapp.status.updated"]
        others = [r for r in mine if Event.from_bytes(r.value).type != "whatsapp.status.updated"]
        replayed = [*others, *reversed(statuses)]
        assert statuses and others, "the test's own events were found on the topic"
        producer = AIOKafkaProducer(bootstrap_servers=fault_infra.kafka_bootstrap, acks="all",
                                    enable_idempotence=True)
        await producer.start()
        replayed_up_to: dict[TopicPartition, int] = {}
        try:
            for record in replayed:
                written = await producer.send_and_wait(record.topic, record.value, key=record.key,
                                                       headers=list(record.headers or ()))
                tp = TopicPartition(written.topic, written.partition)
                replayed_up_to[tp] = max(replayed_up_to.get(tp, -1), written.offset)
        finally:
            await producer.stop()
    await meta.aclose()
    # The inbox is already right before the replay is consumed: look only once the conversations worker has
    # committed past every replayed record, so that what the replay did (or undid) is what is seen.
    group = fault_stack.env["INBOX_GROUP_PREFIX"] + "inbox-conversations"
    await _wait_committed(fault_infra.kafka_bootstrap, group, replayed_up_to)

    failed_ids = frozenset(m for m, w in wamids.items() if w in failing)
    found = await settle(lambda: check_inbox(inbox, customers, inbound, replies, may_fail=failed_ids), within=90)
    await watch.stop()
    final = await _final_statuses(inbox, replies)
    expected_final = {m: ("failed" if w in failing else "read") for m, w in wamids.items()}
    wrong_final = {m: (final.get(m), want) for m, want in expected_final.items() if final.get(m) != want}
    print(f"posted {posts} webhooks ({len(inbound)} distinct inbound messages, {len(scripts)} status webhooks "
          f"for {len(wamids)} replies), answers {dict(meta.answers)}; replayed {len(replayed)} records on Kafka; "
          f"{watch.seen} status observations")
    print(found.report("duplicates and disorder"))
    print(f"[duplicates and disorder] statuses: expected final {Counter(expected_final.values())}, "
          f"found {Counter(final.values())}, wrong {len(wrong_final)}, went backwards {len(watch.backwards)}; "
          f"difference: {len(wrong_final) + len(watch.backwards)}")
    assert found.problems() == 0, found.report("duplicates")
    assert not wrong_final, f"final statuses wrong: {wrong_final}"
    assert not watch.backwards, f"statuses went backwards: {watch.backwards[:10]}"


async def _wait_committed(bootstrap: str, group: str, up_to: dict[TopicPartition, int], within: float = 90.0) -> None:
    """Until ``group`` has committed past each partition's offset in ``up_to``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + within
        while True:
            committed = await admin.list_consumer_group_offsets(group)
            behind = {tp: o for tp, o in up_to.items() if tp not in committed or committed[tp].offset <= o}
            if not behind:
                return
            assert time.monotonic() < deadline, f"{group} never consumed the replayed records: {behind}"
            await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _wait_wamids(inbox: Inbox, replies: dict[str, Any], within: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + within
    while True:
        wamids: dict[str, str] = {}
        for conversation_id in {c.conversation_id for c in replies.values()}:
            for m in await inbox.messages(conversation_id):
                if m.id in replies and m.wamid:
                    wamids[m.id] = m.wamid
        if len(wamids) == len(replies):
            return wamids
        assert time.monotonic() < deadline, f"only {len(wamids)} of {len(replies)} replies were accepted by Meta"
        await asyncio.sleep(0.5)


async def _final_statuses(inbox: Inbox, replies: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for conversation_id in {c.conversation_id for c in replies.values()}:
        for m in await inbox.messages(conversation_id):
            if m.id in replies:
                out[m.id] = STATUS_NAMES[m.status]
    return out


class StatusWatch:
    """Reads the replies' statuses over and over and remembers every step back (a lower rank after a higher)."""

    def __init__(self, inbox: Inbox, replies: dict[str, Any]) -> None:
        self.inbox = inbox
        self.replies = replies
        self.highest: dict[str, str] = {}
        self.backwards: list[str] = []
        self.seen = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> StatusWatch:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        while True:
            for message_id, status in (await _final_statuses(self.inbox, self.replies)).items():
                self.seen += 1
                before = self.highest.get(message_id)
                if before is not None and STATUS_RANK[status] < STATUS_RANK[before]:
                    self.backwards.append(f"{message_id}: {before} -> {status}")
                if before is None or STATUS_RANK[status] > STATUS_RANK[before]:
                    self.highest[message_id] = status
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
