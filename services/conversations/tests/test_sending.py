"""Sending through a real gRPC server: the window, text and its status, media from uploads and the
library, templates and their parameters, idempotency."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from conversations_testkit import Env, ago
from google.protobuf import struct_pb2

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import content_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_conversations import domain
from inbox_core.events import Event
from inbox_core.events.whatsapp import TemplatesSynced
from inbox_core.grpc_server import ERROR_CODE_KEY

AGENT = common_pb2.Actor(id="ag_1", name="Grace Hopper")
OTHER_AGENT = common_pb2.Actor(id="ag_2", name="Linus")


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY)


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
    item = (await stub.AddLibraryItem(content_pb2.AddLibraryItemRequest(
        workspace_id=env.workspace, agent=AGENT, title="Size chart", type=content_pb2.LIBRARY_ITEM_TYPE_IMAGE,
        upload_id="up_chart", caption="Our sizes"))).item
    snippet = (await stub.AddLibraryItem(content_pb2.AddLibraryItemRequest(
        workspace_id=env.workspace, agent=AGENT, type=content_pb2.LIBRARY_ITEM_TYPE_TEXT,
        text="Thanks for your order!"))).item
    listed = await stub.ListLibraryItems(content_pb2.ListLibraryItemsRequest(workspace_id=env.workspace))
    assert {i.id for i in listed.items} == {item.id, snippet.id}
    assert snippet.title == "Thanks for your order!" and item.media.id == "up_chart"
    assert list((await stub.ListLibraryItems(content_pb2.ListLibraryItemsRequest(workspace_id="ws_other"))).items) == []

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
    await stub.RemoveLibraryItem(content_pb2.RemoveLibraryItemRequest(workspace_id=env.workspace, item_id=item.id))
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        await stub.RemoveLibraryItem(content_pb2.RemoveLibraryItemRequest(workspace_id=env.workspace, item_id=item.id))
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as foreign:
        await stub.RemoveLibraryItem(content_pb2.RemoveLibraryItemRequest(workspace_id="ws_other", item_id=snippet.id))
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
    templates = await stub.ListTemplates(content_pb2.ListTemplatesRequest(workspace_id=env.workspace,
                                                                          number_id=env.number))
    assert {t.name for t in templates.items} == {"order_shipped", "paused_one"}
