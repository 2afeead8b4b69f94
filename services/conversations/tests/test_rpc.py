"""The gRPC API through a real server on a free port, against the real database and Kafka: every list
filter and search, paging while messages arrive, the timeline, sending (window, templates, media,
idempotency), notes, assignment, read receipts, the content library, workspace scoping, the outbox."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import grpc
import pytest
from conversations_testkit import Env, ago
from google.protobuf import struct_pb2

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_conversations import domain
from inbox_core.events import Event
from inbox_core.events.orders import Actor, Money, OrderCreated, OrderSnapshot
from inbox_core.events.whatsapp import TemplatesSynced
from inbox_core.grpc_server import ERROR_CODE_KEY
from inbox_core.ids import customer_id

AGENT = common_pb2.Actor(id="ag_1", name="Grace Hopper")
OTHER_AGENT = common_pb2.Actor(id="ag_2", name="Linus")


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY)


async def list_ids(stub: ConversationsServiceStub, env: Env, **fields: Any) -> list[str]:
    reply = await stub.ListConversations(pb.ListConversationsRequest(workspace_id=env.workspace, **fields))
    return [c.id for c in reply.items]


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
    kinds = [i.WhichOneof("item") for i in items]
    assert kinds == ["message", "message", "message", "note", "activity", "activity"]
    assert [i.message.text for i in items[:3]] == ["zero", "one", "two"]
    assert items[3].note.text == "VIP customer" and items[3].note.author.name == "Grace Hopper"
    assert items[4].activity.action == "assigned" and items[4].activity.details["assignee"]["name"] == "Linus"
    assert items[5].activity.action == "order_created" and items[5].activity.actor.name == "Grace Hopper"
    times = [getattr(i, i.WhichOneof("item")).at.ToDatetime() for i in items]
    assert times == sorted(times)


# --- sending --------------------------------------------------------------------------------------------


async def test_free_form_send_outside_the_window_is_refused(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111", at=ago(hours=24, seconds=5), text="yesterday"))
    await env.deliver(env.message("222", origin="history", at=ago(minutes=5)))  # history never opens it
    commands = await env.tail(env.topics.commands)
    for wa_id in ("111", "222"):
        cid = env.conversation_id(wa_id)
        conv = await stub.GetConversation(pb.GetConversationRequest(workspace_id=env.workspace, conversation_id=cid))
        assert not conv.conversation.window.open
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SendMessage(pb.SendMessageRequest(workspace_id=env.workspace, conversation_id=cid,
                                                         agent=AGENT, text=pb.TextContent(text="Hi!")))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_code(refused.value) == "window_closed"
    assert await env.store.timeline.count_documents({"direction": "out"}) == 0
    await commands.settle(1.0)
    assert commands.events() == []


async def test_send_text_publishes_a_command_and_follows_the_status(env: Env, stub: ConversationsServiceStub
                                                                   ) -> None:
    await env.deliver(env.message("111", wamid="wamid.in.1", at=ago(minutes=5)))
    cid = env.conversation_id("111")
    commands = await env.tail(env.topics.commands)
    stream = await env.tail(env.topics.conversations)
    request = pb.SendMessageRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                    idempotency_key="click-1", reply_to=domain.inbound_message_id(env.workspace,
                                                                                                 "wamid.in.1"),
                                    text=pb.TextContent(text="Yes, tomorrow", preview_url=True))
    sent = (await stub.SendMessage(request)).message
    assert sent.status == pb.MESSAGE_STATUS_PENDING and sent.sent_by.name == "Grace Hopper"
    assert sent.direction == pb.DIRECTION_OUT and sent.text == "Yes, tomorrow" and sent.origin == "api"
    again = (await stub.SendMessage(request)).message  # a retried call: same message, sent once
    assert again.id == sent.id

    (command,) = await commands.wait_for(lambda es: len(es) >= 1)
    await commands.settle(1.0)
    assert len(commands.events()) == 1
    assert commands.keys() == [f"{env.number}:111"]
    assert command.type == "whatsapp.command.send" and command.workspace_id == env.workspace
    assert command.data["command_id"] == sent.id == command.data["message_id"]
    assert command.data["conversation_id"] == cid and command.data["kind"] == "text"
    assert command.data["text"] == "Yes, tomorrow" and command.data["reply_to_wamid"] == "wamid.in.1"
    assert command.data["preview_url"] is True

    conv = await env.conversation("111")
    assert conv["last_message"]["id"] == sent.id and not conv["awaiting_reply"]
    await stream.wait_for(lambda es: any(e.type == "message.created" and e.data["message"]["id"] == sent.id
                                         for e in es) and any(e.type == "conversation.updated" for e in es))

    await env.deliver(env.accepted(sent.id, "wamid.out.9"), env.status("wamid.out.9", "delivered"))
    timeline = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid))
    last = timeline.items[-1].message
    assert last.id == sent.id and last.wamid == "wamid.out.9" and last.status == pb.MESSAGE_STATUS_DELIVERED
    assert last.reply_to == domain.inbound_message_id(env.workspace, "wamid.in.1")
    got = await stub.GetConversation(pb.GetConversationRequest(workspace_id=env.workspace, conversation_id=cid))
    assert got.conversation.last_message.status == pb.MESSAGE_STATUS_DELIVERED

    with pytest.raises(grpc.aio.AioRpcError) as empty:
        await stub.SendMessage(pb.SendMessageRequest(workspace_id=env.workspace, conversation_id=cid,
                                                     text=pb.TextContent(text="  ")))
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_media_from_an_upload_and_from_the_library(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111"))
    cid = env.conversation_id("111")
    commands = await env.tail(env.topics.commands)
    item = (await stub.AddLibraryItem(pb.AddLibraryItemRequest(
        workspace_id=env.workspace, agent=AGENT, title="Size chart", type=pb.LIBRARY_ITEM_TYPE_IMAGE,
        upload_id="up_chart", caption="Our sizes"))).item
    snippet = (await stub.AddLibraryItem(pb.AddLibraryItemRequest(
        workspace_id=env.workspace, agent=AGENT, type=pb.LIBRARY_ITEM_TYPE_TEXT, text="Thanks for your order!"))).item
    listed = await stub.ListLibraryItems(pb.ListLibraryItemsRequest(workspace_id=env.workspace))
    assert {i.id for i in listed.items} == {item.id, snippet.id}
    assert snippet.title == "Thanks for your order!" and item.media.id == "up_chart"
    assert list((await stub.ListLibraryItems(pb.ListLibraryItemsRequest(workspace_id="ws_other"))).items) == []

    from_library = (await stub.SendMessage(pb.SendMessageRequest(
        workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
        media=pb.MediaContent(kind=pb.MEDIA_KIND_IMAGE, library_item_id=item.id)))).message
    assert from_library.type == "image" and from_library.media.id == "up_chart"
    assert from_library.media.caption == "Our sizes"
    uploaded = (await stub.SendMessage(pb.SendMessageRequest(
        workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
        media=pb.MediaContent(kind=pb.MEDIA_KIND_DOCUMENT, upload_id="up_invoice", filename="invoice.pdf")))).message
    assert uploaded.media.filename == "invoice.pdf"
    events = await commands.wait_for(lambda es: len(es) >= 2)
    media = {e.data["message_id"]: e.data["media"] for e in events}
    assert media[from_library.id]["storage_id"] == "up_chart" and media[from_library.id]["caption"] == "Our sizes"
    assert media[uploaded.id] == {"storage_id": "up_invoice", "link": None, "mime_type": None,
                                  "filename": "invoice.pdf", "caption": None}
    assert (await env.conversation("111"))["last_message"]["preview"] == "Document: invoice.pdf"

    with pytest.raises(grpc.aio.AioRpcError) as wrong_kind:
        await stub.SendMessage(pb.SendMessageRequest(
            workspace_id=env.workspace, conversation_id=cid,
            media=pb.MediaContent(kind=pb.MEDIA_KIND_VIDEO, library_item_id=item.id)))
    assert wrong_kind.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stub.RemoveLibraryItem(pb.RemoveLibraryItemRequest(workspace_id=env.workspace, item_id=item.id))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.RemoveLibraryItem(pb.RemoveLibraryItemRequest(workspace_id=env.workspace, item_id=item.id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.RemoveLibraryItem(pb.RemoveLibraryItemRequest(workspace_id="ws_other", item_id=snippet.id))
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND


TEMPLATE = {
    "name": "order_shipped", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hi {{1}}, order {{2}} is on its way."},
        {"type": "BUTTONS", "buttons": [{"type": "URL", "text": "Track", "url": "https://t.example/{{1}}"}]},
    ],
}


def params(value: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(value)
    return out


async def test_send_template_checks_params_and_works_with_the_window_closed(env: Env, stub: ConversationsServiceStub
                                                                           ) -> None:
    await env.deliver(env.message("111", at=ago(days=3)))  # window long closed
    cid = env.conversation_id("111")
    paused = {**TEMPLATE, "name": "paused_one", "status": "PAUSED"}
    synced = TemplatesSynced(waba_id=env.waba, templates=[TEMPLATE, paused])
    await env.deliver(Event.of(synced, workspace_id=env.workspace))
    commands = await env.tail(env.topics.commands)

    def request(**fields: Any) -> pb.SendTemplateRequest:
        base: dict[str, Any] = {"workspace_id": env.workspace, "conversation_id": cid, "agent": AGENT,
                                "name": "order_shipped", "language": "en_US"}
        base.update(fields)
        return pb.SendTemplateRequest(**base)

    with pytest.raises(grpc.aio.AioRpcError) as bad:
        await stub.SendTemplate(request(params=params({"body": ["Ada"], "buttons": ["abc"]})))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT and error_code(bad.value) == "validation_failed"
    with pytest.raises(grpc.aio.AioRpcError) as too_long:
        await stub.SendTemplate(request(params=params({"header": [{"type": "image", "link": "https://cdn.example/a"}],
                                                        "body": ["A" * 1025, "#1"], "buttons": ["x"]})))
    assert (too_long.value.code(), error_code(too_long.value)) == (grpc.StatusCode.INVALID_ARGUMENT,
                                                                   "validation_failed")
    assert "at most 1024 characters" in (too_long.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as unknown:
        await stub.SendTemplate(request(name="nope"))
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as not_approved:
        await stub.SendTemplate(request(name="paused_one"))
    assert error_code(not_approved.value) == "template_not_approved"

    good = params({"header": [{"type": "image", "link": "https://cdn.example/box.jpg"}],
                   "body": ["Ada", "#1001"], "buttons": ["TRK1"]})
    sent = (await stub.SendTemplate(request(params=good, idempotency_key="tpl-1"))).message
    assert sent.type == "template" and sent.status == pb.MESSAGE_STATUS_PENDING
    assert sent.text == "Hi Ada, order #1001 is on its way." and sent.template.name == "order_shipped"
    (command,) = await commands.wait_for(lambda es: len(es) >= 1)
    assert command.data["kind"] == "template" and command.data["command_id"] == sent.id
    assert command.data["template"]["components"] == [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://cdn.example/box.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "#1001"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "TRK1"}]},
    ]
    timeline = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid))
    activity = [i.activity for i in timeline.items if i.WhichOneof("item") == "activity"]
    assert [(a.action, a.actor.name, a.details["template"]) for a in activity] == [
        ("template_sent", "Grace Hopper", "order_shipped")]
    templates = await stub.ListTemplates(pb.ListTemplatesRequest(workspace_id=env.workspace, number_id=env.number))
    assert {t.name for t in templates.items} == {"order_shipped", "paused_one"}


# --- team work ------------------------------------------------------------------------------------------


async def test_notes_assignment_and_read_receipts(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111", wamid="wamid.r.1", at=ago(minutes=3)),
                      env.message("111", wamid="wamid.r.2", at=ago(minutes=2)))
    cid = env.conversation_id("111")
    commands = await env.tail(env.topics.commands)
    stream = await env.tail(env.topics.conversations)

    note = (await stub.AddNote(pb.AddNoteRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                                 text="  Wants express shipping "))).note
    assert note.text == "Wants express shipping" and note.author.id == "ag_1"

    assigned = (await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                                   assignee=OTHER_AGENT))).conversation
    assert assigned.assignee.id == "ag_2"
    same = (await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                               assignee=OTHER_AGENT))).conversation
    assert same.version == assigned.version  # no change, no activity
    unassigned = (await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=cid,
                                                     agent=AGENT))).conversation
    assert not unassigned.HasField("assignee")
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MINE, agent_id="ag_2") == []

    read = (await stub.MarkRead(pb.MarkReadRequest(workspace_id=env.workspace, conversation_id=cid,
                                                   agent=AGENT))).conversation
    assert read.unread_count == 0
    await stub.MarkRead(pb.MarkReadRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT))
    (receipt,) = await commands.wait_for(lambda es: len(es) >= 1)
    await commands.settle(1.0)
    assert len(commands.events()) == 1  # the second MarkRead had nothing new to say
    assert receipt.type == "whatsapp.command.mark_read" and receipt.data["message_wamid"] == "wamid.r.2"
    assert receipt.data["conversation_id"] == cid and commands.keys() == [f"{env.number}:111"]

    events = await stream.wait_for(lambda es: {"note.created", "conversation.assigned", "activity.created",
                                               "conversation.read"} <= {e.type for e in es})
    assigned_events = [e.data for e in events if e.type == "conversation.assigned"]
    assert [(a["assignee"] or {}).get("id") for a in assigned_events] == ["ag_2", None]
    actions = [e.data["activity"]["action"] for e in events if e.type == "activity.created"]
    assert actions == ["assigned", "unassigned"]
    last_update = [e for e in events if e.type == "conversation.updated"][-1].data["conversation"]
    assert last_update["unread_count"] == 0 and last_update["assignee"] is None
    # Notes are never sent to the customer.
    assert all(e.type != "whatsapp.command.send" for e in commands.events())


# --- the outbox -----------------------------------------------------------------------------------------


async def test_a_change_made_while_kafka_is_down_is_published_by_the_relay(env: Env, stub: ConversationsServiceStub,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    await env.deliver(env.message("111", at=ago(minutes=3)))
    cid = env.conversation_id("111")
    commands = await env.tail(env.topics.commands)
    stream = await env.tail(env.topics.conversations)

    async def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("kafka is down")

    monkeypatch.setattr("inbox_conversations.outbox.publish", down)
    # Acknowledged: the events are in the written documents, the relay will publish them.
    note = (await stub.AddNote(pb.AddNoteRequest(workspace_id=env.workspace, conversation_id=cid, text="n"))).note
    sent = (await stub.SendMessage(pb.SendMessageRequest(workspace_id=env.workspace, conversation_id=cid,
                                                         agent=AGENT, text=pb.TextContent(text="hi")))).message
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=cid, assignee=AGENT))
    stored_note = await env.store.get_item(note.id)
    assert stored_note is not None and stored_note["outbox"]
    with pytest.raises(ConnectionError):
        await env.publisher.relay_once(timedelta(0))
    monkeypatch.undo()

    assert await env.publisher.relay_once(timedelta(0)) == 3
    (command,) = await commands.wait_for(lambda es: len(es) >= 1)
    assert command.data["message_id"] == sent.id
    await stream.wait_for(lambda es: {"note.created", "message.created", "conversation.assigned",
                                      "activity.created"} <= {e.type for e in es})
    for collection in ("timeline", "conversations"):
        assert await env.store.db[collection].count_documents({"outbox_at": {"$exists": True}}) == 0
    conv = await env.conversation("111")
    assert conv["last_message"]["id"] == sent.id and conv["assignee_id"] == "ag_1"
    assert await env.store.timeline.count_documents({"kind": "activity", "action": "assigned"}) == 1
    assert await env.publisher.relay_once(timedelta(0)) == 0


async def test_a_poison_outbox_entry_is_parked_the_others_go_on_and_a_replay_publishes_it(
        env: Env, stub: ConversationsServiceStub, monkeypatch: pytest.MonkeyPatch) -> None:
    """An entry whose event Kafka refuses for itself (here a note's, as if over the size limit) is tried
    three rounds, then moved to outbox_parked with its reason; the entries beside and behind it publish in
    the first round. An operator's replay puts it back and the relay publishes it."""
    from aiokafka.errors import MessageSizeTooLargeError

    from inbox_conversations import outbox as outbox_module

    await env.deliver(env.message("111", at=ago(minutes=3)))
    cid = env.conversation_id("111")
    stream = await env.tail(env.topics.conversations)
    real_publish = outbox_module.publish
    refuse: set[str] = set()

    async def kafka(broker: Any, topic: str, key: str, event: Event) -> None:
        if event.type == "note.created" and refuse:
            raise MessageSizeTooLargeError("the message is too large")
        if event.type != "note.created" and "all" in refuse:
            raise ConnectionError("kafka is down")
        await real_publish(broker, topic, key, event)

    monkeypatch.setattr("inbox_conversations.outbox.publish", kafka)
    refuse.update({"note", "all"})  # the requests' own publications fail: everything is left to the relay
    note = (await stub.AddNote(pb.AddNoteRequest(workspace_id=env.workspace, conversation_id=cid, text="n"))).note
    await stub.Assign(pb.AssignRequest(workspace_id=env.workspace, conversation_id=cid, assignee=AGENT))
    refuse.discard("all")

    assert await env.publisher.relay_once(timedelta(0)) == 1, "the assignment went out beside the poison note"
    await stream.wait_for(lambda es: "conversation.assigned" in {e.type for e in es})
    assert await env.publisher.relay_once(timedelta(0)) == 0
    assert await env.publisher.relay_once(timedelta(0)) == 0
    [parked] = await env.publisher.parking.listed("conversations.timeline")
    assert parked["error_type"] == "MessageSizeTooLargeError" and parked["attempts"] == 3
    assert parked["entry_id"].startswith(f"{note.id}/")
    stored = await env.store.get_item(note.id)
    assert stored is not None and not stored.get("outbox"), "parked: out of the document"
    assert await env.publisher.relay_once(timedelta(0)) == 0

    refuse.clear()  # the cause is fixed
    assert await env.publisher.parking.request_replay([parked["_id"]]) == 1
    assert await env.publisher.relay_once(timedelta(0)) == 1
    await stream.wait_for(lambda es: "note.created" in {e.type for e in es})
    assert await env.publisher.parking.listed("conversations.timeline") == []
