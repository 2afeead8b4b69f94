"""Presence events are never lost: a failed publish answers UNAVAILABLE and its retry publishes, a poison
event is parked, events left by a replica that died mid-call are published (presence_testkit's replicas
against real Kafka and the database)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import grpc
import pytest
from aiokafka.errors import KafkaConnectionError
from presence_testkit import (
    Cluster,
    actor,
    composing,
    presence_of,
    who,
    ws,
)

from inbox_core.events import Event
from inbox_core.events.presence import ComposingStopped
from inbox_presence import domain
from inbox_presence.tracker import Publisher


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
