"""The worker through real Kafka: both topics consumed with commit-after-effects, duplicates on the topic
counted once, and a rebuild from the topics (a new database, a new consumer group) giving the same result."""

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faststream.kafka import KafkaBroker

from inbox_core.events import Event
from inbox_core.events.orders import Money, OrderCreated, OrderSnapshot, OrderStageChanged
from inbox_core.events.whatsapp import MessageReceived
from inbox_core.ids import customer_id
from inbox_core.kafka import make_broker, publish
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_customers.app import Customers
from inbox_customers.consumers import register
from inbox_testkit.infra import Infra

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PARTITIONS = 3
NewCustomers = Callable[[], Awaitable[Customers]]


async def _topic(infra: Infra, kind: str) -> str:
    name = f"test.{kind}.{uuid.uuid4().hex[:10]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(name, PARTITIONS), (f"{name}.dlq", 1)])
    return name


async def _wait_consumed(bootstrap: str, group: str, topics: list[str], timeout: float = 60.0) -> None:
    """Until the group has committed every partition of the topics up to their end (all handled)."""
    parts = [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        end = await consumer.end_offsets(parts)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            committed = await admin.list_consumer_group_offsets(group)
            if all(tp in committed and committed[tp].offset >= end[tp] for tp in parts if end[tp] > 0):
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"group {group} did not consume everything in {timeout}s")
    finally:
        await consumer.stop()
        await admin.close()


def _message(wa_id: str, name: str, at: datetime) -> Event:
    payload = MessageReceived(waba_id="waba-1", phone_number_id="pn-1", wamid=f"wamid.{uuid.uuid4().hex}",
                              wa_id=wa_id, profile_name=name, timestamp=at, type="text", text="hola")
    return Event.of(payload, workspace_id="w1")


def _order(oid: str, version: int, stage: str, customer: str, amount: str) -> Event:
    snapshot = OrderSnapshot(id=oid, number=1, workspace_id="w1", customer_id=customer,
                             total=Money(amount=amount, currency="EUR"), stage=stage, created_at=T0, version=version)
    payload = OrderCreated(order=snapshot) if version == 1 else OrderStageChanged(order=snapshot, from_stage="",
                                                                                  to_stage=stage)
    return Event.of(payload, workspace_id="w1", id=f"{oid}:v{version}")


async def _run_worker(infra: Infra, settings: InboxSettings, customers: Customers, wa_topic: str,
                      orders_topic: str) -> None:
    group = f"g-{uuid.uuid4().hex[:10]}"
    worker = make_broker(settings, "customers-test-worker", registry=None, telemetry=False)
    register(worker, customers, whatsapp_topic=wa_topic, orders_topic=orders_topic, group_id=group)
    await worker.start()
    try:
        await _wait_consumed(infra.kafka_bootstrap, group, [wa_topic, orders_topic])
    finally:
        await worker.stop()


async def test_worker_counts_each_order_once_and_a_rebuild_gives_the_same_numbers(
    infra: Infra, inbox_settings: InboxSettings, broker: KafkaBroker, new_customers: NewCustomers
) -> None:
    wa_topic, orders_topic = await _topic(infra, "wa"), await _topic(infra, "orders")
    ana, ben = "34600111222", "4915112345678"
    cid_ana, cid_ben = customer_id("w1", ana), customer_id("w1", ben)
    messages = [_message(ana, "Ana", T0), _message(ben, "Ben", T0), _message(ana, "Ana M.", T0 + timedelta(hours=1))]
    orders = [
        _order("ord_a1", 1, "new", cid_ana, "30.00"), _order("ord_a1", 2, "confirmed", cid_ana, "30.00"),
        _order("ord_a2", 1, "new", cid_ana, "12.25"), _order("ord_a2", 2, "cancelled", cid_ana, "12.25"),
        _order("ord_b1", 1, "new", cid_ben, "99.99"), _order("ord_b1", 2, "confirmed", cid_ben, "99.99"),
        _order("ord_b1", 3, "shipped", cid_ben, "99.99"), _order("ord_b1", 4, "delivered", cid_ben, "99.99"),
    ]
    # Everything twice on the topics (a producer retry, a republishing relay), the copies later.
    for event in messages + orders + messages + orders:
        if event.type.startswith("order."):
            await publish(broker, orders_topic, event.payload().model_dump()["order"]["id"], event)
        else:
            await publish(broker, wa_topic, f"pn-1:{event.data['wa_id']}", event)

    first = await new_customers()
    await _run_worker(infra, inbox_settings, first, wa_topic, orders_topic)
    ana_doc, ben_doc = await first.get("w1", cid_ana), await first.get("w1", cid_ben)
    assert ana_doc.name == "Ana M." and ana_doc.phone == "+34600111222"
    assert ana_doc.stats.model_dump() == {"orders": 2, "delivered": 0, "returned": 0, "cancelled": 1,
                                "revenue_amount": "30.00", "revenue_currency": "EUR"}
    assert ben_doc.stats.model_dump() == {"orders": 1, "delivered": 1, "returned": 0, "cancelled": 0,
                                "revenue_amount": "99.99", "revenue_currency": "EUR"}

    rebuilt = await new_customers()
    await _run_worker(infra, inbox_settings, rebuilt, wa_topic, orders_topic)
    for cid in (cid_ana, cid_ben):
        before, after = await first.get("w1", cid), await rebuilt.get("w1", cid)
        assert after.model_dump(exclude={"version", "updated_at", "stats_updated_at"}) == \
            before.model_dump(exclude={"version", "updated_at", "stats_updated_at"})
        known_orders = [(await c.repository.get(cid) or {})["orders"] for c in (first, rebuilt)]
        assert known_orders[0] == known_orders[1]
