"""Fixtures of the gateway tests: the gateway's database on the real test server, the real test Kafka,
and (for the tests that need them) the services' real gRPC servers in-process."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from faststream.kafka import KafkaBroker

# The tests import their helpers (gateway_testkit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from gateway_testkit import FAST_PASSWORDS, Services, gateway_settings

from inbox_conversations.outbox import Topics
from inbox_core.kafka import make_broker
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_gateway.gateway import Gateway
from inbox_testkit.infra import Infra


@pytest.fixture(scope="session")
async def test_topics(infra: Infra) -> Topics:
    """Test-only topics for the in-process services (the real ones are shared with everyone's tests)."""
    run = uuid.uuid4().hex[:8]
    names = Topics(whatsapp_events=f"test.gw.{run}.whatsapp-events", commands=f"test.gw.{run}.commands",
                   conversations=f"test.gw.{run}.conversations", orders=f"test.gw.{run}.orders",
                   customers=f"test.gw.{run}.customers")
    extra = [(n, 3) for n in vars(names).values()] + [(f"{names.conversations}.p", 3)]
    await ensure_topics(infra.kafka_bootstrap, extra=extra)
    return names


@pytest.fixture(scope="session")
async def broker(infra: Infra) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(InboxSettings(kafka_bootstrap=infra.kafka_bootstrap), "gateway-test", registry=None,
                         telemetry=False)
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def services(inbox_settings: InboxSettings, mongo_client: Any, broker: KafkaBroker,
                   test_topics: Topics) -> AsyncIterator[Services]:
    running = await Services(inbox_settings, mongo_client, broker, test_topics).start()
    yield running
    await running.stop()


@pytest.fixture
async def gateway(inbox_settings: InboxSettings, mongo_client: Any) -> AsyncIterator[Gateway]:
    """A gateway whose services are all down (tests that need them build their own with `services`)."""
    gw = Gateway(gateway_settings(inbox_settings), client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    await gw.accounts.ensure_indexes()
    yield gw


@pytest.fixture
async def gw(inbox_settings: InboxSettings, mongo_client: Any, services: Services, test_topics: Topics) -> Gateway:
    """A gateway over the in-process services, streaming their topics (the API tests')."""
    topics = [test_topics.conversations, test_topics.customers, test_topics.orders, f"{test_topics.conversations}.p"]
    return Gateway(gateway_settings(inbox_settings, stream_heartbeat_s=0.5, **services.targets()),
                   client=mongo_client, passwords=FAST_PASSWORDS, stream_topics=topics)
