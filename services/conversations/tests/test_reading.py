"""Reading through a real gRPC server on a free port, against the real database and Kafka: every list
filter and search, paging while messages arrive, one conversation, the timeline, workspace scoping."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from conversations_testkit import Env, ago, list_ids

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_core.events import Event
from inbox_core.events.orders import Actor, Money, OrderCreated, OrderSnapshot
from inbox_core.grpc_server import ERROR_CODE_KEY
from inbox_core.ids import customer_id

AGENT = common_pb2.Actor(id="ag_1", name="Grace Hopper")
OTHER_AGENT = common_pb2.Actor(id="ag_2", name="Linus")


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY)


# --- the list -------------------------------------------------------------------------------------------


async def test_every_filter_and_the_number_selector(env: Env, stub: ConversationsServiceStub) -> None:
    second = f"pn{uuid.uuid4().int % 10**12}"
    # a: number 1, customer wrote last, unread.           b: number 1, the business wrote last (echo).
    # c: number 2, customer wrote, read by an agent.      d: number 2, customer wrote, assigned to ag_1.
    await env.deliver(env.message("111", at=ago(minutes=40)))
    await env.deliver(env.message("222", at=ago(minutes=30)),
                      env.message("222", origin="echo", direction="out", at=ago(minutes=29), profile_name=None))
    await env.deliver(env.message("333", number=second, at=ago(minutes=20)))
    await env.deliver(env.message("444", number=second, at=ago(minutes=10)))
    a, b = env.conversation_id("111"), env.conversation_id("222")
    c, d = env.conversation_id("333", second), env.conversation_id("444", second)
    await stub.MarkRead(pb.MarkReadRequest(workspace_id=env.workspace, conversation_id=c, agent=AGENT))
    await stub.MarkRead(pb.MarkReadRequest(workspace_id=env.workspace, conversation_id=d, agent=AGENT))
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=d, agent=AGENT, assignee=AGENT))
    # Another workspace's conversation is never listed.
    stranger = Env(env.infra, env.settings, env.topics, env.store, env.broker, env.publisher, env.handlers, env.rpc,
                   number=env.number)
    await stranger.deliver(stranger.message("111"))

    assert await list_ids(stub, env) == [d, c, b, a]  # newest activity first
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_ALL, number_ids=[env.number]) == [b, a]
    assert await list_ids(stub, env, number_ids=[second]) == [d, c]
    assert await list_ids(stub, env, number_ids=[env.number, second]) == [d, c, b, a]
    assert await list_ids(stub, env, number_ids=["not-ours"]) == []
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_UNREAD) == [b, a]  # a reply is not a read
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_NO_REPLY) == [d, c, a]
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_NO_REPLY, number_ids=[env.number]) == [a]
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MINE, agent_id="ag_1") == [d]
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MINE, agent_id="ag_2") == []
    with pytest.raises(grpc.aio.AioRpcError) as no_agent:
        await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MINE)
    assert no_agent.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    reply = await stub.ListConversations(pb.ListConversationsRequest(workspace_id=env.workspace, number_ids=[second]))
    row = reply.items[0]
    assert row.assignee.name == "Grace Hopper" and row.unread_count == 0 and row.awaiting_reply
    assert row.window.open and row.customer.phone == "+444" and row.last_message.direction == pb.DIRECTION_IN
    assert row.customer.id == customer_id(env.workspace, "444") and row.version > 0


async def test_search_by_name_and_phone(env: Env, stub: ConversationsServiceStub) -> None:
    people = {"34600111222": "José García", "34611222333": "Joséphine Baker", "44700900800": "Ana López",
              "15550001234": "Bartholomewington Smith"}
    for i, (wa_id, name) in enumerate(people.items()):
        await env.deliver(env.message(wa_id, profile_name=name, at=ago(minutes=10 - i)))
    cid = {name: env.conversation_id(wa_id) for wa_id, name in people.items()}

    async def search(query: str, **fields: Any) -> set[str]:
        return set(await list_ids(stub, env, query=query, **fields))

    assert await search("jose") == {cid["José García"], cid["Joséphine Baker"]}
    assert await search("JOSÉ") == {cid["José García"], cid["Joséphine Baker"]}
    assert await search("garc") == {cid["José García"]}
    assert await search("baker jo") == {cid["Joséphine Baker"]}
    assert await search("lopez") == {cid["Ana López"]}
    assert await search("opez") == set()  # a prefix of a word, not any part
    assert await search("Bartholomewington") == {cid["Bartholomewington Smith"]}  # longer than indexed
    assert await search("Bartholomewingtom") == set()
    assert await search("600 111") == {cid["José García"]}
    assert await search("+34 6") == {cid["José García"], cid["Joséphine Baker"]}  # short digits: a name prefix
    assert await search("1222") == {cid["José García"], cid["Joséphine Baker"]}  # any part of the number
    assert await search("222333") == {cid["Joséphine Baker"]}
    assert await search("34600111222") == {cid["José García"]}  # longer than a gram: checked after
    assert await search("900800") == {cid["Ana López"]}
    assert await search("zzz") == set()
    await stub.MarkRead(pb.MarkReadRequest(workspace_id=env.workspace, conversation_id=cid["José García"]))
    assert await search("jose", filter=pb.CONVERSATION_FILTER_UNREAD) == {cid["Joséphine Baker"]}


async def test_paging_is_stable_while_new_messages_arrive(env: Env, stub: ConversationsServiceStub) -> None:
    """Keyset on (updated_at, id), and updated_at only grows: a conversation already returned can
    never come back, one not yet returned and not moved comes exactly once; one that moves to the top
    during paging is not repeated further down (the live stream shows it at the top)."""
    phones = [f"3460000{i:04d}" for i in range(23)]
    for i, wa_id in enumerate(phones):
        await env.deliver(env.message(wa_id, at=ago(minutes=100 - i)))
    order = [env.conversation_id(w) for w in reversed(phones)]  # newest first
    phone_of = {env.conversation_id(w): w for w in phones}
    seen: list[str] = []
    cursor = ""
    page = 0
    moved_seen, moved_unseen = order[1], order[-2]
    while True:
        reply = await stub.ListConversations(pb.ListConversationsRequest(workspace_id=env.workspace, limit=5,
                                                                         cursor=cursor))
        seen.extend(c.id for c in reply.items)
        page += 1
        if page == 1:
            # New messages between pages: one conversation already shown, one further down.
            for moved in (moved_seen, moved_unseen):
                await env.deliver(env.message(phone_of[moved], at=ago(seconds=1)))
        if not reply.next_cursor:
            break
        cursor = reply.next_cursor
    assert len(seen) == len(set(seen)), "a conversation was returned twice"
    untouched = [c for c in order if c not in (moved_seen, moved_unseen)]
    assert [c for c in seen if c in untouched] == untouched  # every other one exactly once, in order
    assert moved_seen in seen and moved_unseen not in seen
    first = await list_ids(stub, env, limit=2)
    assert set(first) == {moved_seen, moved_unseen}
    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.ListConversations(pb.ListConversationsRequest(workspace_id=env.workspace, cursor="garbage"))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_paging_through_conversations_of_the_same_millisecond(env: Env, stub: ConversationsServiceStub) -> None:
    same = ago(minutes=1)  # Meta's timestamps have whole seconds: ties are common
    for i in range(7):
        await env.deliver(env.message(f"3461000{i:04d}", at=same))
    seen: list[str] = []
    cursor = ""
    while True:
        reply = await stub.ListConversations(pb.ListConversationsRequest(workspace_id=env.workspace, limit=3,
                                                                         cursor=cursor))
        seen.extend(c.id for c in reply.items)
        if not reply.next_cursor:
            break
        cursor = reply.next_cursor
    assert seen == sorted({env.conversation_id(f"3461000{i:04d}") for i in range(7)}, reverse=True)


# --- one conversation -------------------------------------------------------------------------------------


async def test_ids_of_another_workspace_are_not_found(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111"))
    cid = env.conversation_id("111")
    got = await stub.GetConversation(pb.GetConversationRequest(workspace_id=env.workspace, conversation_id=cid))
    assert got.conversation.id == cid and got.conversation.unread_count == 1
    calls = [
        stub.GetConversation(pb.GetConversationRequest(workspace_id="ws_other", conversation_id=cid)),
        stub.GetTimeline(pb.GetTimelineRequest(workspace_id="ws_other", conversation_id=cid)),
        stub.SendMessage(pb.SendMessageRequest(workspace_id="ws_other", conversation_id=cid,
                                               text=pb.TextContent(text="hi"))),
        stub.AddNote(pb.AddNoteRequest(workspace_id="ws_other", conversation_id=cid, text="x")),
        stub.Assign(pb.AssignRequest(workspace_id="ws_other", conversation_id=cid, assignee=AGENT)),
        stub.MarkRead(pb.MarkReadRequest(workspace_id="ws_other", conversation_id=cid)),
        stub.GetConversation(pb.GetConversationRequest(workspace_id=env.workspace, conversation_id="cnv_nope")),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await call
        assert err.value.code() == grpc.StatusCode.NOT_FOUND and error_code(err.value) == "not_found"
    assert (await env.conversation("111"))["unread_count"] == 1


async def test_timeline_merges_messages_notes_and_activities(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111", wamid="wamid.t1", at=ago(minutes=9), text="one"))
    await env.deliver(env.message("111", wamid="wamid.t2", at=ago(minutes=8), text="two"))
    cid = env.conversation_id("111")
    await stub.AddNote(pb.AddNoteRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                         text="VIP customer"))
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                       assignee=OTHER_AGENT))
    order = OrderSnapshot(id="ord_1", number=7, workspace_id=env.workspace, customer_id="cus", conversation_id=cid,
                          total=Money(amount="10", currency="EUR"), stage="new",
                          created_by=Actor(id="ag_1", name="Grace Hopper"), created_at=ago(seconds=-1))
    await env.handlers.on_order_event(Event.of(OrderCreated(order=order), workspace_id=env.workspace))
    await env.deliver(env.message("111", wamid="wamid.t0", at=ago(minutes=10), text="zero"))  # late, older

    items: list[pb.TimelineItem] = []
    before = ""
    while True:
        reply = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid,
                                                             before=before, limit=2))
        assert len(reply.items) <= 2
        items = list(reply.items) + items  # each page is oldest first; pages go backwards
        if not reply.next_before:
            break
        before = reply.next_before
    # In the order the inbox learned of them (seq): the late message last, though Meta dated it first.
    kinds = [i.WhichOneof("item") for i in items]
    assert kinds == ["message", "message", "note", "activity", "activity", "message"]
    assert [items[n].message.text for n in (0, 1, 5)] == ["one", "two", "zero"]
    assert items[2].note.text == "VIP customer" and items[2].note.author.name == "Grace Hopper"
    assert items[3].activity.action == "assigned" and items[3].activity.details["assignee"]["name"] == "Linus"
    assert items[4].activity.action == "order_created" and items[4].activity.actor.name == "Grace Hopper"
    seqs = [getattr(i, i.WhichOneof("item")).seq for i in items]
    assert seqs == sorted(set(seqs)) and seqs[0] > 0
