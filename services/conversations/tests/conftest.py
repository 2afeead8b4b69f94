"""Fixtures: the conversations service wired to the real Kafka and database of the test session.

Output topics are test-only (created once per session), so nothing here lands on the shared topics;
each test has its own database prefix and its own workspace id, and reads only its own events.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from faststream.kafka import KafkaBroker

# The tests import their helpers (conversations_testkit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from conversations_testkit import TEST_PARTITIONS, Env

from inbox.conversations.v1 import conversations_pb2_grpc
from inbox_conversations.consumers import Handlers
from inbox_conversations.outbox import Publisher, Topics
from inbox_conversations.rpc import SERVICE_NAME, ConversationsRpc
from inbox_conversations.store import ConversationsStore
from inbox_core.grpc_server import GrpcServer
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_testkit.infra import Infra
from inbox_testkit.ports import free_port


@pytest.fixture(scope="session")
async def topics(infra: Infra) -> Topics:
    run = uuid.uuid4().hex[:8]
    names = Topics(
        whatsapp_events=f"test.conv.{run}.whatsapp-events",
        commands=f"test.conv.{run}.commands",
        conversations=f"test.conv.{run}.conversations",
        orders=f"test.conv.{run}.orders",
        customers=f"test.conv.{run}.customers",
    )
    await ensure_topics(infra.kafka_bootstrap, extra=[(n, TEST_PARTITIONS) for n in vars(names).values()])
    return names


@pytest.fixture(scope="session")
async def shared_broker(infra: Infra) -> AsyncIterator[KafkaBroker]:
    broker = make_broker(InboxSettings(kafka_bootstrap=infra.kafka_bootstrap), "conversations-test",
                         registry=None, telemetry=False)
    await broker.start()
    yield broker
    await broker.stop()


@pytest.fixture
async def env(infra: Infra, inbox_settings: InboxSettings, mongo_client: Any, topics: Topics,
              shared_broker: KafkaBroker) -> AsyncIterator[Env]:
    store = ConversationsStore(service_database(mongo_client, inbox_settings, "conversations"))
    await store.ensure_indexes()
    publisher = Publisher(store, shared_broker, topics)
    handlers = Handlers(store, publisher)
    rpc = ConversationsRpc(store, publisher, publish_timeout_s=10)
    e = Env(infra, inbox_settings, topics, store, shared_broker, publisher, handlers, rpc)
    yield e
    await asyncio.gather(*(t.stop() for t in e._tails))
    await mongo_client.drop_database(store.db.name)


@pytest.fixture
async def stub(env: Env) -> AsyncIterator[conversations_pb2_grpc.ConversationsServiceStub]:
    """The servicer behind a real gRPC server on a free port, and a client of it."""
    server = GrpcServer(free_port(), host="127.0.0.1")
    server.add(conversations_pb2_grpc.add_ConversationsServiceServicer_to_server, env.rpc, SERVICE_NAME)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield conversations_pb2_grpc.ConversationsServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(grace=1)
