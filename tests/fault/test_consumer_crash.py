"""kill -9 of each consumer in turn, under load, and a restart: nothing lost, nothing doubled.

While signed webhooks from several customers arrive (each retried until answered 200, as Meta does),
an agent replies and orders are created and moved along their pipeline, one consumer process is killed
with SIGKILL (no clean shutdown: uncommitted offsets, half-done handlers) and started again. Afterwards
every webhook answered 200 is in the inbox exactly once, every reply once and accepted by Meta, every
unread count equals the customer's messages, and every customer's stats equal a recount of its orders.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fault_findings import under_load
from fault_kit import FaultStack, Inbox

pytestmark = pytest.mark.timeout(170, func_only=True)


@pytest.mark.parametrize("consumer", ["conversations_worker", "customers_worker", "ingest_worker"])
async def test_kill_9_of_a_consumer_under_load_loses_and_doubles_nothing(
    consumer: str, fault_stack: FaultStack, inbox: Inbox
) -> None:
    async def kill_and_restart() -> None:
        pid = fault_stack.pid(consumer)
        fault_stack.processes[consumer].kill()
        killed_at = time.monotonic()
        await asyncio.sleep(3)
        await asyncio.to_thread(fault_stack.restart, consumer)
        print(f"{consumer} (pid {pid}) killed with SIGKILL, back after {time.monotonic() - killed_at:.1f} s "
              f"(new pid {fault_stack.pid(consumer)})")

    outcome = await under_load(fault_stack, inbox, f"kill -9 {consumer}", kill_and_restart)
    assert not outcome.load.failed, "Meta's retries were never answered 200"
    assert outcome.found.problems() == 0, (outcome.found.report(consumer) + "\n"
                                           + fault_stack.processes[consumer].output()[-3000:])
    assert outcome.orders.created and outcome.sends.sent, "the run created orders and sent replies"
    assert not outcome.final_errors(), outcome.final_errors()
