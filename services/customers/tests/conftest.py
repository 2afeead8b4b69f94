"""Fixtures of the customers tests: the use cases over repositories on fresh databases of the real
server, publishing to a fresh topic of the real Kafka (the real inbox.customers.v1 is shared with everyone's tests)."""

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox_core.mongo import service_database
from inbox_core.outbox import kafka_publish
from inbox_core.settings import InboxSettings
from inbox_customers.app import Customers
from inbox_customers.store import CustomersRepository
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import ReadPublished, fresh_topic, published_from_now, started_broker

PARTITIONS = 3
NewCustomers = Callable[[], Awaitable[Customers]]


@pytest.fixture(scope="session")
async def topic(infra: Infra) -> str:
    """Where the stores publish inbox.customers.v1 events: one topic for the session, each test reads
    only what was published after it started."""
    return await fresh_topic(infra.kafka_bootstrap, "test.customers", PARTITIONS)


@pytest.fixture
async def broker(inbox_settings: InboxSettings) -> AsyncIterator[KafkaBroker]:
    async with started_broker(inbox_settings, "customers-test") as broker:
        yield broker


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


@pytest.fixture
async def published(infra: Infra, topic: str) -> ReadPublished:
    """Everything the stores published since the test started."""
    return await published_from_now(infra.kafka_bootstrap, topic, PARTITIONS)
