"""A number whose every send Meta answers 131000 ("Something went wrong", retryable) forever: another
tenant's replies on the same ``whatsapp.commands.v1`` partition are delayed a few seconds at most, and the
stuck number's own sends end as failed once their retry budget is spent.

Before, a send that failed six times raised a transient error and was delivered again, forever: the
partition (every tenant whose keys hash there) stopped behind it. Now ingest tries a send twice while it
holds the partition, then parks it per number and retries it off the partition until its budget is spent.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from fault_findings import say_hello
from fault_kit import FaultStack, Inbox, retrying
from fault_meta import new_customers
from fault_tenants import ReplyTimer, command_partition, customers_on_partition, new_tenant

from inbox.conversations.v1 import conversations_pb2 as cpb

pytestmark = pytest.mark.timeout(200, func_only=True)

# Another tenant's reply may wait behind the stuck number's send on their partition this much longer at most.
MAX_REPLY_S = 5.0
STUCK_SENDS = 2


async def test_a_stuck_number_delays_other_tenants_a_few_seconds_at_most_and_its_sends_end_failed(
    fault_stack: FaultStack, inbox: Inbox
) -> None:
    stuck = await new_tenant(fault_stack, "Stuck number shop")
    [customer] = new_customers(stuck.workspace_id, 1, stuck.number)
    partition = command_partition(f"{stuck.number}:{customer.wa_id}")
    others = customers_on_partition(inbox.workspace_id, 2, partition)
    await say_hello(fault_stack.url("sandbox"), others, uuid.uuid4().hex[:8])
    await say_hello(fault_stack.url("sandbox"), [customer], uuid.uuid4().hex[:8], number=stuck.number)
    stuck_inbox = Inbox(fault_stack, stuck.workspace_id)
    await inbox.wait_conversations(others)
    await stuck_inbox.wait_conversations([customer])

    sandbox = httpx.AsyncClient(timeout=30, base_url=fault_stack.url("sandbox"))
    timer = ReplyTimer(inbox, others, every_s=0.6).start()
    try:
        (await sandbox.post("/sandbox/faults", json={"phone_number_id": stuck.number, "status": 500,
                                                     "code": 131000, "count": 1_000_000})).raise_for_status()
        await asyncio.sleep(3)  # replies before, for comparison
        stuck_at = time.monotonic()
        sent = [await stuck_inbox.send_text(customer, f"stuck reply {n}") for n in range(STUCK_SENDS)]
        statuses: dict[str, int] = {}
        failed_after: dict[str, float] = {}
        while len(failed_after) < len(sent):
            assert time.monotonic() - stuck_at < 120, f"the stuck number's sends never ended: {statuses}"
            for message in await retrying(timer.errors, stuck_inbox.messages, customer.conversation_id):
                if message.id in sent:
                    statuses[message.id] = message.status
                    if message.status == cpb.MESSAGE_STATUS_FAILED and message.id not in failed_after:
                        failed_after[message.id] = time.monotonic() - stuck_at
            await asyncio.sleep(0.3)
        ended_s = time.monotonic() - stuck_at
        await asyncio.sleep(2)
        calls = (await sandbox.get("/sandbox/requests", params={"path": f"/{stuck.number}/messages",
                                                                 "method": "POST"})).json()["data"]
    finally:
        await timer.stop()
        await sandbox.delete("/sandbox/faults")
        await sandbox.aclose()
        await stuck_inbox.close()
    print(f"stuck number: {len(sent)} sends, {len(calls)} calls to Meta (all answered 131000), each failed "
          f"after {', '.join(f'{failed_after[m]:.1f} s' for m in sent)}")
    print(f"other tenant, same partition ({partition}): {timer.summary()}; worst before "
          f"{timer.worst(until=stuck_at):.2f} s, while the number was stuck "
          f"{timer.worst(since=stuck_at, until=stuck_at + ended_s):.2f} s")
    assert all(statuses[m] == cpb.MESSAGE_STATUS_FAILED for m in sent)
    assert len(calls) <= 6 * len(sent), "each send has a bounded budget"
    assert len(timer.latencies) >= 10 and not timer.pending and not timer.failed
    # Over what replies took before (the machine's own pace, slower when it is shared), a few seconds at most.
    assert timer.worst(since=stuck_at) < timer.worst(until=stuck_at) + MAX_REPLY_S
