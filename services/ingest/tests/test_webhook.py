"""The webhook against the real broker and database: handshake, signatures, size, routing, dedupe,
batches, every Meta sample, and fuzzing (never a 500)."""

import json
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox_core.events import Event
from inbox_core.kafka import make_broker
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_core.topics import WHATSAPP_EVENTS
from inbox_ingest.domain.signature import sign
from inbox_ingest.http import create_app
from inbox_ingest.intake import Intake
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import TopicReader
from inbox_testkit.paths import META_WEBHOOK_SAMPLES

SECRET = "test-app-secret"  # the same as the conftest's webhook builder expects
VERIFY = "test-verify-token"
SAMPLES = (Path(os.environ["INBOX_WEBHOOK_SAMPLES"]) if os.environ.get("INBOX_WEBHOOK_SAMPLES")
           else META_WEBHOOK_SAMPLES)
SAMPLE_NUMBER = "106540352242922"
SAMPLE_WABA = "102290129340398"


def signed(body: bytes, secret: str = SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(secret.encode(), body), "Content-Type": "application/json"}


class Ingest:
    def __init__(self, client: httpx.AsyncClient, store: IngestStore, workspace: str, number: str) -> None:
        self.client = client
        self.store = store
        self.workspace = workspace
        self.number = number

    async def post(self, body: bytes, headers: dict[str, str] | None = None) -> Any:
        return await self.client.post("/webhooks/whatsapp", content=body,
                                      headers=signed(body) if headers is None else headers)


@pytest.fixture
async def ingest(infra: Infra, inbox_settings: InboxSettings, mongo_client: Any) -> AsyncIterator[Ingest]:
    settings = IngestSettings(inbox=inbox_settings, meta_app_secret=SECRET, meta_verify_token=VERIFY)
    store = IngestStore(service_database(mongo_client, inbox_settings, "ingest"))
    await store.ensure_indexes()
    workspace, number = f"ws-{uuid.uuid4().hex[:8]}", f"pn-{uuid.uuid4().hex[:10]}"
    await store.upsert_channel(Channel(phone_number_id=number, workspace_id=workspace, waba_id="WABA1",
                                       display_phone_number="15550001111", access_token="tok"))
    broker = make_broker(inbox_settings, "ingest-test", registry=None)
    await broker.start()
    intake = Intake(store, broker, publish_timeout_s=10, dedupe_days=8)
    app = create_app(settings, intake)
    # In this event loop (Litestar's AsyncTestClient runs the app in another one, which the Mongo client refuses).
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        yield Ingest(client, store, workspace, number)
    await broker.stop()


async def test_handshake(ingest: Ingest) -> None:
    ok = await ingest.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = await ingest.client.get("/webhooks/whatsapp", params={
        "hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"})
    assert wrong.status_code == 403 and "1158201444" not in wrong.text


async def test_signature_is_checked_before_anything(ingest: Ingest, infra: Infra, webhook_body: Any) -> None:
    body = webhook_body(ingest.number, [f"wamid.{uuid.uuid4().hex}"])
    async with TopicReader(infra.kafka_bootstrap, WHATSAPP_EVENTS.name) as reader:
        missing = await ingest.post(body, {"Content-Type": "application/json"})
        wrong = await ingest.post(body, {"X-Hub-Signature-256": "sha256=" + "0" * 64})
        other_secret = await ingest.post(body, signed(body, "another-secret"))
        tampered = await ingest.post(body.replace(b"hi ", b"HI "), signed(body))
        no_prefix = await ingest.post(body, {"X-Hub-Signature-256": signed(body)["X-Hub-Signature-256"][7:]})
        for response in (missing, wrong, other_secret, tampered, no_prefix):
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "unauthenticated"
        # Garbage is refused on the signature, never parsed.
        assert (await ingest.post(b"{not json", {"X-Hub-Signature-256": "sha256=00"})).status_code == 401
        await reader.read(settle=1.0)
    assert not [e for e in reader.events() if e.workspace_id == ingest.workspace]


