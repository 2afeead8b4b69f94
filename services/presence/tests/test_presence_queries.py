"""Reading presence: workspaces never see each other's, by conversations and by agents, missed heartbeats
(the replicas of presence_testkit against real Kafka and the database)."""

from __future__ import annotations

import grpc
import pytest
from presence_testkit import (
    Cluster,
    actor,
    after_purge_cycles,
    composing,
    presence_of,
    who,
    ws,
)

from inbox.common.v1 import common_pb2
from inbox.presence.v1 import presence_pb2
from inbox_core.events.presence import AgentOffline, AgentOnline


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
