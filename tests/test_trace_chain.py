"""Observability: one trace follows a message from Meta's webhook to the agents' live stream, and the
promises around it (OTLP export only when configured, JSON logs with trace ids, the metrics).

The chain test runs ingest's webhook app, the conversations worker and its gRPC server, and the gateway
(HTTP server, stream feed, gRPC client) in this one process, against the real test Kafka and database,
so one in-memory exporter sees every span. It uses the real topics (the production wiring, unchanged):
the worker's consumer group is fresh and starts at the topics' ends, and everything is matched on this
test's own workspace and trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, cast

import httpx
import pytest
from argon2 import PasswordHasher
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from prometheus_client import REGISTRY
from pymongo import AsyncMongoClient

from inbox.conversations.v1 import conversations_pb2_grpc
from inbox_conversations.consumers import GROUP_ID as CONVERSATIONS_GROUP
from inbox_conversations.consumers import register
from inbox_conversations.outbox import Publisher
from inbox_conversations.rpc import SERVICE_NAME, ConversationsRpc
from inbox_conversations.store import ConversationsStore
from inbox_core.grpc_server import GrpcServer
from inbox_core.ids import conversation_id
from inbox_core.kafka import make_broker, report_lag
from inbox_core.logging import configure_logging
from inbox_core.mongo import Document, service_database
from inbox_core.runtime import HttpComponent
from inbox_core.settings import InboxSettings
from inbox_core.telemetry import setup_telemetry
from inbox_core.topics import CONVERSATIONS, CUSTOMERS, ORDERS, WHATSAPP_EVENTS
from inbox_gateway.auth import Passwords
from inbox_gateway.gateway import Gateway
from inbox_gateway.http import create_app as gateway_app
from inbox_gateway.settings import GatewaySettings
from inbox_ingest.domain.signature import sign
from inbox_ingest.http import create_app as ingest_app
from inbox_ingest.intake import Intake
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import start_group_at_end
from inbox_testkit.ports import free_port

APP_SECRET = "trace-test-app-secret"
PASSWORD = "trace test password"
GET_CONVERSATION = "/inbox.conversations.v1.ConversationsService/GetConversation"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every span of this process, from here on (set before anything that traces is built)."""
    memory = InMemorySpanExporter()
    setup_telemetry("trace-test", extra_processor=SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # the provider stays installed for the session: later spans are no longer kept


# --- reading a trace -------------------------------------------------------------------------------------


class Trace:
    def __init__(self, spans: list[ReadableSpan], trace_id: int) -> None:
        self.spans = [s for s in spans if s.context is not None and s.context.trace_id == trace_id]
        self.by_id = {s.context.span_id: s for s in self.spans if s.context is not None}

    def find(self, kind: SpanKind, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.kind == kind and s.name == name]

    def parent(self, span: ReadableSpan) -> ReadableSpan | None:
        return self.by_id.get(span.parent.span_id) if span.parent is not None else None

    def descends(self, span: ReadableSpan, ancestor: ReadableSpan) -> bool:
        current = self.parent(span)
        while current is not None:
            if current is ancestor:
                return True
            current = self.parent(current)
        return False

    def render(self) -> str:
        lines: list[str] = []

        def walk(span: ReadableSpan, depth: int) -> None:
            parent = f"{span.parent.span_id:016x}" if span.parent is not None else "-"
            assert span.context is not None
            lines.append(f"{'  ' * depth}{span.name} [{span.kind.name}] span={span.context.span_id:016x} "
                         f"parent={parent}")
            for child in sorted((s for s in self.spans if s.parent is not None
                                 and s.parent.span_id == span.context.span_id), key=lambda s: s.start_time or 0):
                walk(child, depth + 1)

        for root in (s for s in self.spans if self.parent(s) is None):
            walk(root, 0)
        return "\n".join(lines)


def _linked_fan_outs(spans: list[ReadableSpan]) -> list[ReadableSpan]:
    """message.created fan-outs that descend from a whatsapp.events.v1 consume span of this process."""
    out: list[ReadableSpan] = []
    for post in (s for s in spans if s.kind == SpanKind.SERVER and "/webhooks/whatsapp" in s.name):
        assert post.context is not None
        chain = Trace(spans, post.context.trace_id)
        consumed = chain.find(SpanKind.CONSUMER, f"{WHATSAPP_EVENTS.name} process")
        out += [s for s in chain.find(SpanKind.CONSUMER, f"{CONVERSATIONS.name} fan-out")
                if s.attributes and s.attributes.get("inbox.event_type") == "message.created"
                and any(chain.descends(s, c) for c in consumed)]
    return out


def _traceparent(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"00-{span.context.trace_id:032x}-{span.context.span_id:016x}-01"


# --- the system, in this process -------------------------------------------------------------------------


@dataclass
class System:
    ingest: httpx.AsyncClient
    gateway: Gateway
    gateway_url: str
    token: str
    workspace_id: str
    number: str
    conversations_group: str


@pytest.fixture
async def system(exporter: InMemorySpanExporter, infra: Infra, inbox_settings: InboxSettings,
                 mongo_client: AsyncMongoClient[Document]) -> AsyncIterator[System]:
    settings = inbox_settings.model_copy(update={"group_prefix": f"trace-{uuid.uuid4().hex[:8]}-"})
    databases = [service_database(mongo_client, settings, name) for name in ("ingest", "conversations", "gateway")]

    # The gateway: accounts, a team of one, its stream feed, and its gRPC client of conversations.
    server = GrpcServer(free_port(), host="127.0.0.1")
    nowhere = f"127.0.0.1:{free_port()}"
    gateway_settings = GatewaySettings(
        inbox=settings, jwt_secret="trace-test-jwt-secret-0123456789", cookie_secure=False,
        conversations_target=server.address, customers_target=nowhere, orders_target=nowhere,
        presence_target=nowhere, ingest_target=nowhere)
    passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    gateway = Gateway(gateway_settings, client=mongo_client, passwords=passwords)
    await gateway.accounts.ensure_indexes()
    workspace = await gateway.accounts.create_workspace("Trace", "EUR")
    email = f"agent-{uuid.uuid4().hex[:8]}@trace.test"
    agent, _ = await gateway.accounts.create_agent(email, "Trace agent", await passwords.hash(PASSWORD))
    await gateway.accounts.set_membership(workspace.id, agent.id, "agent")

    # Conversations: the worker's consumers on a broker of its own, and the gRPC server.
    conversations = ConversationsStore(databases[1])
    await conversations.ensure_indexes()
    conversations_broker = make_broker(settings, "conversations")
    publisher = Publisher(conversations, conversations_broker)
    register(conversations_broker, conversations, publisher)
    await start_group_at_end(infra.kafka_bootstrap, settings.group_prefix + CONVERSATIONS_GROUP,
                             [WHATSAPP_EVENTS.name, ORDERS.name, CUSTOMERS.name])
    await conversations_broker.start()
    server.add(conversations_pb2_grpc.add_ConversationsServiceServicer_to_server,
               ConversationsRpc(conversations, publisher, publish_timeout_s=10), SERVICE_NAME)
    await server.start()

    # Ingest: the webhook app with a connected number of the team's workspace.
    ingest_store = IngestStore(databases[0])
    await ingest_store.ensure_indexes()
    number = str(uuid.uuid4().int % 10**15)
    await ingest_store.upsert_channel(Channel(phone_number_id=number, workspace_id=workspace.id, waba_id="WABA-T",
                                              display_phone_number="15550002222"))
    ingest_broker = make_broker(settings, "ingest")
    await ingest_broker.start()
    intake = Intake(ingest_store, ingest_broker, publish_timeout_s=10, dedupe_days=8)
    ingest_settings = IngestSettings(inbox=settings, meta_app_secret=APP_SECRET, meta_verify_token="verify")
    ingest = httpx.AsyncClient(transport=httpx.ASGITransport(app=cast(Any, ingest_app(ingest_settings, intake))),
                               base_url="http://ingest")

    # The gateway over real HTTP (the stream is an endless response).
    port = free_port()
    http = HttpComponent("http", gateway_app(gateway), port, host="127.0.0.1")
    await http.start()
    url = f"http://127.0.0.1:{port}"
    lag_reports = asyncio.create_task(report_lag(conversations_broker, every_s=0.2))
    try:
        assert gateway.feed is not None
        await asyncio.wait_for(gateway.feed.ready.wait(), 60)
        async with httpx.AsyncClient(base_url=url, timeout=20) as client:
            login = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        yield System(ingest, gateway, url, login.json()["token"], workspace.id, number,
                     settings.group_prefix + CONVERSATIONS_GROUP)
    finally:
        lag_reports.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await lag_reports
        await ingest.aclose()
        await gateway.close_streams()
        await http.stop()
        await intake.flush()
        await ingest_broker.stop()
        await conversations_broker.stop()
        await server.stop(grace=0.5)
        for db in databases:
            await mongo_client.drop_database(db.name)


def webhook(number: str, wamid: str, wa_id: str) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "WABA-T", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550002222", "phone_number_id": number},
            "contacts": [{"profile": {"name": "Grace"}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid, "timestamp": str(int(time.time()) - 5), "type": "text",
                          "text": {"body": "where is my order?"}}]}}]}]}).encode()


