"""Kafka stopped mid-run: webhooks are answered 503 (so Meta retries), and once Kafka is back every
retried webhook's events are on the topic exactly once. Runs its own broker, which it stops."""

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer

from inbox_core.events import Event
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_core.topics import WHATSAPP_EVENTS, ensure_topics
from inbox_ingest.domain.signature import sign
from inbox_ingest.http import create_app
from inbox_ingest.intake import Intake
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore
from inbox_testkit.ports import free_port
from inbox_testkit.servers import KafkaServer

SECRET = "test-app-secret"
VERIFY = "test-verify-token"



async def test_webhooks_during_a_kafka_outage_are_retried_and_kept_exactly_once(
    tmp_path: Path, inbox_settings: InboxSettings, mongo_client: Any, webhook_body: Any
) -> None:
    kafka = KafkaServer(tmp_path, free_port())
    kafka.start()
    try:
        settings = inbox_settings.model_copy(update={"kafka_bootstrap": kafka.bootstrap})
        await ensure_topics(kafka.bootstrap)
        store = IngestStore(service_database(mongo_client, settings, "ingest"))
        await store.ensure_indexes()
        number = f"pn-{uuid.uuid4().hex[:8]}"
        await store.upsert_channel(Channel(phone_number_id=number, workspace_id="ws-outage", waba_id="WABA1"))
        broker = make_broker(settings, "ingest-test", registry=None)
        await broker.start()
        intake = Intake(store, broker, publish_timeout_s=3, dedupe_days=8)
        app = create_app(IngestSettings(inbox=settings, meta_app_secret=SECRET, meta_verify_token=VERIFY), intake)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ingest")

        async def post(body: bytes) -> int:
            response = await client.post("/webhooks/whatsapp", content=body,
                                         headers={"X-Hub-Signature-256": sign(SECRET.encode(), body)})
            return response.status_code

        bodies = [webhook_body(number, [f"wamid.{uuid.uuid4().hex}"]) for _ in range(12)]
        before = [await post(b) for b in bodies[:4]]
        assert before == [200] * 4

        kafka.stop()
        during = [await post(b) for b in bodies[4:8]]
        assert during == [503] * 4, "no 200 while Kafka cannot confirm"

        kafka.start()
        # Meta retries what was not answered 200, and new traffic goes on.
        pending = bodies[4:]
        deadline = time.monotonic() + 120
        while pending and time.monotonic() < deadline:
            pending = [b for b in pending if await post(b) != 200]
            if pending:
                await asyncio.sleep(1)
        assert not pending, "Kafka is back but webhooks are still refused"
        # A late duplicate delivery of everything changes nothing.
        assert [await post(b) for b in bodies] == [200] * 12
        await client.aclose()
        await broker.stop()

        consumer = AIOKafkaConsumer(WHATSAPP_EVENTS.name, bootstrap_servers=kafka.bootstrap,
                                    auto_offset_reset="earliest", group_id=f"check-{uuid.uuid4().hex}")
        await consumer.start()
        ids: Counter[str] = Counter()
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(ids) < 12:
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    ids.update(Event.from_bytes(r.value).data["wamid"] for r in records)
            for records in (await consumer.getmany(timeout_ms=2000)).values():
                ids.update(Event.from_bytes(r.value).data["wamid"] for r in records)
        finally:
            await consumer.stop()
        sent = Counter(json.loads(b)["entry"][0]["changes"][0]["value"]["messages"][0]["id"] for b in bodies)
        print(f"sent {len(sent)} distinct messages; on the topic {len(ids)} distinct, {sum(ids.values())} records")
        assert set(ids) == set(sent), "nothing lost"
        assert all(n == 1 for n in ids.values()), f"nothing doubled: {[w for w, n in ids.items() if n > 1]}"
    finally:
        kafka.stop()
