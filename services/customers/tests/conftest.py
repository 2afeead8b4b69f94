"""Fixtures of the customers tests: the use cases over repositories on fresh databases of the real
server, publishing to a fresh topic of the real Kafka (the real inbox.customers.v1 is shared with everyone's tests)."""

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
from inbox_customers.app import Customers
from inbox_customers.store import CustomersRepository
from inbox_testkit.infra import Infra

PARTITIONS = 3
NewCustomers = Callable[[], Awaitable[Customers]]


@pytest.fixture(scope="session")
async def topic(infra: Infra) -> str:
    """Where the stores publish inbox.customers.v1 events: one topic for the session, each test reads
    only what was published after it started."""
    name = f"test.customers.{uuid.uuid4().hex[:10]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(name, PARTITIONS)])
    return name


@pytest.fixture
async def broker(inbox_settings: InboxSettings) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(inbox_settings, "customers-test", registry=None, telemetry=False)
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def new_customers(mongo_client: AsyncMongoClient[dict[str, Any]], broker: KafkaBroker,
                        topic: str) -> AsyncIterator[NewCustomers]:
    """Makes the use cases over a database of their own (several: a rebuild next to the original)."""
    made: list[CustomersRepository] = []

    async def make() -> Customers:
        settings = InboxSettings(db_prefix=f"t{uuid.uuid4().hex[:10]}")
        repository = CustomersRepository(service_database(mongo_client, settings, "customers"), kafka_publish(broker))
        await repository.ensure_indexes()
        made.append(repository)
        return Customers(repository, topic=topic)

    yield make
    for repository in made:
        await mongo_client.drop_database(repository.db.name)


@pytest.fixture
async def customers(new_customers: NewCustomers) -> Customers:
    return await new_customers()


async def _end_offsets(bootstrap: str, topic: str) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        return await consumer.end_offsets([TopicPartition(topic, p) for p in range(PARTITIONS)])
    finally:
        await consumer.stop()


async def read_topic(bootstrap: str, start: dict[TopicPartition, int]) -> list[tuple[str, Event]]:
    """What a topic got from the ``start`` offsets to its end now, as (key, event)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
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


@pytest.fixture
async def published(infra: Infra, topic: str) -> Callable[[], Awaitable[list[tuple[str, Event]]]]:
    """Everything the stores published since the test started."""
    start = await _end_offsets(infra.kafka_bootstrap, topic)

    async def read() -> list[tuple[str, Event]]:
        return await read_topic(infra.kafka_bootstrap, start)

    return read
