"""Fixtures of ingest's send/media/template tests: the sandbox (Meta's stand-in) in-process on a free
port, a connected number of its own per test, ingest's pieces on the real database and broker, and a
test-only events topic (the real topics are shared by everyone's tests)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from pydantic import SecretStr
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.events import Event
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.runtime import HttpComponent
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_ingest.graph import GraphClient
from inbox_ingest.media import MediaStore
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore
from inbox_sandbox.http import create_app
from inbox_sandbox.settings import SandboxSettings
from inbox_testkit.infra import Infra
from inbox_testkit.ports import free_port

# The tests import their shared helpers (ingest_normalise_kit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

GRAPH_VERSION = "v24.0"


@dataclass
class SandboxHandle:
    url: str
    http: httpx.AsyncClient

    @property
    def graph_url(self) -> str:
        return f"{self.url}/graph/{GRAPH_VERSION}"

    async def add_number(self) -> Channel:
        """A number of its own (digits only, as Meta's), so faults and the request log are per test."""
        rng = random.SystemRandom()
        pnid = str(rng.randrange(10**14, 10**15))
        waba = str(rng.randrange(10**14, 10**15))
        display = "1555" + str(rng.randrange(10**6, 10**7))
        token = f"tok-{uuid.uuid4().hex}"
        answer = await self.http.post("/sandbox/numbers", json={
            "phone_number_id": pnid, "display_phone_number": display, "waba_id": waba, "access_token": token})
        answer.raise_for_status()
        return Channel(phone_number_id=pnid, workspace_id=f"ws-{uuid.uuid4().hex[:8]}", waba_id=waba,
                       display_phone_number=display, name="test", access_token=SecretStr(token))

    async def fault(self, phone_number_id: str, status: int, code: int, count: int = 1,
                    endpoint: str = "messages") -> None:
        answer = await self.http.post("/sandbox/faults", json={
            "phone_number_id": phone_number_id, "status": status, "code": code, "count": count,
            "endpoint": endpoint})
        answer.raise_for_status()

    async def requests(self, path: str, method: str = "POST") -> list[dict[str, Any]]:
        answer = await self.http.get("/sandbox/requests", params={"path": path, "method": method})
        answer.raise_for_status()
        return list(answer.json()["data"])

    async def upload(self, channel: Channel, data: bytes, mime_type: str) -> str:
        """A file in the sandbox's media (as if a customer had sent it): Meta's media id."""
        answer = await self.http.post(
            f"/graph/{GRAPH_VERSION}/{channel.phone_number_id}/media",
            headers={"Authorization": f"Bearer {channel.access_token.get_secret_value()}"},
            data={"messaging_product": "whatsapp", "type": mime_type},
            files={"file": ("upload.bin", data, mime_type)},
        )
        answer.raise_for_status()
        return str(answer.json()["id"])

    async def add_template(self, waba_id: str, template: dict[str, Any]) -> None:
        answer = await self.http.post("/sandbox/templates", json={"waba_id": waba_id, "template": template})
        answer.raise_for_status()


@pytest.fixture(scope="session")
async def sandbox() -> AsyncIterator[SandboxHandle]:
    # Status webhooks go to a closed port and are given up after one try: these tests read the
    # Graph API side only.
    settings = SandboxSettings(
        meta_app_secret=SecretStr("sandbox-test-secret"), access_token=SecretStr(f"default-{uuid.uuid4().hex}"),
        webhook_url=f"http://127.0.0.1:{free_port()}/webhooks/whatsapp", webhook_max_attempts=1,
        webhook_timeout_s=1.0,
    )
    port = free_port()
    server = HttpComponent("sandbox", create_app(settings), port, host="127.0.0.1")
    await server.start()
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        yield SandboxHandle(url, http)
    await server.stop()


@pytest.fixture
async def events_topic(infra: Infra) -> str:
    name = f"test.ingest.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(name, 3), (f"{name}.dlq", 1)])
    return name


Collect = Callable[..., Awaitable[list[Event]]]


@pytest.fixture
def collect(infra: Infra) -> Collect:
    """Events of a topic that match, read from the start up to the end as it is now.

    With ``at_least``, keeps reading (until ``timeout``) until that many match.
    """

    async def read(topic: str, predicate: Callable[[Event], bool], *, at_least: int = 0,
                   timeout: float = 30.0) -> list[Event]:
        consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            deadline = time.monotonic() + timeout
            partitions = consumer.partitions_for_topic(topic)
            while not partitions:
                if time.monotonic() > deadline:
                    raise AssertionError(f"topic {topic} not found")
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic)
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            found: list[Event] = []
            while True:
                ends = await consumer.end_offsets(tps)
                while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                    batch = await consumer.getmany(*tps, timeout_ms=500)
                    for records in batch.values():
                        for record in records:
                            event = Event.from_bytes(record.value)
                            if predicate(event):
                                found.append(event)
                if len(found) >= at_least or time.monotonic() > deadline:
                    return found
                await asyncio.sleep(0.1)
        finally:
            await consumer.stop()

    return read


