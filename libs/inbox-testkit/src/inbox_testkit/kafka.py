"""Kafka as a test sees it: a topic of its own, what was published to a topic, a consumer group that starts
at the end, a started broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faststream.kafka import KafkaBroker

    from inbox_core.events import Event
    from inbox_core.settings import InboxSettings

# What published_from_now returns: a call reads what the topic got since then.
ReadPublished = Callable[[], Awaitable[list[tuple[str, "Event"]]]]


class TopicReader:
    """Reads what is published to a topic from the moment it started (every partition, no group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from aiokafka import AIOKafkaConsumer

        self.topic = topic
        self.bootstrap = bootstrap
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        partitions = sorted(p["partition"] for p in described.get("partitions", []))
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist")
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self.consumer.assign(tps)
        ends = await self.consumer.end_offsets(tps)
        for tp in tps:
            self.consumer.seek(tp, ends[tp])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def read(self, until: Any = None, within: float = 20.0, settle: float = 0.0) -> list[Any]:
        """Collects records until ``until(records)`` is true (or the timeout passes), then keeps
        reading ``settle`` seconds more so that an unexpected extra record would be seen too."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and not (until and until(self.records)):
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
        settle_end = time.monotonic() + settle
        while time.monotonic() < settle_end:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.records.extend(records)
        return self.records

    def events(self) -> list[Any]:
        from inbox_core.events import Event

        return [Event.from_bytes(r.value) for r in self.records]


async def start_group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commits the topics' current ends for a new consumer group, so that it reads only what comes next
    (in a test session the real topics already hold every earlier test's events)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


async def fresh_topic(bootstrap: str, prefix: str, partitions: int) -> str:
    """A topic of its own for a test session (``prefix`` and a random suffix): the real topics are shared
    with everyone's tests."""
    from inbox_core.topics import ensure_topics

    name = f"{prefix}.{uuid.uuid4().hex[:10]}"
    await ensure_topics(bootstrap, extra=[(name, partitions)])
    return name


async def topic_ends(bootstrap: str, topic: str, partitions: int) -> dict[Any, int]:
    """The end offset of each of the topic's partitions (keyed by aiokafka's TopicPartition) now."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        ends: dict[Any, int] = await consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
        return ends
    finally:
        await consumer.stop()


async def keyed_events_since(bootstrap: str, start: dict[Any, int]) -> list[tuple[str, Event]]:
    """What the partitions got from the ``start`` offsets (``topic_ends``) to their ends now, as (key, event)."""
    from aiokafka import AIOKafkaConsumer

    from inbox_core.events import Event

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


async def published_from_now(bootstrap: str, topic: str, partitions: int) -> ReadPublished:
    """Reads, each time it is called, everything published on the topic since this call, as (key, event)."""
    start = await topic_ends(bootstrap, topic, partitions)

    async def read() -> list[tuple[str, Event]]:
        return await keyed_events_since(bootstrap, start)

    return read


@asynccontextmanager
async def started_broker(settings: InboxSettings, service: str) -> AsyncIterator[KafkaBroker]:
    """A service's broker (no metrics registry, no tracing), started for the test and stopped after it."""
    from inbox_core.kafka import make_broker

    broker = make_broker(settings, service, registry=None, telemetry=False)
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()
