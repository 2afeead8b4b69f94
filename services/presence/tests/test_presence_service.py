"""The presence service against real Kafka and the real database: two replicas in this process (each
with its own database client, Kafka producer, gRPC server and purge loop) sharing one database and
the real ``inbox.presence.v1`` topic. Events are read back from the topic from its end at the start of
the test, filtered by this test's own (random) workspace ids."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, timedelta
from typing import Any

import grpc
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError

from inbox.common.v1 import common_pb2
from inbox.presence.v1 import presence_pb2, presence_pb2_grpc
from inbox_core.events import Event
from inbox_core.events.presence import AgentOffline, AgentOnline, ComposingStarted, ComposingStopped
from inbox_core.settings import InboxSettings
from inbox_core.testing import Infra
from inbox_core.topics import PRESENCE
from inbox_presence import domain
from inbox_presence.__main__ import Presence, assemble
from inbox_presence.settings import PresenceSettings
from inbox_presence.tracker import PresenceTracker, Publisher, kafka_publisher

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
            self.stack.push_async_callback(part.stop)
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


@pytest.fixture
async def cluster(infra: Infra, inbox_settings: InboxSettings) -> AsyncIterator[Cluster]:
    async with AsyncExitStack() as stack:
        yield Cluster(infra, inbox_settings, stack)


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


# --- tests ------------------------------------------------------------------------------------------


async def test_a_burst_of_composing_yields_one_started_event(cluster: Cluster) -> None:
    a, b = await cluster.replica(composing_ttl_s=10), await cluster.replica(composing_ttl_s=10)
    w = ws()
    tap = await cluster.tap(w)
    alice = actor("alice")

    # Keystrokes arrive concurrently on both replicas, then keep coming one by one.
    await asyncio.gather(*(r.stub.SetComposing(composing(w, alice, "c1"), timeout=10) for r in [a, b] * 15))
    for i in range(10):
        reply = await (a if i % 2 else b).stub.SetComposing(composing(w, alice, "c1"), timeout=10)
    assert reply.HasField("expires_at")
    assert who((await presence_of(b, w, "c1")).conversations[0].composing) == ["alice"]

    stopped_reply = await b.stub.SetComposing(composing(w, alice, "c1", on=False), timeout=10)
    assert not stopped_reply.HasField("expires_at")
    await tap.wait("presence.composing.stopped")
    await tap.drain()

    started = tap.of("presence.composing.started")
    stopped = tap.of("presence.composing.stopped")
    assert len(started) == 1, [s.event for s in started]
    assert len(stopped) == 1, [s.event for s in stopped]
    assert started[0].key == stopped[0].key == "c1"
    begin, end = started[0].event.payload(ComposingStarted), stopped[0].event.payload(ComposingStopped)
    assert begin.agent.id == "alice" and begin.agent.name == "Alice" and begin.conversation_id == "c1"
    assert end.session_id == begin.session_id and end.reason == "stopped"
    assert tap.seen.index(started[0]) < tap.seen.index(stopped[0])
    assert (await presence_of(a, w, "c1")).conversations[0].composing == []

    # Typing again after the stop is a new session.
    await a.stub.SetComposing(composing(w, alice, "c1"), timeout=10)
    again = (await tap.wait("presence.composing.started", 2))[1].event.payload(ComposingStarted)
    assert again.session_id != begin.session_id


async def test_composing_expires_without_a_stop_and_one_replica_publishes_it(cluster: Cluster) -> None:
    # Both replicas purge every 50 ms: they race for every expired state.
    a, b = await cluster.replica(composing_ttl_s=2, purge_interval_s=0.05), \
        await cluster.replica(composing_ttl_s=2, purge_interval_s=0.05)
    w = ws()
    tap = await cluster.tap(w)
    reply = await a.stub.SetComposing(composing(w, actor("alice"), "c1"), timeout=10)
    assert who((await presence_of(b, w, "c1")).conversations[0].composing) == ["alice"]

    stopped = (await tap.wait("presence.composing.stopped", timeout=10))[0]
    payload = stopped.event.payload(ComposingStopped)
    assert payload.reason == "expired" and stopped.key == "c1"
    # Dated when it ran out, not when a purge noticed.
    assert stopped.event.occurred_at == reply.expires_at.ToDatetime(tzinfo=UTC)
    for replica in (a, b):
        assert (await presence_of(replica, w, "c1")).conversations[0].composing == []

    # Once both replicas purged again, nobody published a second "stopped", and the state is gone.
    await after_purge_cycles(a, b)
    await tap.drain()
    assert len(tap.of("presence.composing.stopped")) == 1
    assert len(tap.of("presence.composing.started")) == 1
    assert await a.presence.store.states.count_documents({"workspace_id": w}) == 0


async def test_replicas_purging_at_once_publish_each_expiry_once(cluster: Cluster) -> None:
    # No background loops: both replicas purge at the same moment, on purpose.
    a, b = await cluster.replica(purge=False), await cluster.replica(purge=False)
    w = ws()
    tap = await cluster.tap(w)
    conversations = [f"c{i}" for i in range(12)]
    await asyncio.gather(*(a.stub.SetComposing(composing(w, actor("alice"), c), timeout=10) for c in conversations))
    await a.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=w, agent=actor("bob")), timeout=10)
    await tap.wait("presence.composing.started", len(conversations))

    async def all_expired() -> bool:
        return (await presence_of(b, w)).conversations == [] and (await presence_of(b, w)).agents == []

    await eventually(all_expired, 10, "expiry")
    results = await asyncio.gather(a.tracker.purge_once(), b.tracker.purge_once(),
                                   a.tracker.purge_once(), b.tracker.purge_once())
    assert sum(r.expired for r in results) == len(conversations) + 1
    await tap.drain()
    stopped = tap.of("presence.composing.stopped")
    assert sorted(s.key for s in stopped) == sorted(conversations)
    assert {s.event.data["reason"] for s in stopped} == {"expired"}
    assert len(tap.of("presence.agent.offline")) == 1
    assert await a.presence.store.states.count_documents({}) == 0
    assert await a.presence.store.outbox.count_documents({"done": False}) == 0


async def test_two_replicas_agree(cluster: Cluster) -> None:
    a, b = await cluster.replica(composing_ttl_s=10, online_ttl_s=10, viewing_ttl_s=10), \
        await cluster.replica(composing_ttl_s=10, online_ttl_s=10, viewing_ttl_s=10)
    w = ws()
    tap = await cluster.tap(w)
    alice, bob = actor("alice"), actor("bob")
    await a.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=w, agent=alice), timeout=10)
    await b.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=w, agent=bob), timeout=10)
    await a.stub.SetViewing(presence_pb2.SetViewingRequest(workspace_id=w, agent=alice, conversation_id="c1"),
                            timeout=10)
    await b.stub.SetComposing(composing(w, bob, "c1"), timeout=10)
    await a.stub.SetComposing(composing(w, alice, "c1"), timeout=10)

    seen_by_a, seen_by_b = await presence_of(a, w, "c1"), await presence_of(b, w, "c1")
    assert seen_by_a == seen_by_b
    assert sorted(who(seen_by_a.conversations[0].composing)) == ["alice", "bob"]
    assert who(seen_by_a.conversations[0].viewing) == ["alice"]
    assert sorted(p.agent.id for p in seen_by_a.agents) == ["alice", "bob"]

    # A stop through the other replica stops the same state, once.
    await a.stub.SetComposing(composing(w, bob, "c1", on=False), timeout=10)
    await b.stub.SetComposing(composing(w, bob, "c1", on=False), timeout=10)
    await tap.wait("presence.composing.stopped")
    assert who((await presence_of(b, w, "c1")).conversations[0].composing) == ["alice"]
    await tap.drain()
    stops = tap.of("presence.composing.stopped")
    assert len(stops) == 1 and stops[0].event.payload(ComposingStopped).agent.id == "bob"
    assert len(tap.of("presence.composing.started")) == 2
    assert len(tap.of("presence.agent.online")) == 2
    assert len(tap.of("presence.viewing.started")) == 1


async def test_another_workspace_never_sees_presence(cluster: Cluster) -> None:
    a = await cluster.replica(composing_ttl_s=10, online_ttl_s=10, viewing_ttl_s=10)
    mine, theirs = ws(), ws()
    tap = await cluster.tap(mine, theirs)
    alice = actor("alice", "Alice of mine")
    await a.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=mine, agent=alice), timeout=10)
    await a.stub.SetViewing(presence_pb2.SetViewingRequest(workspace_id=mine, agent=alice, conversation_id="c1"),
                            timeout=10)
    await a.stub.SetComposing(composing(mine, alice, "c1"), timeout=10)

    other = await presence_of(a, theirs, "c1")
    assert other.agents == []
    assert other.conversations[0].composing == [] and other.conversations[0].viewing == []
    assert (await presence_of(a, theirs)).conversations == []

    # The same agent and conversation ids in the other workspace are other states.
    await a.stub.SetComposing(composing(theirs, actor("alice", "Alice of theirs"), "c1", on=False), timeout=10)
    await a.stub.SetComposing(composing(theirs, actor("alice", "Alice of theirs"), "c1"), timeout=10)
    started = await tap.wait("presence.composing.started", 2)
    assert sorted(s.event.workspace_id or "" for s in started) == sorted([mine, theirs])
    mine_now = await presence_of(a, mine, "c1")
    assert [x.agent.name for x in mine_now.conversations[0].composing] == ["Alice of mine"]
    theirs_now = await presence_of(a, theirs, "c1")
    assert [x.agent.name for x in theirs_now.conversations[0].composing] == ["Alice of theirs"]
    assert theirs_now.agents == []
    await tap.drain()
    assert tap.of("presence.composing.stopped") == []


async def test_get_presence_by_conversations_and_by_agents(cluster: Cluster) -> None:
    a = await cluster.replica(composing_ttl_s=10, online_ttl_s=10, viewing_ttl_s=10)
    w = ws()
    tap = await cluster.tap(w)
    alice, bob, carol = actor("alice"), actor("bob"), actor("carol")
    for agent in (alice, bob, carol):
        await a.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=w, agent=agent), timeout=10)
    await a.stub.SetViewing(presence_pb2.SetViewingRequest(workspace_id=w, agent=alice, conversation_id="c1"),
                            timeout=10)
    await a.stub.SetComposing(composing(w, alice, "c1"), timeout=10)
    await a.stub.SetViewing(presence_pb2.SetViewingRequest(workspace_id=w, agent=bob, conversation_id="c2"),
                            timeout=10)

    reply = await presence_of(a, w, "c2", "c1", "c3", "c1")
    assert [c.conversation_id for c in reply.conversations] == ["c2", "c1", "c3"]
    c2, c1, c3 = reply.conversations
    assert who(c1.composing) == ["alice"] and who(c1.viewing) == ["alice"]
    assert who(c2.composing) == [] and who(c2.viewing) == ["bob"]
    assert who(c3.composing) == [] and who(c3.viewing) == []
    activity = c1.composing[0]
    assert activity.agent.name == "Alice" and activity.expires_at.ToDatetime() > activity.since.ToDatetime()
    agents = {p.agent.id: p for p in reply.agents}
    assert set(agents) == {"alice", "bob", "carol"}
    assert {k: p.viewing_conversation_id for k, p in agents.items()} == {"alice": "c1", "bob": "c2", "carol": ""}
    assert agents["carol"].online_since.ToDatetime() <= agents["carol"].last_seen.ToDatetime()

    # No conversations asked for: every conversation someone is in.
    assert [c.conversation_id for c in (await presence_of(a, w)).conversations] == ["c1", "c2"]

    # Viewing is one conversation at a time; none ends it.
    await a.stub.SetViewing(presence_pb2.SetViewingRequest(workspace_id=w, agent=alice, conversation_id="c2"),
                            timeout=10)
    c2, c1 = (await presence_of(a, w, "c2", "c1")).conversations
    assert who(c1.viewing) == [] and sorted(who(c2.viewing)) == ["alice", "bob"]
    reply_none = await a.stub.SetViewing(presence_pb2.SetViewingRequest(workspace_id=w, agent=alice), timeout=10)
    assert not reply_none.HasField("expires_at")
    assert who((await presence_of(a, w, "c2")).conversations[0].viewing) == ["bob"]
    stops = await tap.wait("presence.viewing.stopped", 2)
    assert sorted(s.key for s in stops) == ["c1", "c2"]  # keys on different partitions: no order between them
    assert sorted(s.key for s in tap.of("presence.viewing.started")) == ["c1", "c2", "c2"]

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await a.stub.GetPresence(presence_pb2.GetPresenceRequest(conversation_ids=["c1"]), timeout=10)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.aio.AioRpcError) as no_agent:
        await a.stub.SetComposing(composing(w, common_pb2.Actor(), "c1"), timeout=10)
    assert no_agent.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_missed_heartbeats_publish_offline(cluster: Cluster) -> None:
    a, b = await cluster.replica(online_ttl_s=3), await cluster.replica(online_ttl_s=3)
    w = ws()
    tap = await cluster.tap(w)
    alice = actor("alice")
    replies = []
    for replica in (a, b, a):  # renewals well within the 3 s
        replies.append(await replica.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=w, agent=alice),
                                                    timeout=10))
    assert replies[-1].expires_at.ToDatetime() > replies[0].expires_at.ToDatetime()
    assert [p.agent.id for p in (await presence_of(b, w)).agents] == ["alice"]

    offline = (await tap.wait("presence.agent.offline", timeout=10))[0]
    assert offline.key == "alice" and offline.event.payload(AgentOffline).reason == "expired"
    assert (await presence_of(a, w)).agents == []
    online = tap.of("presence.agent.online")
    assert len(online) == 1 and online[0].key == "alice"
    assert online[0].event.payload(AgentOnline).session_id == offline.event.data["session_id"]

    # Coming back is a new session.
    await b.stub.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=w, agent=alice), timeout=10)
    back = (await tap.wait("presence.agent.online", 2))[1].event.payload(AgentOnline)
    assert back.session_id != offline.event.data["session_id"]
    await after_purge_cycles(a, b)
    await tap.drain()
    assert len(tap.of("presence.agent.offline")) == 1


async def test_a_failed_publish_answers_unavailable_and_the_retry_publishes(cluster: Cluster) -> None:
    failures = {"left": 0}

    def flaky(real: Publisher) -> Publisher:
        async def send(key: str, event: Event) -> None:
            if failures["left"] > 0:
                failures["left"] -= 1
                raise KafkaConnectionError("broker away (injected)")
            await real(key, event)

        return send

    a = await cluster.replica_with(flaky, composing_ttl_s=10)
    w = ws()
    tap = await cluster.tap(w)
    alice = actor("alice")

    failures["left"] = 1
    with pytest.raises(grpc.aio.AioRpcError) as down:
        await a.stub.SetComposing(composing(w, alice, "c1"), timeout=10)
    assert down.value.code() == grpc.StatusCode.UNAVAILABLE
    assert dict(down.value.trailing_metadata() or ()).get("inbox-error-code") == "unavailable"
    await a.stub.SetComposing(composing(w, alice, "c1"), timeout=10)  # the client's retry
    started = await tap.wait("presence.composing.started")

    failures["left"] = 1
    with pytest.raises(grpc.aio.AioRpcError) as down_again:
        await a.stub.SetComposing(composing(w, alice, "c1", on=False), timeout=10)
    assert down_again.value.code() == grpc.StatusCode.UNAVAILABLE
    assert (await presence_of(a, w, "c1")).conversations[0].composing == []  # stopped, even if not yet told
    await a.stub.SetComposing(composing(w, alice, "c1", on=False), timeout=10)
    stopped = await tap.wait("presence.composing.stopped")
    assert stopped[0].event.payload(ComposingStopped).session_id == started[0].event.data["session_id"]

    # Without a retry, the purge loop publishes what a failed call left behind.
    failures["left"] = 1
    with pytest.raises(grpc.aio.AioRpcError):
        await a.stub.SetComposing(composing(w, alice, "c2"), timeout=10)
    result = await a.tracker.purge_once()
    assert result.republished == 1
    await tap.wait("presence.composing.started", 2)

    await tap.drain()
    assert len(tap.of("presence.composing.started")) == 2
    assert len(tap.of("presence.composing.stopped")) == 1
    assert await a.presence.store.outbox.count_documents({"done": False}) == 0
    assert timedelta(0) <= stopped[0].event.occurred_at - started[0].event.occurred_at


async def test_a_poison_presence_event_is_parked_and_the_sessions_next_events_go_on(cluster: Cluster) -> None:
    """Kafka refusing one event for itself (as if over its size limit) is not an outage: the call answers
    UNAVAILABLE and the purge loop tries it again, three times in all; then it is parked (listed with its
    reason) and the session's next event, which waits behind it, is published (before, the stop failed
    with it forever)."""
    from aiokafka.errors import MessageSizeTooLargeError

    refuse = {"on": True}

    def refusing(real: Publisher) -> Publisher:
        async def send(key: str, event: Event) -> None:
            if refuse["on"] and event.type == "presence.composing.started":
                raise MessageSizeTooLargeError("too large (injected)")
            await real(key, event)

        return send

    a = await cluster.replica_with(refusing, composing_ttl_s=30, relay_grace_s=0.01)
    w = ws()
    tap = await cluster.tap(w)
    alice = actor("alice")
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await a.stub.SetComposing(composing(w, alice, "c1"), timeout=10)  # failure 1
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    await asyncio.sleep(0.05)
    await a.tracker.purge_once()  # failure 2
    assert await a.tracker.parking.listed("presence") == []
    await a.tracker.purge_once()  # failure 3: parked
    [parked] = await a.tracker.parking.listed("presence")
    assert parked["error_type"] == "MessageSizeTooLargeError" and parked["attempts"] == 3
    # The stop waits behind the start in the session's order: with the start parked, it goes out.
    await a.stub.SetComposing(composing(w, alice, "c1", on=False), timeout=10)
    stopped = await tap.wait("presence.composing.stopped")
    assert stopped[0].event.payload(ComposingStopped).session_id
    await tap.drain()
    assert tap.of("presence.composing.started") == []

    # A replay puts it back; a "started" of a session that has stopped since is dropped by the relay's rule.
    refuse["on"] = False
    assert await a.tracker.parking.request_replay([parked["_id"]]) == 1
    assert (await a.tracker.purge_once()).dropped == 1
    assert await a.tracker.parking.listed("presence") == []
    await tap.drain()
    assert tap.of("presence.composing.started") == []


async def test_events_left_by_a_replica_that_died_mid_call_are_published(cluster: Cluster) -> None:
    a = await cluster.replica(purge=False, composing_ttl_s=30, relay_grace_s=0.3)
    tracker, store = a.tracker, a.presence.store
    w = ws()
    tap = await cluster.tap(w)
    now = tracker.now()
    # Died after starting a session, before publishing "started".
    started = domain.new_state("composing", w, domain.Agent("alice", "Alice"), "c1", now, tracker.ttls)
    assert await store.add(tracker.outbox_entry(started, "start", now))
    assert await store.insert(started)
    # Died after writing "started" for a session whose insert it never made.
    orphan = domain.new_state("composing", w, domain.Agent("bob", "Bob"), "c2", now, tracker.ttls)
    assert await store.add(tracker.outbox_entry(orphan, "start", now))
    # Died after claiming a stop, before deleting the session and publishing.
    stopping = domain.new_state("composing", w, domain.Agent("carol", "Carol"), "c3", now, tracker.ttls)
    assert await store.insert(stopping)
    assert await store.add(tracker.outbox_entry(stopping, "stop", now))

    # Within the grace nobody touches them: the writer may still be publishing.
    assert (await tracker.purge_once()).republished == 0
    await asyncio.sleep(0.4)
    result = await tracker.purge_once()
    assert (result.republished, result.dropped) == (2, 1)
    await tap.drain()
    assert [(s.key, s.event.id) for s in tap.of("presence.composing.started")] == \
        [("c1", domain.event_id(started.session_id, "start"))]
    assert [(s.key, s.event.id) for s in tap.of("presence.composing.stopped")] == \
        [("c3", domain.event_id(stopping.session_id, "stop"))]
    assert await store.outbox.count_documents({"done": False}) == 0

    # The claimed session is gone once anyone tries to stop it, and the key can start again.
    await a.stub.SetComposing(composing(w, actor("carol"), "c3", on=False), timeout=10)
    await a.stub.SetComposing(composing(w, actor("carol"), "c3"), timeout=10)
    assert who((await presence_of(a, w, "c3")).conversations[0].composing) == ["carol"]
