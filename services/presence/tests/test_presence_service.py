"""The presence service against real Kafka and the real database: two replicas in this process (each
with its own database client, Kafka producer, gRPC server and purge loop) sharing one database and
the real ``inbox.presence.v1`` topic. Events are read back from the topic from its end at the start of
the test, filtered by this test's own (random) workspace ids. Here: composing, expiry, replicas agreeing."""

from __future__ import annotations

import asyncio
from datetime import UTC

from presence_testkit import (
    Cluster,
    actor,
    after_purge_cycles,
    composing,
    eventually,
    presence_of,
    who,
    ws,
)

from inbox.presence.v1 import presence_pb2
from inbox_core.events.presence import ComposingStarted, ComposingStopped


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
