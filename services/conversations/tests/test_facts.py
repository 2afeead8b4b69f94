"""Facts about messages in any order, against the real database and Kafka: statuses, send results,
reactions, replies, media, edits and revocations."""

from __future__ import annotations

import uuid
from typing import Any

from conversations_testkit import Env, ago

from inbox_conversations import domain
from inbox_core.events import Event
from inbox_core.events.whatsapp import MediaStored, MessageEdited, MessageRevoked

WA = "34600111222"


async def messages(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    return await env.store.timeline.find({"conversation_id": conversation_id, "kind": "message"}).sort(
        [("at", 1), ("_id", 1)]).to_list(None)


# --- statuses -------------------------------------------------------------------------------------------


async def sent_message(env: Env, wamid: str) -> str:
    """A message as if sent through SendMessage and accepted by Meta."""
    await env.deliver(env.message(WA, at=ago(minutes=30)))
    from inbox.common.v1 import common_pb2
    from inbox.conversations.v1 import conversations_pb2 as pb

    reply = await env.rpc.SendMessage(pb.SendMessageRequest(
        workspace_id=env.workspace, conversation_id=env.conversation_id(WA), idempotency_key=uuid.uuid4().hex,
        agent=common_pb2.Actor(id="ag_1", name="Grace"), text=pb.TextContent(text="It ships tomorrow")))
    await env.deliver(env.accepted(reply.message.id, wamid))
    return reply.message.id


async def test_status_never_goes_backwards(env: Env) -> None:
    message_id = await sent_message(env, "wamid.out.1")
    tail = await env.tail(env.topics.conversations)
    await env.deliver(env.status("wamid.out.1", "read", at=ago(seconds=20)))
    await env.deliver(env.status("wamid.out.1", "delivered", at=ago(seconds=30)))  # late
    await env.deliver(env.status("wamid.out.1", "sent", at=ago(seconds=40)))
    msg = await env.store.get_item(message_id)
    assert msg is not None and msg["status"] == "read"
    conv = await env.conversation(WA)
    assert conv["last_message"]["status"] == "read"
    updates = await tail.wait_for(lambda es: any(e.type == "message.updated" for e in es))
    assert all(e.data["message"]["status"] == "read" for e in updates if e.type == "message.updated")


async def test_failed_is_final_with_metas_error(env: Env) -> None:
    message_id = await sent_message(env, "wamid.out.2")
    await env.deliver(env.status("wamid.out.2", "failed", errors=[
        {"code": 131047, "title": "Re-engagement message", "error_data": {"details": "24 hours passed"}}]))
    await env.deliver(env.status("wamid.out.2", "delivered"))
    msg = await env.store.get_item(message_id)
    assert msg is not None and msg["status"] == "failed"
    assert msg["error"] == {"code": 131047, "title": "Re-engagement message", "detail": "24 hours passed"}


async def test_played_after_read_for_voice(env: Env) -> None:
    message_id = await sent_message(env, "wamid.out.voice")
    await env.deliver(env.status("wamid.out.voice", "played"), env.status("wamid.out.voice", "read"))
    msg = await env.store.get_item(message_id)
    assert msg is not None and msg["status"] == "played"


async def test_status_before_the_message_is_known_is_kept_and_applied(env: Env) -> None:
    await env.deliver(env.message(WA, at=ago(minutes=30)))
    from inbox.conversations.v1 import conversations_pb2 as pb

    reply = await env.rpc.SendMessage(pb.SendMessageRequest(
        workspace_id=env.workspace, conversation_id=env.conversation_id(WA),
        text=pb.TextContent(text="On its way")))
    # Meta's status webhook overtakes ingest's send result.
    await env.deliver(env.status("wamid.fast", "delivered"))
    assert await env.store.pending.count_documents({"wamid": "wamid.fast"}) == 1
    await env.deliver(env.accepted(reply.message.id, "wamid.fast", with_ids=False))  # matched by command_id
    msg = await env.store.get_item(reply.message.id)
    assert msg is not None and msg["wamid"] == "wamid.fast" and msg["status"] == "delivered"
    assert await env.store.pending.count_documents({}) == 0
    assert (await env.conversation(WA))["last_message"]["status"] == "delivered"


async def test_echo_status_before_the_echo(env: Env) -> None:
    await env.deliver(env.status("wamid.echo.1", "read"))
    await env.deliver(env.message(WA, origin="echo", direction="out", wamid="wamid.echo.1", profile_name=None))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.echo.1")
    assert msg is not None and msg["status"] == "read"


async def test_send_failed_marks_the_message_failed(env: Env) -> None:
    message_id = await sent_message(env, "wamid.out.3")
    await env.deliver(env.failed(message_id))
    msg = await env.store.get_item(message_id)
    assert msg is not None and msg["status"] == "failed" and msg["error"]["code"] == 131047


# --- reactions, replies, media, edits -------------------------------------------------------------------


def reaction(env: Env, target: str, emoji: str, at: Any, removed: bool = False) -> Event:
    return env.message(WA, type_="reaction", text=None, at=at,
                       reaction={"message_id": target, "emoji": emoji, "removed": removed})


async def test_reaction_attaches_and_its_removal_detaches(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.r1", at=ago(minutes=5)))
    await env.deliver(reaction(env, "wamid.r1", "👍", ago(minutes=4)))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.r1")
    assert msg is not None and msg["reactions"]["customer"]["emoji"] == "👍"
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1 and len(await messages(env, conv["_id"])) == 1  # not a message of its own
    await env.deliver(reaction(env, "wamid.r1", "", ago(minutes=3), removed=True))
    # An older reaction arriving late does not bring it back.
    await env.deliver(reaction(env, "wamid.r1", "❤️", ago(minutes=3, seconds=30)))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.r1")
    assert msg is not None and msg["reactions"]["customer"]["emoji"] == ""
    from inbox_conversations import views

    assert views.message(msg).reactions == []


async def test_reaction_before_its_message(env: Env) -> None:
    await env.deliver(reaction(env, "wamid.r2", "🎉", ago(minutes=1)))
    await env.deliver(env.message(WA, wamid="wamid.r2", at=ago(minutes=2)))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.r2")
    assert msg is not None and msg["reactions"]["customer"]["emoji"] == "🎉"


async def test_reply_links_to_the_quoted_message_in_any_order(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.q1", at=ago(minutes=5), text="Which sizes?"))
    await env.deliver(env.message(WA, wamid="wamid.q2", at=ago(minutes=4), text="^ this", context={
        "message_id": "wamid.q1"}))
    reply = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.q2")
    assert reply is not None and reply["reply_to"] == domain.inbound_message_id(env.workspace, "wamid.q1")
    # The reply arrives before the message it quotes.
    await env.deliver(env.message(WA, wamid="wamid.q4", at=ago(minutes=2), context={"message_id": "wamid.q3"}))
    await env.deliver(env.message(WA, wamid="wamid.q3", at=ago(minutes=3)))
    reply = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.q4")
    assert reply is not None and reply["reply_to"] == domain.inbound_message_id(env.workspace, "wamid.q3")


async def test_media_is_stored_in_any_order(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.img", type_="image", text=None,
                                  media={"media_id": "m-1", "mime_type": "image/jpeg"}, caption="shoes"))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.img")
    assert msg is not None and msg["media"]["status"] == "pending" and msg["media"]["id"] == ""
    stored = MediaStored(media_id="m-1", storage_id="wa-media-m-1", size=1234, sha256="abc", wamid="wamid.img")
    await env.deliver(Event.of(stored, workspace_id=env.workspace))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.img")
    assert msg is not None and msg["media"]["id"] == "wa-media-m-1" and msg["media"]["size"] == 1234
    assert (await env.conversation(WA))["last_message"]["preview"] == "Photo: shoes"
    # The file is stored before the message event is processed (matched by Meta's media id).
    early = MediaStored(media_id="m-2", storage_id="wa-media-m-2", size=9, sha256="def")
    await env.deliver(Event.of(early, workspace_id=env.workspace))
    await env.deliver(env.message(WA, wamid="wamid.doc", type_="document", text=None,
                                  media={"media_id": "m-2", "filename": "invoice.pdf"}))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.doc")
    assert msg is not None and msg["media"]["id"] == "wa-media-m-2" and msg["media"]["status"] == "stored"


async def test_edit_and_revoke(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.e1", text="helo"))
    edit = MessageEdited(waba_id=env.waba, phone_number_id=env.number, wamid="wamid.e1-edit", wa_id=WA,
                         timestamp=ago(minutes=1), original_message_id="wamid.e1",
                         message={"type": "text", "text": "hello"})
    await env.deliver(Event.of(edit, workspace_id=env.workspace))
    msg = await env.store.repos.timeline.by_wamid(env.workspace, "wamid.e1")
    assert msg is not None and msg["text"] == "hello" and msg["edited"]
    assert (await env.conversation(WA))["last_message"]["preview"] == "hello"
    revoke = MessageRevoked(waba_id=env.waba, phone_number_id=env.number, wamid="wamid.e1-del", wa_id=WA,
                            timestamp=ago(seconds=30), original_message_id="wamid.e1")
    await env.deliver(Event.of(revoke, workspace_id=env.workspace))
    assert (await env.conversation(WA))["last_message"]["preview"] == "Message deleted"
