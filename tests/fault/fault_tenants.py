"""Tenants sharing the commands topic's partitions, and how long one tenant's replies take while another's
number is stuck or syncing."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass

import httpx
from aiokafka.partitioner import murmur2
from fault_kit import BackgroundLoad, FaultStack, Inbox, retrying
from fault_meta import DISPLAY, NUMBER, Customer, new_customers

from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox_core.topics import WHATSAPP_COMMANDS

COMMAND_PARTITIONS = WHATSAPP_COMMANDS.partitions


def command_partition(key: str) -> int:
    """The ``whatsapp.commands.v1`` partition of a key, as the producers' default partitioner picks it."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % COMMAND_PARTITIONS


def customers_on_partition(workspace_id: str, count: int, partition: int, number: str = NUMBER) -> list[Customer]:
    """Fresh customers of ``number`` whose commands (replies to them) go to ``partition``."""
    out: list[Customer] = []
    while len(out) < count:
        [customer] = new_customers(workspace_id, 1, number)
        if command_partition(f"{number}:{customer.wa_id}") == partition:
            out.append(customer)
    return out


@dataclass
class Tenant:
    """A workspace of its own with a sandbox number (and business account) of its own."""

    workspace_id: str
    number: str
    waba: str


async def new_tenant(stack: FaultStack, name: str) -> Tenant:
    number, waba = "".join(random.choices("123456789", k=15)), "".join(random.choices("123456789", k=15))
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.post(f"{stack.url('sandbox')}/sandbox/numbers", json={
            "phone_number_id": number, "display_phone_number": DISPLAY, "waba_id": waba, "verified_name": name})
        answer.raise_for_status()
    workspace = await asyncio.to_thread(stack.admin, "create-workspace", "--name", name)
    tenant = Tenant(str(workspace["workspace"]["id"]), number, waba)
    inbox = Inbox(stack, tenant.workspace_id)
    try:
        await inbox.connect_number(number, waba)
    finally:
        await inbox.close()
    return tenant


# --- How long the agent's replies take to be accepted by Meta -------------------------------------------------


class ReplyTimer(BackgroundLoad):
    """An agent replying to ``customers`` every ``every_s``; each reply's time from SendMessage to its status in
    the inbox leaving pending (Meta accepted it: a wamid; or failed), by when it was sent."""

    def __init__(self, inbox: Inbox, customers: list[Customer], every_s: float = 0.5) -> None:
        super().__init__(inbox, customers, every_s)
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds to leave pending)
        self.pending: dict[str, tuple[Customer, float]] = {}
        self.failed: list[str] = []
        self._give_up_at = float("inf")

    async def _run(self) -> None:
        n = 0
        next_send = time.monotonic()
        while not self._stop.is_set() or self.pending:
            now = time.monotonic()
            if not self._stop.is_set() and now >= next_send:
                n += 1
                customer = self.customers[n % len(self.customers)]
                message_id = await retrying(self.errors, self.inbox.send_text, customer, f"timed reply {n}")
                self.pending[message_id] = (customer, now)
                next_send = now + self.every_s
            for customer in {c.conversation_id: c for c, _ in self.pending.values()}.values():
                for message in await retrying(self.errors, self.inbox.messages, customer.conversation_id):
                    if message.id in self.pending and message.status != cpb.MESSAGE_STATUS_PENDING:
                        _, sent_at = self.pending.pop(message.id)
                        self.latencies.append((sent_at, time.monotonic() - sent_at))
                        if message.status == cpb.MESSAGE_STATUS_FAILED:
                            self.failed.append(message.id)
            if self._stop.is_set() and self.pending and time.monotonic() > self._give_up_at:
                break
            # Each look reads whole timelines (a scan on FerretDB): often enough to time replies, no more.
            await asyncio.sleep(0.25)

    async def stop(self, within: float = 60.0) -> None:
        """Stops replying; waits (up to ``within``) for the replies still pending."""
        self._give_up_at = time.monotonic() + within
        await super().stop()

    def worst(self, since: float = 0.0, until: float = float("inf")) -> float:
        return max((s for at, s in self.latencies if since <= at <= until), default=0.0)

    def summary(self) -> str:
        seconds = sorted(s for _, s in self.latencies)
        if not seconds:
            return f"replies: none accepted, {len(self.pending)} pending"
        return (f"replies: {len(seconds)} left pending (p50 {seconds[len(seconds) // 2]:.2f} s, "
                f"max {seconds[-1]:.2f} s), {len(self.failed)} failed, {len(self.pending)} still pending")
