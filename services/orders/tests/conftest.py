"""Fixtures of the orders tests: a store on a fresh database of the real server, publishing to a fresh
topic of the real Kafka (the real inbox.orders.v1 is shared with everyone's tests)."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox_core.mongo import service_database
from inbox_core.outbox import kafka_publish
from inbox_core.settings import InboxSettings
from inbox_orders.app import Orders
from inbox_orders.store import OrdersRepository
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import ReadPublished, fresh_topic, published_from_now, started_broker

PARTITIONS = 3


@pytest.fixture(scope="session")
async def topic(infra: Infra) -> str:
    """One topic for the session: each test reads only what was published after it started."""
    return await fresh_topic(infra.kafka_bootstrap, "test.orders", PARTITIONS)


@pytest.fixture
async def broker(inbox_settings: InboxSettings) -> AsyncIterator[KafkaBroker]:
    async with started_broker(inbox_settings, "orders-test") as broker:
        yield broker


@pytest.fixture
async def orders(mongo_client: AsyncMongoClient[dict[str, Any]], inbox_settings: InboxSettings,
                 broker: KafkaBroker, topic: str) -> AsyncIterator[Orders]:
    """The use cases over a repository on the test database, publishing to the test topic."""
    repository = OrdersRepository(service_database(mongo_client, inbox_settings, "orders"), kafka_publish(broker))
    await repository.ensure_indexes()
    yield Orders(repository, topic=topic)
    await mongo_client.drop_database(repository.db.name)


@pytest.fixture
async def read_topic(infra: Infra, topic: str) -> ReadPublished:
    """Everything published on the test topic since the test started, as (key, event)."""
    return await published_from_now(infra.kafka_bootstrap, topic, PARTITIONS)