def _sse_connections() -> float:
    return REGISTRY.get_sample_value("inbox_gateway_sse_connections") or 0.0


def _metrics() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value for m in REGISTRY.collect() for s in m.samples}


def _grew(before: dict[tuple[str, frozenset[tuple[str, str]]], float],
          after: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> bool:
    key = (name, frozenset(labels.items()))
    return after.get(key, 0.0) > before.get(key, 0.0)


def _lag_partitions(group: str) -> set[str]:
    return {labels["partition"] for (name, key) in _metrics() if name == "inbox_consumer_lag"
            for labels in [dict(key)] if labels["topic"] == WHATSAPP_EVENTS.name and labels["group"] == group}


async def _next_event(lines: AsyncIterator[str], deadline: float) -> tuple[str, Any]:
    """The next SSE event (name, data) of the stream, skipping comments and retry lines."""
    name, data = "", ""
    while True:
        line = await asyncio.wait_for(lines.__anext__(), max(0.1, deadline - time.monotonic()))
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data = line[5:].strip()
        elif line == "" and name:
            return name, json.loads(data) if data else None


# --- the chain -------------------------------------------------------------------------------------------


async def test_one_trace_from_webhook_to_stream(system: System, exporter: InMemorySpanExporter) -> None:
    wa_id = "49151" + str(uuid.uuid4().int % 10**7).zfill(7)
    cid = conversation_id(system.workspace_id, system.number, wa_id)
    before = _sse_connections()
    metrics_before = _metrics()
    headers = {"Authorization": f"Bearer {system.token}"}
    async with httpx.AsyncClient(base_url=system.gateway_url, headers=headers, timeout=30) as client, \
            client.stream("GET", "/api/stream") as stream:
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        assert await asyncio.wait_for(lines.__anext__(), 10) == "retry: 3000"
        assert _sse_connections() == before + 1

        body = webhook(system.number, f"wamid.{uuid.uuid4().hex}", wa_id)
        posted = await system.ingest.post("/webhooks/whatsapp", content=body, headers={
            "X-Hub-Signature-256": sign(APP_SECRET.encode(), body), "Content-Type": "application/json"})
        assert posted.status_code == 200 and posted.json()["published"] == 1, posted.text

        deadline = time.monotonic() + 60
        while True:
            name, data = await _next_event(lines, deadline)
            if name == "message.created" and data["conversation_id"] == cid:
                break

        # The conversations worker's consume span ends after its publishes, maybe after the fan-out: wait
        # until the exported spans connect the fan-out to it.
        settle = time.monotonic() + 15
        while True:
            spans = list(exporter.get_finished_spans())
            linked = _linked_fan_outs(spans)
            if linked or time.monotonic() > settle:
                break
            await asyncio.sleep(0.1)
        webhook_spans = [s for s in spans if s.kind == SpanKind.SERVER and "/webhooks/whatsapp" in s.name]
        assert len(webhook_spans) == 1, [s.name for s in spans if s.kind == SpanKind.SERVER]
        post = webhook_spans[0]
        assert post.context is not None
        chain = Trace(spans, post.context.trace_id)
        fanned_out = [s for s in chain.find(SpanKind.CONSUMER, f"{CONVERSATIONS.name} fan-out")
                      if s.attributes and s.attributes.get("inbox.event_type") == "message.created"]
        assert fanned_out, chain.render()  # more than one only after a redelivery (the hub drops the copy)
        # Only the fan-outs of this process's conversations worker: a worker of another process in the
        # session may also have turned the same webhook event into a message.created of its own.
        whatsapp_consumed = chain.find(SpanKind.CONSUMER, f"{WHATSAPP_EVENTS.name} process")
        fanned_out = [s for s in fanned_out if any(chain.descends(s, c) for c in whatsapp_consumed)]
        assert fanned_out, chain.render()

        # The agent opens the conversation from the stream event: a gateway request carrying the trace,
        # which calls conversations over gRPC (context in metadata).
        opened = await client.get(f"/api/conversations/{cid}", headers={"traceparent": _traceparent(fanned_out[0])})
        assert opened.status_code == 200, opened.text
        assert opened.json()["id"] == cid
    deadline = time.monotonic() + 10
    while _sse_connections() != before and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert _sse_connections() == before

    chain = Trace(list(exporter.get_finished_spans()), post.context.trace_id)
    print(f"\ntrace {post.context.trace_id:032x}:\n{chain.render()}")

    # ingest: the webhook request, and its publish to whatsapp.events.v1 inside it
    assert chain.parent(post) is None
    produced = [s for s in chain.find(SpanKind.PRODUCER, f"{WHATSAPP_EVENTS.name} publish") if chain.descends(s, post)]
    assert len(produced) == 1, chain.render()
    # conversations: consumed from whatsapp.events.v1, continuing the producer's context from the headers
    consumed = chain.find(SpanKind.CONSUMER, f"{WHATSAPP_EVENTS.name} process")
    assert consumed, chain.render()  # more than one only after a redelivery (a rebalance before the commit)
    consumer_parent = chain.parent(consumed[0])
    assert consumer_parent is not None and consumer_parent.kind == SpanKind.PRODUCER, chain.render()
    assert consumer_parent.name.startswith(WHATSAPP_EVENTS.name) and chain.descends(consumer_parent, post)
    # ... and its events published to inbox.conversations.v1 inside the consume span
    # (Other services of the session, e.g. a running customers worker, may join the same trace through the
    # topics: only the conversations worker's own publishes are looked at.)
    republished = [s for s in chain.find(SpanKind.PRODUCER, f"{CONVERSATIONS.name} publish")
                   if any(chain.descends(s, c) for c in consumed)]
    assert republished, chain.render()
    # gateway: the fan-out of message.created, a child of that producer's context
    fan_out = fanned_out[0]
    fan_out_parent = chain.parent(fan_out)
    assert fan_out_parent is not None and fan_out_parent.kind == SpanKind.PRODUCER, chain.render()
    assert fan_out_parent.name.startswith(CONVERSATIONS.name)
    assert any(chain.descends(fan_out, c) for c in consumed), chain.render()
    assert fan_out.attributes is not None and fan_out.attributes.get("messaging.destination.name") == CONVERSATIONS.name
    # every conversation event of this message reached the stream in this trace
    assert {s.attributes.get("inbox.event_type") for s in chain.find(SpanKind.CONSUMER, f"{CONVERSATIONS.name} fan-out")
            if s.attributes} >= {"message.created", "conversation.updated"}
    # the gRPC hop: a server span of conversations whose parent is the gateway's client span
    grpc_servers = chain.find(SpanKind.SERVER, GET_CONVERSATION)
    assert len(grpc_servers) == 1, chain.render()
    grpc_client = chain.parent(grpc_servers[0])
    assert grpc_client is not None and grpc_client.kind == SpanKind.CLIENT and grpc_client.name == GET_CONVERSATION
    assert chain.descends(grpc_client, fan_out), chain.render()
    request = next(s for s in chain.spans if s.kind == SpanKind.SERVER and "/api/conversations/" in s.name)
    assert chain.descends(grpc_client, request) and chain.parent(request) is fan_out

    # The metrics of the same flow (what each service's /metrics serves).
    after = _metrics()
    assert _grew(metrics_before, after, "inbox_http_request_duration_seconds_count", method="POST",
                 path="/webhooks/whatsapp", status_code="200", app_name="inbox-ingest")
    assert _grew(metrics_before, after, "faststream_published_messages_total", app_name="inbox-ingest",
                 broker="kafka", destination=WHATSAPP_EVENTS.name, status="success")
    assert _grew(metrics_before, after, "faststream_received_processed_messages_total", app_name="inbox-conversations",
                 broker="kafka", handler=WHATSAPP_EVENTS.name, status="acked")
    assert _grew(metrics_before, after, "inbox_rpc_seconds_count", method=GET_CONVERSATION, outcome="ok")
    assert _grew(metrics_before, after, "inbox_gateway_stream_events_total", topic=CONVERSATIONS.name,
                 outcome="fanned_out")
    assert _grew(metrics_before, after, "inbox_http_request_duration_seconds_count", method="GET",
                 path="/api/conversations/{conversation_id}", status_code="200", app_name="inbox-gateway")
    # The worker's lag, per partition of its group (report_lag, every 0.2 s here).
    every_partition = {str(p) for p in range(WHATSAPP_EVENTS.partitions)}
    deadline = time.monotonic() + 15
    while _lag_partitions(system.conversations_group) != every_partition and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert _lag_partitions(system.conversations_group) == every_partition


# --- logs, export, metrics -------------------------------------------------------------------------------


def test_json_logs_carry_trace_and_span_ids() -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in ("aiokafka", "pymongo")})
    try:
        configure_logging("trace-test", "INFO")
        handler = root.handlers[0]
        assert isinstance(handler, logging.StreamHandler)
        captured = io.StringIO()
        handler.setStream(captured)
        tracer = TracerProvider().get_tracer("trace-test")  # a provider of its own: no global state touched
        log = logging.getLogger("inbox.trace-test")
        with tracer.start_as_current_span("work") as span:
            log.info("inside a span")
        log.info("outside any span")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        for name, level in saved[2].items():
            logging.getLogger(name).setLevel(level)
    inside, outside = (json.loads(line) for line in captured.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["message"] == "inside a span" and inside["service"] == "trace-test" and inside["level"] == "INFO"
    assert inside["trace_id"] == f"{context.trace_id:032x}"
    assert inside["span_id"] == f"{context.span_id:016x}"
    assert outside["message"] == "outside any span" and "trace_id" not in outside and "span_id" not in outside


PROBE = textwrap.dedent("""
    import json
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from inbox_core.telemetry import setup_telemetry

    memory = InMemorySpanExporter()
    provider = setup_telemetry("probe", extra_processor=SimpleSpanProcessor(memory))
    with provider.get_tracer("probe").start_as_current_span("probe-span"):
        pass
    provider.force_flush()
    processors = provider._active_span_processor._span_processors
    print(json.dumps({
        "processors": [type(p).__name__ for p in processors],
        "exporters": [type(getattr(p, "span_exporter", None) or getattr(p, "_exporter", None)).__name__
                      for p in processors],
        "kept": [s.name for s in memory.get_finished_spans()],
    }))
    provider.shutdown()
""")


class _OtlpSink(BaseHTTPRequestHandler):
    received: list[tuple[str, str, int]] = []

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(size)
        self.received.append((self.path, self.headers.get("Content-Type") or "", size))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


BARE_PROBE = textwrap.dedent("""
    import json
    from inbox_core.telemetry import setup_telemetry

    provider = setup_telemetry("probe")
    with provider.get_tracer("probe").start_as_current_span("probe-span") as span:
        context, recording = span.get_span_context(), span.is_recording()
    print(json.dumps({"recording": recording, "valid": context.is_valid,
                      "sampler": provider.sampler.get_description()}))
    provider.shutdown()
""")


def test_spans_are_recorded_only_while_something_receives_them() -> None:
    """Without an exporter (nor a processor) a span records nothing, yet has its ids for the logs and the
    propagation; with an endpoint it is recorded, by the sampler the OTEL_TRACES_SAMPLER variables choose."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    bare = _probe(base, BARE_PROBE)
    assert bare["recording"] is False and bare["valid"] is True, bare
    # An endpoint nobody listens on: the span is recorded (the batch exporter's failure is its own affair).
    exported = _probe({**base, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_EXPORT_TIMEOUT": "100"},
                      BARE_PROBE)
    assert exported["recording"] is True and "ParentBased{root:AlwaysOnSampler" in exported["sampler"], exported
    ratio = _probe({**base, "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9", "OTEL_BSP_EXPORT_TIMEOUT": "100",
                    "OTEL_TRACES_SAMPLER": "always_off"}, BARE_PROBE)
    assert ratio["recording"] is False and "AlwaysOffSampler" in ratio["sampler"], ratio


def _probe(env: dict[str, str], script: str = PROBE) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_otlp_export_only_when_an_endpoint_is_set() -> None:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    unset = _probe(base)
    assert unset["processors"] == ["SimpleSpanProcessor"] and unset["kept"] == ["probe-span"], unset

    _OtlpSink.received = []
    sink = HTTPServer(("127.0.0.1", 0), _OtlpSink)
    thread = threading.Thread(target=sink.serve_forever, daemon=True)
    thread.start()
    try:
        endpoint = f"http://127.0.0.1:{sink.server_address[1]}"
        configured = _probe({**base, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint})
    finally:
        sink.shutdown()
        sink.server_close()
    assert configured["processors"] == ["BatchSpanProcessor", "SimpleSpanProcessor"], configured
    assert configured["exporters"][0] == "OTLPSpanExporter"
    assert [(path, kind) for path, kind, _ in _OtlpSink.received] == [("/v1/traces", "application/x-protobuf")]
    assert _OtlpSink.received[0][2] > 0


def test_metrics_the_chain_does_not_exercise_are_registered() -> None:
    """Failures, dead letters and Meta's answers: the series exist in the registry every /metrics serves
    (the chain test above sees the others move: HTTP and RPC latency, consumed and published messages,
    lag per partition, SSE connections)."""
    import inbox_ingest.sender

    families = {metric.name for metric in REGISTRY.collect()}
    assert inbox_ingest.sender.META_SEND_OUTCOMES._labelnames == ("outcome", "code")
    for name in ("inbox_consumer_failures", "inbox_dead_lettered", "inbox_meta_send_outcomes",
                 "inbox_gateway_sse_connections"):
        assert name in families, name
