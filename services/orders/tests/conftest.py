"""Fixtures of the orders tests: a store on a fresh database of the real server, publishing to a fresh
topic of the real Kafka (the real inbox.orders.v1 is shared with everyone's tests)."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox_core.events import Event
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.outbox import kafka_publish
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_orders.app import Orders
from inbox_orders.store import OrdersRepository
from inbox_testkit.infra import Infra

PARTITIONS = 3
ReadTopic = Callable[[], Awaitable[list[tuple[str, Event]]]]


@pytest.fixture(scope="session")
async def topic(infra: Infra) -> str:
    """One topic for the session: each test reads only what was published after it started."""
    name = f"test.orders.{uuid.uuid4().hex[:10]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(name, PARTITIONS)])
    return name


@pytest.fixture
async def broker(inbox_settings: InboxSettings) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(inbox_settings, "orders-test", registry=None, telemetry=False)
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def orders(mongo_client: AsyncMongoClient[dict[str, Any]], inbox_settings: InboxSettings,
                 broker: KafkaBroker, topic: str) -> AsyncIterator[Orders]:
    """The use cases over a repository on the test database, publishing to the test topic."""
    repository = OrdersRepository(service_database(mongo_client, inbox_settings, "orders"), kafka_publish(broker))
    await repository.ensure_indexes()
    yield Orders(repository, topic=topic)
    await mongo_client.drop_database(repository.db.name)


async def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()


@pytest.fixture
async def read_topic(infra: Infra, topic: str) -> ReadTopic:
    """Everything published on the test topic since the test started, as (key, event)."""
    start = await _end_offsets(infra.kafka_bootstrap, topic)

    async def read() -> list[tuple[str, Event]]:
        consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            parts = list(start)
            consumer.assign(parts)
            for tp in parts:
                consumer.seek(tp, start[tp])
            end = await consumer.end_offsets(parts)
            out: list[tuple[str, Event]] = []
            while [tp for tp in parts if await consumer.position(tp) < end[tp]]:
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    out.extend((r.key.decode(), Event.from_bytes(r.value)) for r in records)
            return out
        finally:
            await consumer.stop()

    return read
