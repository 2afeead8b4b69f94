"""The presence service against real Kafka and the real database: two replicas in this process (each
with its own database client, Kafka producer, gRPC server and purge loop) sharing one database and
the real ``inbox.presence.v1`` topic. Events are read back from the topic from its end at the start of
the test, filtered by this test's own (random) workspace ids. This module: the replicas, the event tap, helpers."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from inbox.common.v1 import common_pb2
from inbox.presence.v1 import presence_pb2, presence_pb2_grpc
from inbox_core.events import Event
from inbox_core.runtime import Component
from inbox_core.settings import InboxSettings
from inbox_core.topics import PRESENCE
from inbox_presence.__main__ import Presence, assemble
from inbox_presence.settings import PresenceSettings
from inbox_presence.tracker import PresenceTracker, Publisher, kafka_publisher
from inbox_testkit.infra import Infra

SHORT = {"composing_ttl_s": 1.0, "online_ttl_s": 1.5, "viewing_ttl_s": 1.5, "purge_interval_s": 0.1}


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 15.0, what: str = "condition") -> Any:
    """Polls ``check`` until it returns something truthy (and returns that) or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        await asyncio.sleep(0.05)


@dataclass
class Seen:
    key: str
    event: Event


@dataclass
class EventTap:
    """Reads inbox.presence.v1 from where it ended when the tap started (no consumer group, so it
    never disturbs anyone), keeping this test's events only."""

    bootstrap: str
    workspaces: set[str]
    seen: list[Seen] = field(default_factory=list)
    consumer: AIOKafkaConsumer | None = None
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await self.consumer.start()
        parts = [TopicPartition(PRESENCE.name, p) for p in range(PRESENCE.partitions)]
        self.consumer.assign(parts)
        for tp, end in (await self.consumer.end_offsets(parts)).items():
            self.consumer.seek(tp, end)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.consumer is not None
        while True:
            batches = await self.consumer.getmany(timeout_ms=100)
            for records in batches.values():
                for record in records:
                    event = Event.from_bytes(record.value)
                    if event.workspace_id in self.workspaces:
                        self.seen.append(Seen(record.key.decode(), event))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await self.task
        if self.consumer is not None:
            await self.consumer.stop()

    def of(self, type_: str, workspace_id: str | None = None) -> list[Seen]:
        return [s for s in self.seen
                if s.event.type == type_ and (workspace_id is None or s.event.workspace_id == workspace_id)]

    async def wait(self, type_: str, count: int = 1, workspace_id: str | None = None,
                   timeout: float = 15.0) -> list[Seen]:
        async def enough() -> list[Seen]:
            found = self.of(type_, workspace_id)
            return found if len(found) >= count else []

        found: list[Seen] = await eventually(enough, timeout, f"{count} x {type_}")
        return found

    async def drain(self) -> list[Seen]:
        """Everything on the topic up to now has been read: counts taken after this are final."""
        assert self.consumer is not None
        parts = [TopicPartition(PRESENCE.name, p) for p in range(PRESENCE.partitions)]
        ends = await self.consumer.end_offsets(parts)

        async def caught_up() -> bool:
            assert self.consumer is not None
            positions = {tp: await self.consumer.position(tp) for tp in ends}
            return all(positions[tp] >= end for tp, end in ends.items())

        await eventually(caught_up, 20, "reading the topic to its end")
        return list(self.seen)


@dataclass
class Replica:
    presence: Presence
    stub: presence_pb2_grpc.PresenceServiceStub

    @property
    def tracker(self) -> PresenceTracker:
        return self.presence.tracker


PART_STOP_S = 60.0


async def stop_within(part: Component) -> None:
    """Stops a replica's part, failing with its name and the event loop's tasks when it does not stop: a
    teardown once hung until pytest-timeout's 300 s, whose dump shows threads only, not which part."""
    try:
        await asyncio.wait_for(part.stop(), PART_STOP_S)
    except TimeoutError:
        tasks = "\n".join(f"  {t.get_name()}: {t.get_coro()!r}" for t in asyncio.all_tasks() if not t.done())
        raise AssertionError(f"the replica's {part.name!r} did not stop in {PART_STOP_S:.0f} s; tasks:\n{tasks}") \
            from None


class Cluster:
    """Starts replicas (and taps) and stops them all at the end of the test."""

    def __init__(self, infra: Infra, inbox_settings: InboxSettings, stack: AsyncExitStack) -> None:
        self.infra = infra
        self.inbox_settings = inbox_settings
        self.stack = stack

    async def replica(self, purge: bool = True, **settings: Any) -> Replica:
        config = PresenceSettings(inbox=self.inbox_settings, grpc_port=0, **{**SHORT, **settings})
        presence = assemble(config, "api", metrics=False)
        for part in presence.components(ops=False):
            if part.name == "purge" and not purge:
                continue
            await part.start()
            self.stack.push_async_callback(stop_within, part)
        assert presence.server is not None
        return Replica(presence, await self._stub(presence.server.port))

    async def replica_with(self, publisher: Callable[[Publisher], Publisher], **settings: Any) -> Replica:
        """A replica (without purge loop) whose publishing goes through ``publisher`` (fault injection)."""
        replica = await self.replica(purge=False, **settings)
        replica.tracker.publisher = publisher(kafka_publisher(replica.presence.broker))
        return replica

    async def _stub(self, port: int) -> presence_pb2_grpc.PresenceServiceStub:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.stack.push_async_callback(channel.close)
        return presence_pb2_grpc.PresenceServiceStub(channel)

    async def tap(self, *workspaces: str) -> EventTap:
        tap = EventTap(self.infra.kafka_bootstrap, set(workspaces))
        await tap.start()
        self.stack.push_async_callback(tap.stop)
        return tap

def ws() -> str:
    return f"w-{uuid.uuid4().hex[:12]}"


def actor(agent_id: str, name: str | None = None) -> common_pb2.Actor:
    return common_pb2.Actor(id=agent_id, name=name or agent_id.title())


def composing(workspace_id: str, agent: common_pb2.Actor, conversation_id: str,
              on: bool = True) -> presence_pb2.SetComposingRequest:
    return presence_pb2.SetComposingRequest(workspace_id=workspace_id, agent=agent,
                                            conversation_id=conversation_id, composing=on)


def who(activities: Any) -> list[str]:
    return [a.agent.id for a in activities]


async def presence_of(replica: Replica, workspace_id: str, *conversations: str) -> presence_pb2.GetPresenceResponse:
    return await replica.stub.GetPresence(
        presence_pb2.GetPresenceRequest(workspace_id=workspace_id, conversation_ids=list(conversations)), timeout=10)


async def after_purge_cycles(*replicas: Replica, cycles: int = 2) -> None:
    """Waits until each replica's purge loop completed ``cycles`` more cycles from now."""
    marks = [(r, r.tracker.purge_cycles) for r in replicas]

    async def done() -> bool:
        return all(r.tracker.purge_cycles >= mark + cycles for r, mark in marks)

    await eventually(done, 15, "purge cycles")