@dataclass
class IngestEnv:
    settings: IngestSettings
    db: AsyncDatabase[dict[str, Any]]
    store: IngestStore
    graph: GraphClient
    media_store: MediaStore
    broker: KafkaBroker
    channel: Channel


@pytest.fixture
async def ingest_db(mongo_client: AsyncMongoClient[dict[str, Any]],
                    inbox_settings: InboxSettings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    db = service_database(mongo_client, inbox_settings, "ingest")
    yield db
    await mongo_client.drop_database(db.name)


@pytest.fixture
async def ingest_env(ingest_db: AsyncDatabase[dict[str, Any]], inbox_settings: InboxSettings,
                     sandbox: SandboxHandle) -> AsyncIterator[IngestEnv]:
    settings = IngestSettings(
        inbox=inbox_settings, meta_app_secret=SecretStr("s"), meta_verify_token=SecretStr("v"),
        graph_api_base_url=sandbox.graph_url, graph_timeout_s=5.0,
        send_retry_base_s=0.05, send_retry_max_s=0.2, send_max_attempts=3,
        media_retry_base_s=0.2, media_retry_max_s=1.0, media_max_attempts=3, media_poll_interval_s=0.1,
    )
    store = IngestStore(ingest_db)
    channel = await sandbox.add_number()
    await store.upsert_channel(channel)
    graph = GraphClient(settings.graph_api_base_url, settings.graph_timeout_s)
    broker = make_broker(inbox_settings, "ingest-test", registry=None, telemetry=False)
    await broker.start()
    try:
        yield IngestEnv(settings, ingest_db, store, graph, MediaStore(ingest_db), broker, channel)
    finally:
        await broker.stop()
        await graph.aclose()


@pytest.fixture
async def dead_graph() -> AsyncIterator[GraphClient]:
    """A Graph API that refuses connections: every call is a (retryable) network error."""
    graph = GraphClient(f"http://127.0.0.1:{free_port()}/graph/{GRAPH_VERSION}", 2.0)
    yield graph
    await graph.aclose()


WEBHOOK_SECRET = "test-app-secret"
WEBHOOK_VERIFY_TOKEN = "test-verify-token"


def text_webhook(phone_number_id: str, wamids: list[str], wa_id: str = "16315551181", waba: str = "WABA1") -> bytes:
    messages = [{"from": wa_id, "id": w, "timestamp": "1700000000", "type": "text", "text": {"body": f"hi {w}"}}
                for w in wamids]
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": waba, "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": phone_number_id},
            "contacts": [{"profile": {"name": "Ada"}, "wa_id": wa_id}],
            "messages": messages}}]}]}).encode()


@pytest.fixture
def webhook_body() -> Callable[..., bytes]:
    """Builds a signed-able webhook body of text messages (``text_webhook``)."""
    return text_webhook
