"""Auto-assignment, with the real presence service (its gRPC server in-process, on the test database) saying
who is online: off by default; round robin to the online agent with the fewest open assigned conversations,
ties to the one assigned longest ago; once per conversation however often the message comes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from conversations_testkit import Env, ago, counted_handlers
from pymongo import AsyncMongoClient

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox.presence.v1 import presence_pb2, presence_pb2_grpc
from inbox_conversations import routing
from inbox_conversations.consumers import Handlers
from inbox_conversations.presence_client import PresenceDirectory
from inbox_conversations.repositories.routing import Routing
from inbox_core.grpc_server import GrpcServer
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_presence.domain import Ttls
from inbox_presence.rpc import SERVICE_NAME as PRESENCE
from inbox_presence.rpc import PresenceRpc
from inbox_presence.store import PresenceStore
from inbox_presence.tracker import PresenceTracker, kafka_publisher
from inbox_testkit.commands import DatabaseCommands
from inbox_testkit.ports import free_port

ADMIN = common_pb2.Actor(id="ag_admin", name="Ada Admin")
AMIR = common_pb2.Actor(id="ag_amir", name="Amir")
BEA = common_pb2.Actor(id="ag_bea", name="Bea")
CHLOE = common_pb2.Actor(id="ag_chloe", name="Chloe")  # never online


@dataclass
class Routed:
    handlers: Handlers  # the worker's, with presence
    presence: presence_pb2_grpc.PresenceServiceStub
    directory: PresenceDirectory


@pytest.fixture
async def routed(env: Env, inbox_settings: InboxSettings, mongo_client: Any) -> AsyncIterator[Routed]:
    store = PresenceStore(service_database(mongo_client, inbox_settings, "presence"))
    await store.ensure_indexes()
    topic = f"{env.topics.conversations}.presence"
    await ensure_topics(env.infra.kafka_bootstrap, extra=[(topic, 1)])
    tracker = PresenceTracker(store, kafka_publisher(env.broker, topic),
                              Ttls(composing=timedelta(seconds=6), online=timedelta(seconds=45),
                                   viewing=timedelta(seconds=45)))
    server = GrpcServer(free_port(), host="127.0.0.1")
    server.add(presence_pb2_grpc.add_PresenceServiceServicer_to_server, PresenceRpc(tracker), PRESENCE)
    await server.start()
    directory = PresenceDirectory(server.address)
    try:
        yield Routed(Handlers(env.store, env.publisher, online=directory),
                     presence_pb2_grpc.PresenceServiceStub(directory.channel), directory)
    finally:
        await directory.close()
        await server.stop(grace=0.5)
        await mongo_client.drop_database(store.db.name)


async def online(routed: Routed, env: Env, *agents: common_pb2.Actor) -> None:
    for agent in agents:
        await routed.presence.Heartbeat(presence_pb2.HeartbeatRequest(workspace_id=env.workspace, agent=agent))


async def set_routing(stub: ConversationsServiceStub, env: Env, mode: int) -> int:
    answer = await stub.SetRouting(pb.SetRoutingRequest(workspace_id=env.workspace, agent=ADMIN, auto_assign=mode))
    return answer.routing.auto_assign


async def assignee(env: Env, wa_id: str) -> str | None:
    return (await env.conversation(wa_id)).get("assignee_id")


async def assigned_activities(env: Env, wa_id: str) -> list[dict[str, Any]]:
    return await env.store.timeline.find({"conversation_id": env.conversation_id(wa_id), "kind": "activity",
                                          "action": "assigned"}).to_list(None)


async def test_off_by_default_then_round_robin_to_the_least_busy_online_agent(
        env: Env, stub: ConversationsServiceStub, routed: Routed) -> None:
    await online(routed, env, AMIR, BEA)
    await routed.handlers.on_whatsapp_event(env.message("100"))
    assert (await stub.GetRouting(pb.GetRoutingRequest(workspace_id=env.workspace))).routing.auto_assign == \
        pb.AUTO_ASSIGN_OFF
    assert await assignee(env, "100") is None  # off: nobody's

    # Amir has one open conversation already (given by hand); Bea none; Chloe is offline.
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=env.conversation_id("100"),
                                       agent=ADMIN, assignee=AMIR))
    assert await set_routing(stub, env, pb.AUTO_ASSIGN_ROUND_ROBIN) == pb.AUTO_ASSIGN_ROUND_ROBIN
    stream = await env.tail(env.topics.conversations)

    await routed.handlers.on_whatsapp_event(env.message("201"))
    assert await assignee(env, "201") == "ag_bea"  # the fewest open assigned (0 against 1)
    await routed.handlers.on_whatsapp_event(env.message("202"))
    assert await assignee(env, "202") == "ag_amir"  # 1 each: Amir was never auto-assigned, Bea just was
    await routed.handlers.on_whatsapp_event(env.message("203"))
    assert await assignee(env, "203") == "ag_bea"  # Amir 2, Bea 1

    (activity,) = await assigned_activities(env, "201")
    assert activity["actor"] is None and activity["details"]["assignee"] == {"id": "ag_bea", "name": "Bea"}
    def automatic(es: list[Any]) -> list[Any]:
        return [e for e in es if e.type == "conversation.assigned" and e.data["by"] is None]

    events = await stream.wait_for(lambda es: len(automatic(es)) >= 3)
    first = next(e for e in automatic(events) if e.data["conversation_id"] == env.conversation_id("201"))
    assert first.data["assignee"]["id"] == "ag_bea" and first.data["previous"] is None
    # The conversation's own events come first: its creation, then its assignment.
    kinds = [e.type for e in events if (e.data.get("conversation") or e.data).get("id", e.data.get(
        "conversation_id")) == first.data["conversation_id"]]
    assert kinds.index("conversation.created") < kinds.index("conversation.assigned")
    updated = [e for e in events if e.type == "conversation.updated" and e.data["conversation"]["id"] == first.data[
        "conversation_id"]]
    assert updated[-1].data["conversation"]["assignee"]["id"] == "ag_bea"


async def test_a_conversation_is_auto_assigned_once_and_only_when_open_nobodys_and_live(
        env: Env, stub: ConversationsServiceStub, routed: Routed) -> None:
    await set_routing(stub, env, pb.AUTO_ASSIGN_ROUND_ROBIN)
    await online(routed, env, AMIR)
    message = env.message("300", wamid="wamid.rr.1")
    await routed.handlers.on_whatsapp_event(message)
    await routed.handlers.on_whatsapp_event(message)  # a redelivery
    assert await assignee(env, "300") == "ag_amir"
    assert len(await assigned_activities(env, "300")) == 1

    # Someone's conversation stays theirs when the customer writes again, whoever is less busy.
    await online(routed, env, BEA)
    await routed.handlers.on_whatsapp_event(env.message("300"))
    assert await assignee(env, "300") == "ag_amir" and len(await assigned_activities(env, "300")) == 1

    # History backfill and the business's own echoes assign nothing.
    await routed.handlers.on_whatsapp_event(env.message("301", origin="history"))
    await routed.handlers.on_whatsapp_event(env.message("302", origin="echo", direction="out"))
    assert await assignee(env, "301") is None and await assignee(env, "302") is None

    # Unassigned and resolved: the customer's message reopens it, and then it is assigned.
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=env.conversation_id("300"),
                                       agent=ADMIN))
    await stub.SetStatus(pb.SetStatusRequest(workspace_id=env.workspace, conversation_id=env.conversation_id("300"),
                                             agent=ADMIN, status=pb.CONVERSATION_STATUS_RESOLVED))
    await routed.handlers.on_whatsapp_event(env.message("300"))
    reopened = await env.conversation("300")
    # Both have no open conversation now; Amir was auto-assigned before, Bea never.
    assert reopened["status"] == "open" and reopened["assignee_id"] == "ag_bea"

    # An agent's assignment between the message and the routing wins: the write is conditional.
    await routed.handlers.on_whatsapp_event(env.message("303"))
    taken = await env.conversation("303")
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=taken["_id"], agent=ADMIN,
                                       assignee=CHLOE))
    stale = {**taken, "assignee_id": None, "assignee": None}
    auto_assignment = routed.handlers.receive.auto_assignment
    assert auto_assignment is not None
    assert await auto_assignment.after_customer_message(stale, "msg_stale") is None
    assert await assignee(env, "303") == "ag_chloe"

    # Turned off again, new conversations stay nobody's.
    assert await set_routing(stub, env, pb.AUTO_ASSIGN_OFF) == pb.AUTO_ASSIGN_OFF
    await routed.handlers.on_whatsapp_event(env.message("304"))
    assert await assignee(env, "304") is None


async def test_nobody_online_or_presence_down_leaves_it_unassigned_and_the_message_shown(
        env: Env, stub: ConversationsServiceStub, routed: Routed) -> None:
    await set_routing(stub, env, pb.AUTO_ASSIGN_ROUND_ROBIN)
    await routed.handlers.on_whatsapp_event(env.message("400"))
    assert await assignee(env, "400") is None  # nobody online

    down = PresenceDirectory(f"127.0.0.1:{free_port()}", deadline_s=0.5)
    try:
        await Handlers(env.store, env.publisher, online=down).on_whatsapp_event(env.message("401", text="still here"))
    finally:
        await down.close()
    conversation = await env.conversation("401")
    assert conversation.get("assignee_id") is None and conversation["unread_count"] == 1
    assert conversation["last_message"]["preview"] == "still here"

    with pytest.raises(grpc.aio.AioRpcError) as unspecified:
        await stub.SetRouting(pb.SetRoutingRequest(workspace_id=env.workspace, agent=ADMIN))
    assert unspecified.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_chooser_takes_the_least_busy_then_the_longest_since_assigned() -> None:
    t = ago(minutes=10)
    assert routing.choose_assignee([], {}, {}) is None
    assert routing.choose_assignee(["b", "a"], {"a": 2, "b": 1}, {}) == "b"
    assert routing.choose_assignee(["a", "b"], {"a": 1, "b": 1}, {"a": t, "b": t - timedelta(minutes=1)}) == "b"
    assert routing.choose_assignee(["a", "b"], {"a": 1, "b": 1}, {"a": t}) == "b"  # never assigned first
    assert routing.choose_assignee(["b", "a"], {}, {}) == "a"  # all equal: the smallest id, on every replica
    assert routing.wants_assignment({"status": "open", "assignee_id": None}, routing.ROUND_ROBIN)
    assert not routing.wants_assignment({"status": "open", "assignee_id": None}, routing.OFF)
    assert not routing.wants_assignment({"status": "snoozed", "assignee_id": None}, routing.ROUND_ROBIN)
    assert not routing.wants_assignment({"status": "open", "assignee_id": "a"}, routing.ROUND_ROBIN)


async def test_concurrent_reads_of_a_workspaces_routing_share_one_query(env: Env) -> None:
    """A batch's conversations of one workspace, handled at once, read its routing once; a change is seen
    by the next read (nothing is kept after a read)."""
    listener = DatabaseCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env.infra.mongo_url, event_listeners=[listener])
    try:
        routes = Routing(client[env.store.db.name])
        read = await asyncio.gather(*(routes.get(env.workspace) for _ in range(20)))
        assert [r["auto_assign"] for r in read] == [routing.OFF] * 20
        assert listener.count("find", "routing") == 1
        await routes.set_mode(env.workspace, routing.ROUND_ROBIN, None, datetime.now(UTC))
        assert (await routes.get(env.workspace))["auto_assign"] == routing.ROUND_ROBIN
        assert listener.count("find", "routing") == 2
    finally:
        await client.close()


async def test_the_mode_is_kept_a_few_seconds_and_this_processs_own_change_at_once(env: Env) -> None:
    listener = DatabaseCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(env.infra.mongo_url, event_listeners=[listener])
    try:
        routes = Routing(client[env.store.db.name], mode_ttl_s=0.5)
        assert [await routes.mode(env.workspace) for _ in range(5)] == [routing.OFF] * 5
        assert listener.count("find", "routing") == 1
        # Another process (an API replica) switches it on: seen once the kept mode is older than its TTL.
        await Routing(env.store.db).set_mode(env.workspace, routing.ROUND_ROBIN, None, datetime.now(UTC))
        assert await routes.mode(env.workspace) == routing.OFF
        await asyncio.sleep(0.6)
        assert await routes.mode(env.workspace) == routing.ROUND_ROBIN
        assert listener.count("find", "routing") == 2
        # This process's own change is its kept mode at once, with no read.
        await routes.set_mode(env.workspace, routing.OFF, None, datetime.now(UTC))
        assert await routes.mode(env.workspace) == routing.OFF
        assert listener.count("find", "routing") == 2
    finally:
        await client.close()


async def test_with_presence_an_inbound_text_costs_three_operations_when_the_workspace_does_not_route(
        env: Env, routed: Routed) -> None:
    """The mode read with the conversation's first message is kept: the next message reads no routing."""
    async with counted_handlers(env, online=routed.directory) as (handlers, listener):
        await handlers.on_whatsapp_event(env.message("300", wamid="wamid.rr.1"))
        assert listener.count("find", "routing") == 1
        listener.clear()
        await handlers.on_whatsapp_event(env.message("300", wamid="wamid.rr.2"))
        assert sorted(listener.names()) == ["findAndModify", "findAndModify", "insert"]
        assert listener.count("find", "routing") == 0
    assert await assignee(env, "300") is None