async def test_bad_bodies_get_clear_errors(ingest: Ingest) -> None:
    for body in (b"{not json", b"[]", b'{"object": "page", "entry": []}', b'{"object": "whatsapp_business_account"}'):
        response = await ingest.post(body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_request"
    huge = b'{"object": "whatsapp_business_account", "entry": [], "pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    response = await ingest.post(huge)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


async def test_batch_duplicates_and_unrouted(ingest: Ingest, infra: Infra, webhook_body: Any) -> None:
    w = [f"wamid.{uuid.uuid4().hex}" for _ in range(5)]
    first = json.loads(webhook_body(ingest.number, w[:2]))
    second = json.loads(webhook_body(ingest.number, w[2:4], wa_id="4915112345678"))
    statuses = {"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": ingest.number},
        "statuses": [
            {"id": w[4], "status": "read", "timestamp": "1700000100", "recipient_id": "16315551181"},
            {"id": w[4], "status": "delivered", "timestamp": "1700000050", "recipient_id": "16315551181"},
        ]}}
    batch = {"object": "whatsapp_business_account", "entry": [
        {"id": "WABA1", "changes": [first["entry"][0]["changes"][0], statuses]},
        {"id": "WABA1", "changes": [second["entry"][0]["changes"][0]]},
    ]}
    body = json.dumps(batch).encode()
    unknown_number = webhook_body(f"pn-unknown-{uuid.uuid4().hex[:6]}", [f"wamid.{uuid.uuid4().hex}"])
    async with TopicReader(infra.kafka_bootstrap, WHATSAPP_EVENTS.name) as reader:
        response = await ingest.post(body)
        assert response.status_code == 200
        assert response.json() == {"received": 6, "published": 6, "duplicates": 0, "unrouted": 0}
        again = await ingest.post(body)  # Meta redelivers
        assert again.status_code == 200 and again.json()["duplicates"] == 6
        stray = await ingest.post(unknown_number)
        assert stray.status_code == 200 and stray.json()["unrouted"] == 1

        def mine(records: list[Any]) -> list[Event]:
            return [e for e in (Event.from_bytes(r.value) for r in records) if e.workspace_id == ingest.workspace]

        await reader.read(until=lambda rs: len(mine(rs)) >= 6, settle=1.0)
    events = mine(reader.records)
    assert len(events) == 6, "each event exactly once, duplicates dropped"
    received = [e for e in events if e.type == "whatsapp.message.received"]
    assert sorted(e.data["wamid"] for e in received) == sorted(w[:4])
    status_events = [e for e in events if e.type == "whatsapp.status.updated"]
    assert sorted(e.data["status"] for e in status_events) == ["delivered", "read"]
    keys = {r.key.decode() for r in reader.records if Event.from_bytes(r.value).workspace_id == ingest.workspace}
    assert keys == {f"{ingest.number}:16315551181", f"{ingest.number}:4915112345678"}
    # Everything of one customer went to one partition, in the body's order.
    by_key: dict[str, set[int]] = {}
    for r in reader.records:
        by_key.setdefault(r.key.decode(), set()).add(r.partition)
    assert all(len(p) == 1 for k, p in by_key.items() if k.startswith(ingest.number))
    unrouted = await ingest.store.list_unrouted(10)
    assert any(u["phone_number_id"].startswith("pn-unknown-") for u in unrouted)


async def test_every_meta_sample_is_accepted_and_routed(ingest: Ingest, infra: Infra) -> None:
    await ingest.store.upsert_channel(Channel(phone_number_id=SAMPLE_NUMBER, workspace_id=ingest.workspace,
                                              waba_id=SAMPLE_WABA, access_token="tok"))
    files = sorted(SAMPLES.glob("*.json"))
    assert len(files) >= 30
    async with TopicReader(infra.kafka_bootstrap, WHATSAPP_EVENTS.name) as reader:
        expected_ids: set[str] = set()
        for path in files:
            body = path.read_bytes()
            response = await ingest.post(body)
            assert response.status_code == 200, (path.name, response.text)
            from inbox_ingest.domain.normalise import normalise_raw

            expected_ids |= {n.event.id for n in normalise_raw(body)}

        def seen(records: list[Any]) -> set[str]:
            return {Event.from_bytes(r.value).id for r in records}

        await reader.read(until=lambda rs: expected_ids <= seen(rs), within=30)
    got = [Event.from_bytes(r.value) for r in reader.records if Event.from_bytes(r.value).id in expected_ids]
    assert {e.id for e in got} == expected_ids
    assert len(got) == len(expected_ids), "samples that share a wamid are published once"
    assert all(e.workspace_id == ingest.workspace for e in got)
    types = {e.type for e in got}
    assert {"whatsapp.message.received", "whatsapp.status.updated", "whatsapp.template.status_changed"} <= types


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
webhookish = st.fixed_dictionaries({
    "object": st.sampled_from(["whatsapp_business_account", "page", ""]),
    "entry": st.lists(st.fixed_dictionaries({
        "id": st.text(max_size=8) | st.integers(),
        "changes": st.lists(st.fixed_dictionaries({
            "field": st.sampled_from(["messages", "history", "smb_message_echoes", "nonsense"]),
            "value": st.dictionaries(st.sampled_from(["metadata", "messages", "statuses", "contacts", "errors"]),
                                     json_values, max_size=4),
        }), max_size=2),
    }), max_size=2),
})


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(webhookish.map(lambda b: json.dumps(b).encode()), st.binary(max_size=200),
                      json_values.map(lambda v: json.dumps(v).encode())))
async def test_fuzzed_bodies_never_cause_a_server_error(ingest: Ingest, body: bytes) -> None:
    response = await ingest.post(body)
    assert response.status_code in (200, 400), (response.status_code, response.text, body[:200])
