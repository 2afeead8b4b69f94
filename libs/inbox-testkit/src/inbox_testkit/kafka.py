"""Kafka as a test sees it: what was published to a topic, and a consumer group that starts at the end."""

from __future__ import annotations

import time
from typing import Any


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
