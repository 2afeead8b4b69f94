"""Kafka and the database stopped under load and started again.

- Kafka down: the webhook answers 503 (it cannot make the events durable), Meta retries, and once
  Kafka is back every webhook is in the inbox exactly once; replies and orders made meanwhile too.
- The database down: the webhook answers 5xx (it cannot route or dedupe), consumers retry the event
  they were on; once the database is back nothing is lost and no consumer is stuck (what was sent after
  the restart arrives too).
Both use the fault tests' own Kafka and FerretDB (see conftest.py), so the rest of the suite is not touched.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from fault_findings import under_load
from fault_kit import FaultStack, Inbox

from inbox_testkit.infra import Infra
from inbox_testkit.servers import FerretServer, KafkaServer

pytestmark = pytest.mark.timeout(175, func_only=True)

DOWN_S = 8.0
# Longer than INBOX_MONGO_TIMEOUT_MS (10 s), within which PyMongo retries a read whose server went away: a
# shorter outage is ridden out, and the webhook is never refused.
DATABASE_DOWN_S = 14.0


async def stopped_for_a_while(server: KafkaServer | FerretServer | None, name: str, down_s: float = DOWN_S) -> None:
    """The outage: ``server`` stopped, ``down_s`` later started again (its start waits until it serves)."""
    assert server is not None
    started = time.monotonic()
    await asyncio.to_thread(server.stop)
    await asyncio.sleep(down_s)
    await asyncio.to_thread(server.start)
    print(f"{name} stopped, started again after {time.monotonic() - started:.1f} s")


async def test_kafka_stopped_and_started_under_load_loses_and_doubles_nothing(
    fault_stack: FaultStack, fault_infra: Infra, inbox: Inbox
) -> None:
    assert fault_infra.kafka is not None
    outcome = await under_load(fault_stack, inbox, "Kafka stopped and started",
                               lambda: stopped_for_a_while(fault_infra.kafka, "Kafka"), after_s=5.0)
    refused = sum(n for answer, n in outcome.load.meta.answers.items() if answer != "200")
    assert refused > 0, "while Kafka was down the webhook was refused (and retried)"
    assert "503" in outcome.load.meta.answers, "a webhook that cannot be made durable is answered 503"
    assert not outcome.load.failed, (f"{len(outcome.load.failed)} webhooks were still refused 60 s after Kafka was "
                                     f"back; ingest's log:\n{fault_stack.processes['ingest'].output()[-3000:]}")
    assert outcome.found.problems() == 0, outcome.found.report("Kafka") + "\n" + fault_stack.logs()[-6000:]
    assert not outcome.final_errors(), outcome.final_errors()


async def test_database_stopped_and_started_under_load_loses_nothing_and_nothing_sticks(
    fault_stack: FaultStack, fault_infra: Infra, inbox: Inbox
) -> None:
    assert fault_infra.ferret is not None
    # The load goes on for a while after the restart: those messages arrive only if no consumer is stuck.
    outcome = await under_load(fault_stack, inbox, "database stopped and started",
                               lambda: stopped_for_a_while(fault_infra.ferret, "FerretDB", DATABASE_DOWN_S),
                               after_s=6.0)
    refused = sum(n for answer, n in outcome.load.meta.answers.items() if answer != "200")
    assert refused > 0, "while the database was down the webhook was refused (and retried)"
    assert not outcome.load.failed, "Meta's retries were never answered 200"
    assert outcome.found.problems() == 0, outcome.found.report("database") + "\n" + fault_stack.logs()[-6000:]
    assert not outcome.final_errors(), outcome.final_errors()
