"""The Kafka feed: every partition of the four topics, no consumer group, each event fanned out to the hub inside
a span continuing its producer's trace."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from prometheus_client import Counter
from pydantic import ValidationError

from inbox_core.events import Event
from inbox_core.topics import CONVERSATIONS, CUSTOMERS, ORDERS, PRESENCE
from inbox_gateway.stream import frames
from inbox_gateway.stream.hub import Hub

log = logging.getLogger("inbox.gateway.stream")

TOPICS = (CONVERSATIONS.name, CUSTOMERS.name, ORDERS.name, PRESENCE.name)

STREAM_EVENTS = Counter("inbox_gateway_stream_events_total", "Events read by the stream feed, by outcome",
                        ["topic", "outcome"])

_tracer = trace.get_tracer("inbox.gateway.stream")

Headers = Sequence[tuple[str, bytes | None]]


class _HeadersGetter(Getter[Headers]):
    """Reads W3C trace context from Kafka record headers (what FastStream's producers put there)."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


_HEADERS = _HeadersGetter()


class KafkaFeed:
    """Every event of the topics, to the hub: all partitions assigned by hand, no group, from the end."""

    def __init__(self, bootstrap: str, hub: Hub, topics: Iterable[str] = TOPICS, client_id: str = "inbox-gateway"):
        self.bootstrap = bootstrap
        self.hub = hub
        self.topics = tuple(topics)
        self.client_id = f"{client_id}-{uuid.uuid4().hex[:8]}"
        self.ready = asyncio.Event()
        # The next offset to read of every assigned partition: a reconnect resumes there, not at the end.
        self.positions: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        """Reads until cancelled; (re)connects with backoff while Kafka is away."""
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id, group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="latest")
            try:
                await consumer.start()
                await self._assign(consumer)
                self.ready.set()
                backoff = 0.5
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                    for tp, records in batches.items():
                        for record in records:
                            try:
                                self._handle(record.value, record.headers, record.topic)
                            except Exception:  # not even its workspace is known: every stream is told
                                log.exception("stream feed: a record of %s could not be handled", tp)
                                STREAM_EVENTS.labels(record.topic, "failed").inc()
                                self.hub.gap(None, "fan_out_failed")
                            self.positions[tp] = record.offset + 1
                            # Lets the connections write between events, so a burst does not fill their queues.
                            await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.ready.clear()
                log.warning("stream feed: %r; reconnecting in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        partitions = [TopicPartition(topic, p) for topic, count in (await self._partitions()).items()
                      for p in range(count)]
        consumer.assign(partitions)
        known = [tp for tp in partitions if tp in self.positions]
        await consumer.seek_to_end(*[tp for tp in partitions if tp not in self.positions])
        if known:
            # A reconnect: on from where the last consumer stopped, unless the topic no longer has it.
            earliest = await consumer.beginning_offsets(known)
            lost = [tp for tp in known if earliest[tp] > self.positions[tp]]
            for tp in known:
                consumer.seek(tp, max(self.positions[tp], earliest[tp]))
            if lost:
                log.warning("stream feed: events of %s are gone from Kafka; the open streams get a reset", lost)
                self.hub.gap(None, "feed_gap")
        # Resolve the offsets now, so that "ready" means "everything from here on is seen".
        for tp in partitions:
            self.positions[tp] = await consumer.position(tp)

    async def _partitions(self) -> dict[str, int]:
        """Each topic's partition count; waits (up to 30 s) for topics that are still being created."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=self.client_id)
        await admin.start()
        try:
            deadline = time.monotonic() + 30
            while True:
                described = await admin.describe_topics(list(self.topics))
                counts = {d["topic"]: len(d.get("partitions") or []) for d in described}
                missing = [t for t in self.topics if not counts.get(t)]
                if not missing:
                    return counts
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topics {missing} do not exist")
                await asyncio.sleep(0.5)
        finally:
            await admin.close()

    def _handle(self, raw: bytes | None, headers: Headers = (), topic: str = "") -> None:
        if raw is None:
            return
        # A child of the producer's span, so one trace reaches from the webhook to the stream.
        with _tracer.start_as_current_span(
            f"{topic} fan-out", context=propagate.extract(headers, getter=_HEADERS), kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                        "messaging.operation": "process"},
        ) as span:
            try:
                event = Event.from_bytes(raw)
            except ValidationError:
                log.warning("stream feed: a message that is not an event was skipped")
                STREAM_EVENTS.labels(topic, "invalid").inc()
                return
            span.set_attribute("messaging.message.id", event.id)
            span.set_attribute("inbox.event_type", event.type)
            try:
                frame = frames.frame_of(event)
                if frame is None:
                    STREAM_EVENTS.labels(topic, "no_workspace").inc()
                    return
                self.hub.publish(frame)
                for mention in frames.mention_frames(event, frame):
                    self.hub.publish(mention)
            except Exception:
                # One event that cannot be fanned out (a bug) costs its workspace's streams a reset, never
                # silence, and the feed goes on with the next event.
                log.exception("stream feed: event %s (%s) could not be fanned out", event.id, event.type)
                STREAM_EVENTS.labels(topic, "failed").inc()
                self.hub.gap(event.workspace_id or None, "fan_out_failed")
                return
            STREAM_EVENTS.labels(topic, "fanned_out").inc()
