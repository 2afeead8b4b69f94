"""From events to the inbox, against the real database and Kafka: duplicates, any arrival order,
statuses, reactions, replies, media, edits, history and echoes, orders, customers, templates, and a
crash between the database write and the offset commit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from conversations_testkit import Crash, Env, ago, crash_once_after

from inbox.common.v1 import common_pb2
from inbox_conversations import domain
from inbox_conversations.consumers import register
from inbox_conversations.outbox import Publisher
from inbox_core.errors import TransientError
from inbox_core.events import Event
from inbox_core.events.customers import CustomerSnapshot, CustomerUpdated
from inbox_core.events.orders import Actor, Money, OrderCreated, OrderSnapshot, OrderStageChanged, StageChange
from inbox_core.events.whatsapp import MediaStored, MessageEdited, MessageRevoked, TemplatesSynced
from inbox_core.ids import customer_id
from inbox_core.kafka import make_broker, publish

WA = "34600111222"


async def messages(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    return await env.store.timeline.find({"conversation_id": conversation_id, "kind": "message"}).sort(
        [("at", 1), ("_id", 1)]).to_list(None)


# --- a message arrives ------------------------------------------------------------------------------------


async def test_live_message_creates_the_conversation_and_publishes_it(env: Env) -> None:
    tail = await env.tail(env.topics.conversations)
    at = ago(minutes=3)
    await env.deliver(env.message(WA, at=at, text="Do you ship to Lisbon?", wamid="wamid.A"))

    conv = await env.conversation(WA)
    assert conv["workspace_id"] == env.workspace and conv["number_id"] == env.number
    assert conv["customer"]["id"] == customer_id(env.workspace, WA)
    assert conv["customer"]["name"] == "Ada Lovelace" and conv["customer"]["phone"] == f"+{WA}"
    assert conv["unread_count"] == 1 and conv["has_unread"] and conv["awaiting_reply"]
    assert conv["last_message"]["preview"] == "Do you ship to Lisbon?"
    assert conv["window_expires_at"] == domain.to_ms(at) + timedelta(hours=24)
    assert conv["last_inbound_wamid"] == "wamid.A"

    events = await tail.wait_for(lambda es: {"conversation.created", "message.created", "conversation.updated"}
                                 <= {e.type for e in es})
    cid = env.conversation_id(WA)
    assert set(tail.keys()) == {cid}  # keyed by conversation id
    updated = [e for e in events if e.type == "conversation.updated"][-1]
    summary = updated.data["conversation"]
    assert summary["id"] == cid and summary["unread_count"] == 1 and summary["window"]["open"] is True
    assert summary["last_message"]["preview"] == "Do you ship to Lisbon?"
    created = next(e for e in events if e.type == "message.created")
    assert created.data["message"]["wamid"] == "wamid.A" and created.data["message"]["direction"] == "in"


async def test_duplicate_event_is_one_message_and_one_unread(env: Env) -> None:
    event = env.message(WA, wamid="wamid.dup")
    tail = await env.tail(env.topics.conversations)
    await env.deliver(event, event)
    # Meta's own duplicate: another webhook delivery, another event id, the same wamid.
    await env.deliver(env.message(WA, wamid="wamid.dup"))
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1
    assert len(await messages(env, conv["_id"])) == 1
    await tail.wait_for(lambda es: sum(e.type == "message.created" for e in es) >= 2)
    await tail.settle(0.5)
    created_ids = {e.id for e in tail.events(lambda e: e.type == "message.created")}
    assert len(created_ids) == 1  # republished with the same id: downstream deduplicates


async def test_unknown_type_is_kept_and_shown(env: Env) -> None:
    await env.deliver(env.message(WA, type_="hologram", text=None, unsupported={"type": "hologram"}))
    conv = await env.conversation(WA)
    assert conv["last_message"]["type"] == "hologram"
    assert conv["last_message"]["preview"] == "Unsupported message (hologram)"
    (msg,) = await messages(env, conv["_id"])
    assert msg["type"] == "hologram" and msg["extra"]["unsupported"] == {"type": "hologram"}


async def test_out_of_order_messages_keep_the_newest_as_last(env: Env) -> None:
    early, late = ago(minutes=10), ago(minutes=2)
    await env.deliver(env.message(WA, wamid="wamid.late", at=late, text="second"))
    await env.deliver(env.message(WA, wamid="wamid.early", at=early, text="first"))
    conv = await env.conversation(WA)
    assert conv["last_message"]["preview"] == "second"
    assert conv["updated_at"] == domain.to_ms(late)
    assert conv["window_expires_at"] == domain.to_ms(late) + timedelta(hours=24)  # from the newest
    assert [m["text"] for m in await messages(env, conv["_id"])] == ["first", "second"]
    assert conv["unread_count"] == 2


async def test_history_and_echo_never_count_as_new_inbound(env: Env) -> None:
    await env.deliver(env.message(WA, origin="history", at=ago(days=30), text="old question"))
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 0 and conv.get("window_expires_at") is None
    await env.deliver(env.message(WA, origin="echo", direction="out", at=ago(minutes=1), text="sent from the app",
                                  profile_name=None))
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 0 and conv.get("window_expires_at") is None
    assert conv["last_message"]["direction"] == "out" and not conv["awaiting_reply"]
    assert conv["last_message"]["status"] == "sent"
    # A live message opens the window; an older history message does not take the last-message place.
    await env.deliver(env.message(WA, at=ago(seconds=30), text="hi again"))
    await env.deliver(env.message(WA, origin="history", at=ago(days=20), text="older"))
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1 and conv["awaiting_reply"]
    assert conv["last_message"]["preview"] == "hi again" and conv.get("window_expires_at") is not None


async def test_username_only_customer(env: Env) -> None:
    event = env.message("", user_id="US.13491208655302741918", wamid="wamid.bsuid")
    await env.deliver(event)
    cid = env.conversation_id("", user_id="US.13491208655302741918")
    conv = await env.store.conversations.find_one({"_id": cid})
    assert conv is not None and conv["customer"]["user_id"] == "US.13491208655302741918"
    assert conv["customer"]["phone"] == ""


async def test_events_without_workspace_are_skipped(env: Env) -> None:
    await env.deliver(env.message(WA, workspace=None))
    assert await env.store.conversations.count_documents({}) == 0


async def test_one_conversation_per_number_and_customer(env: Env) -> None:
    other_number = f"pn{uuid.uuid4().int % 10**12}"
    await env.deliver(env.message(WA), env.message(WA), env.message(WA, number=other_number),
                      env.message("34600999888"))
    assert await env.store.conversations.count_documents({}) == 3
    assert sorted(await env.store.workspace_numbers(env.workspace)) == sorted([env.number, other_number])


# --- crash between the database write and the commit ----------------------------------------------------


@pytest.mark.parametrize("crash_point", [
    "insert_item",  # message stored, conversation not touched yet
    "count_unread_once",  # unread counted, last message not set yet
    "apply_last_message",
    "apply_customer_message",
])
async def test_crash_after_a_write_and_redelivery_counts_once(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                             crash_point: str) -> None:
    event = env.message(WA, wamid=f"wamid.crash.{crash_point}")
    crash_once_after(monkeypatch, env.store, crash_point)
    with pytest.raises(Crash):
        await env.deliver(event)
    await env.deliver(event)  # the same event again: its offset was never committed
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1
    assert len(await messages(env, conv["_id"])) == 1
    assert conv["last_message"]["id"] == domain.inbound_message_id(env.workspace, f"wamid.crash.{crash_point}")
    assert conv.get("window_expires_at") is not None and conv["awaiting_reply"]


async def test_crash_before_publishing_republishes_the_same_event_ids(env: Env, monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    tail = await env.tail(env.topics.conversations)
    event = env.message(WA, wamid="wamid.crash.publish")
    crash_once_after(monkeypatch, env.store, "refresh_profile_name")  # the last write before publishing
    with pytest.raises(Crash):
        await env.deliver(event)
    await env.deliver(event)
    await tail.wait_for(lambda es: any(e.type == "message.created" for e in es))
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1


async def test_redelivery_through_kafka_after_a_failure_after_the_write(env: Env, monkeypatch: pytest.MonkeyPatch
                                                                       ) -> None:
    """The real consumer: the handler wrote, then failed before returning (as if the process died before the
    commit); inbox_core.kafka seeks back and delivers the same message again."""
    broker = make_broker(env.settings, "conversations-test-worker", registry=None, telemetry=False)
    publisher = Publisher(env.store, broker, env.topics)
    original = publisher.conversation_updated
    calls: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("broker hiccup after the database write")
        await original(*args, **kwargs)

    monkeypatch.setattr(publisher, "conversation_updated", flaky)
    # A group of its own on the test topic, as the service's "inbox-conversations" group does on the real one.
    monkeypatch.setattr("inbox_conversations.consumers.GROUP_ID", f"test-{uuid.uuid4().hex[:8]}")
    register(broker, env.store, publisher, env.topics)
    await broker.start()
    try:
        event = env.message(WA, wamid="wamid.via.kafka")
        await publish(broker, env.topics.whatsapp_events, f"{env.number}:{WA}", event)
        for _ in range(300):
            conv = await env.store.conversations.find_one({"_id": env.conversation_id(WA)})
            if len(calls) >= 2 and conv is not None:
                break
            await asyncio.sleep(0.1)
        assert len(calls) >= 2, "the event was not redelivered"
    finally:
        await broker.stop()
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1
    assert len(await messages(env, conv["_id"])) == 1


# --- statuses -------------------------------------------------------------------------------------------


async def sent_message(env: Env, wamid: str) -> str:
    """A message as if sent through SendMessage and accepted by Meta."""
    await env.deliver(env.message(WA, at=ago(minutes=30)))
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
    msg = await env.store.message_by_wamid(env.workspace, "wamid.echo.1")
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
    msg = await env.store.message_by_wamid(env.workspace, "wamid.r1")
    assert msg is not None and msg["reactions"]["customer"]["emoji"] == "👍"
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 1 and len(await messages(env, conv["_id"])) == 1  # not a message of its own
    await env.deliver(reaction(env, "wamid.r1", "", ago(minutes=3), removed=True))
    # An older reaction arriving late does not bring it back.
    await env.deliver(reaction(env, "wamid.r1", "❤️", ago(minutes=3, seconds=30)))
    msg = await env.store.message_by_wamid(env.workspace, "wamid.r1")
    assert msg is not None and msg["reactions"]["customer"]["emoji"] == ""
    from inbox_conversations import views

    assert views.message(msg).reactions == []


async def test_reaction_before_its_message(env: Env) -> None:
    await env.deliver(reaction(env, "wamid.r2", "🎉", ago(minutes=1)))
    await env.deliver(env.message(WA, wamid="wamid.r2", at=ago(minutes=2)))
    msg = await env.store.message_by_wamid(env.workspace, "wamid.r2")
    assert msg is not None and msg["reactions"]["customer"]["emoji"] == "🎉"


async def test_reply_links_to_the_quoted_message_in_any_order(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.q1", at=ago(minutes=5), text="Which sizes?"))
    await env.deliver(env.message(WA, wamid="wamid.q2", at=ago(minutes=4), text="^ this", context={
        "message_id": "wamid.q1"}))
    reply = await env.store.message_by_wamid(env.workspace, "wamid.q2")
    assert reply is not None and reply["reply_to"] == domain.inbound_message_id(env.workspace, "wamid.q1")
    # The reply arrives before the message it quotes.
    await env.deliver(env.message(WA, wamid="wamid.q4", at=ago(minutes=2), context={"message_id": "wamid.q3"}))
    await env.deliver(env.message(WA, wamid="wamid.q3", at=ago(minutes=3)))
    reply = await env.store.message_by_wamid(env.workspace, "wamid.q4")
    assert reply is not None and reply["reply_to"] == domain.inbound_message_id(env.workspace, "wamid.q3")


async def test_media_is_stored_in_any_order(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.img", type_="image", text=None,
                                  media={"media_id": "m-1", "mime_type": "image/jpeg"}, caption="shoes"))
    msg = await env.store.message_by_wamid(env.workspace, "wamid.img")
    assert msg is not None and msg["media"]["status"] == "pending" and msg["media"]["id"] == ""
    stored = MediaStored(media_id="m-1", storage_id="wa-media-m-1", size=1234, sha256="abc", wamid="wamid.img")
    await env.deliver(Event.of(stored, workspace_id=env.workspace))
    msg = await env.store.message_by_wamid(env.workspace, "wamid.img")
    assert msg is not None and msg["media"]["id"] == "wa-media-m-1" and msg["media"]["size"] == 1234
    assert (await env.conversation(WA))["last_message"]["preview"] == "Photo: shoes"
    # The file is stored before the message event is processed (matched by Meta's media id).
    early = MediaStored(media_id="m-2", storage_id="wa-media-m-2", size=9, sha256="def")
    await env.deliver(Event.of(early, workspace_id=env.workspace))
    await env.deliver(env.message(WA, wamid="wamid.doc", type_="document", text=None,
                                  media={"media_id": "m-2", "filename": "invoice.pdf"}))
    msg = await env.store.message_by_wamid(env.workspace, "wamid.doc")
    assert msg is not None and msg["media"]["id"] == "wa-media-m-2" and msg["media"]["status"] == "stored"


async def test_edit_and_revoke(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.e1", text="helo"))
    edit = MessageEdited(waba_id=env.waba, phone_number_id=env.number, wamid="wamid.e1-edit", wa_id=WA,
                         timestamp=ago(minutes=1), original_message_id="wamid.e1",
                         message={"type": "text", "text": "hello"})
    await env.deliver(Event.of(edit, workspace_id=env.workspace))
    msg = await env.store.message_by_wamid(env.workspace, "wamid.e1")
    assert msg is not None and msg["text"] == "hello" and msg["edited"]
    assert (await env.conversation(WA))["last_message"]["preview"] == "hello"
    revoke = MessageRevoked(waba_id=env.waba, phone_number_id=env.number, wamid="wamid.e1-del", wa_id=WA,
                            timestamp=ago(seconds=30), original_message_id="wamid.e1")
    await env.deliver(Event.of(revoke, workspace_id=env.workspace))
    assert (await env.conversation(WA))["last_message"]["preview"] == "Message deleted"


# --- orders, customers, templates -----------------------------------------------------------------------


def order(env: Env, **fields: Any) -> OrderSnapshot:
    base: dict[str, Any] = {
        "id": "ord_1", "number": 1001, "workspace_id": env.workspace, "customer_id": customer_id(env.workspace, WA),
        "conversation_id": env.conversation_id(WA), "total": Money(amount="59.90", currency="EUR"), "stage": "new",
        "created_by": Actor(id="ag_1", name="Grace"), "created_at": ago(minutes=1),
    }
    base.update(fields)
    return OrderSnapshot(**base)


async def test_order_events_become_activities_with_who_did_it(env: Env) -> None:
    await env.deliver(env.message(WA))
    tail = await env.tail(env.topics.conversations)
    created = Event.of(OrderCreated(order=order(env)), workspace_id=env.workspace)
    await env.handlers.on_order_event(created)
    await env.handlers.on_order_event(created)  # redelivered: one activity
    changed = Event.of(OrderStageChanged(
        order=order(env, stage="shipped", stage_history=[
            StageChange(stage="new", at=ago(minutes=1)),
            StageChange(stage="shipped", by=Actor(id="ag_2", name="Linus"), at=ago(seconds=5))]),
        from_stage="new", to_stage="shipped", by=Actor(id="ag_2", name="Linus")), workspace_id=env.workspace)
    await env.handlers.on_order_event(changed)
    acts = await env.store.timeline.find({"kind": "activity"}).sort("at", 1).to_list(None)
    assert [(a["action"], a["actor"]["name"]) for a in acts] == [("order_created", "Grace"),
                                                                  ("order_stage_changed", "Linus")]
    assert acts[1]["details"]["to_stage"] == "shipped" and acts[0]["details"]["order_number"] == 1001
    await tail.wait_for(lambda es: sum(e.type == "activity.created" for e in es) >= 3)
    assert len({e.id for e in tail.events(lambda e: e.type == "activity.created")}) == 2
    # An order naming a conversation of another workspace is not shown there.
    foreign = Event.of(OrderCreated(order=order(env, id="ord_x", workspace_id="ws_other")), workspace_id="ws_other")
    await env.handlers.on_order_event(foreign)
    assert await env.store.timeline.count_documents({"kind": "activity"}) == 2


def customer_event(env: Env, name: str, version: int, phone: str = f"+{WA}") -> Event:
    snapshot = CustomerSnapshot(id=customer_id(env.workspace, WA), workspace_id=env.workspace, wa_id=WA,
                                phone=phone, name=name, version=version)
    return Event.of(CustomerUpdated(customer=snapshot), workspace_id=env.workspace)


async def test_customer_name_follows_newer_versions_only(env: Env) -> None:
    await env.deliver(env.message(WA))
    await env.handlers.on_customer_event(customer_event(env, "Ada King", 3))
    await env.handlers.on_customer_event(customer_event(env, "Stale Name", 2))
    conv = await env.conversation(WA)
    assert conv["customer"]["name"] == "Ada King" and conv["customer"]["version"] == 3
    keys = {d["k"] for d in await env.store.search.entries.find({"c": conv["_id"]}).to_list(None)}
    assert f"{env.workspace}|n:king" in keys and f"{env.workspace}|n:stale" not in keys
    # A later profile name from WhatsApp does not override the name the customers service gave.
    await env.deliver(env.message(WA, profile_name="ada"))
    assert (await env.conversation(WA))["customer"]["name"] == "Ada King"


async def test_customer_event_before_the_conversation(env: Env) -> None:
    await env.handlers.on_customer_event(customer_event(env, "Countess Lovelace", 2))
    await env.deliver(env.message(WA))
    conv = await env.conversation(WA)
    assert conv["customer"]["name"] == "Countess Lovelace" and conv["customer"]["version"] == 2


async def test_templates_synced_replace_the_list(env: Env) -> None:
    from inbox.conversations.v1 import conversations_pb2 as pb

    await env.deliver(env.message(WA))  # the number and its business account are known from events
    first = TemplatesSynced(waba_id=env.waba, templates=[
        {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hello"}]},
        {"name": "promo", "language": "es", "status": "PENDING", "category": "MARKETING", "components": []},
    ])
    await env.deliver(Event.of(first, workspace_id=env.workspace, occurred_at=ago(minutes=2)))
    second = TemplatesSynced(waba_id=env.waba, templates=[
        {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hello"}]}])
    await env.deliver(Event.of(second, workspace_id=env.workspace, occurred_at=ago(minutes=1)))
    await env.deliver(Event.of(first, workspace_id=env.workspace, occurred_at=ago(minutes=3)))  # older: ignored
    listed = await env.rpc.ListTemplates(pb.ListTemplatesRequest(workspace_id=env.workspace, number_id=env.number))
    assert [(t.name, t.language, t.status) for t in listed.items] == [("hello_world", "en_US", "APPROVED")]
    assert listed.items[0].components[0]["text"] == "Hello"
    other = await env.rpc.ListTemplates(pb.ListTemplatesRequest(workspace_id="ws_other"))
    assert list(other.items) == []


async def test_templates_synced_in_parts_replace_the_list_once_the_last_part_came(env: Env) -> None:
    """A sync comes in parts (ingest bounds each event): each part's templates are there at once, the ones
    the sync no longer lists go only after its last part, and a part of an older sync changes nothing."""
    from inbox.conversations.v1 import conversations_pb2 as pb

    def tpl(name: str, text: str = "Hi") -> dict[str, Any]:
        return {"name": name, "language": "en_US", "status": "APPROVED", "category": "UTILITY",
                "components": [{"type": "BODY", "text": text}]}

    async def names() -> list[str]:
        listed = await env.rpc.ListTemplates(pb.ListTemplatesRequest(workspace_id=env.workspace,
                                                                     number_id=env.number))
        return [t.name for t in listed.items]

    def part(sync: str, n: int, parts: int, templates: list[dict[str, Any]], at: Any) -> Event:
        synced = TemplatesSynced(waba_id=env.waba, templates=templates, sync_id=sync, part=n, parts=parts,
                                 synced_at=at)
        return Event.of(synced, workspace_id=env.workspace)

    await env.deliver(env.message(WA))
    old, new = ago(minutes=3), ago(minutes=1)
    await env.deliver(part("s1", 0, 1, [tpl("gone"), tpl("kept", "old text")], old))
    assert await names() == ["gone", "kept"]
    await env.deliver(part("s2", 0, 3, [tpl("a_first")], new))
    await env.deliver(part("s2", 1, 3, [tpl("kept", "new text")], new))
    assert await names() == ["a_first", "gone", "kept"], "nothing is forgotten before the last part"
    await env.deliver(part("s1", 0, 2, [tpl("stale")], old))  # an older sync interleaved: ignored
    await env.deliver(part("s2", 2, 3, [tpl("z_last")], new))
    assert await names() == ["a_first", "kept", "z_last"]
    await env.deliver(part("s1", 1, 2, [tpl("kept", "old text")], old))  # its last part, after: ignored
    await env.deliver(part("s2", 1, 3, [tpl("kept", "new text")], new))  # a redelivery: the same
    listed = await env.rpc.ListTemplates(pb.ListTemplatesRequest(workspace_id=env.workspace, number_id=env.number))
    assert [t.name for t in listed.items] == ["a_first", "kept", "z_last"]
    assert listed.items[1].components[0]["text"] == "new text"


async def test_templates_with_meta_examples_are_kept_whole(env: Env) -> None:
    """Meta's examples are nested arrays (``body_text: [["..."]]``), which FerretDB cannot store as a
    document: every template of the list must still arrive, with its components intact."""
    from inbox.conversations.v1 import conversations_pb2 as pb

    await env.deliver(env.message(WA))
    body = {"type": "BODY", "text": "Hi {{1}}, your order {{2}} is on its way.",
            "example": {"body_text": [["Ada", "#1042"]]}}
    synced = TemplatesSynced(waba_id=env.waba, templates=[
        {"name": "hello_world", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [{"type": "BODY", "text": "Hello"}]},
        {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
         "components": [body]},
    ])
    await env.deliver(Event.of(synced, workspace_id=env.workspace, occurred_at=ago(minutes=1)))
    listed = await env.rpc.ListTemplates(pb.ListTemplatesRequest(workspace_id=env.workspace, number_id=env.number))
    assert [t.name for t in listed.items] == ["hello_world", "order_update"]
    order_update = listed.items[1].components[0]
    assert order_update["text"] == body["text"]
    assert [list(row) for row in order_update["example"]["body_text"]] == [["Ada", "#1042"]]
