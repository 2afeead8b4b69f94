"""A message from Meta into its conversation, against the real database and Kafka: duplicates, any
arrival order, history and echoes, one conversation per number and customer, the database operations one
inbound text costs, and a crash between the database write and the offset commit."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest
from conversations_testkit import Crash, Env, ago, counted_handlers, crash_once_after

from inbox_conversations import domain
from inbox_conversations.consumers import Handlers, register
from inbox_conversations.outbox import Publisher
from inbox_core.errors import TransientError
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
    assert sorted(await env.store.repos.numbers.of_workspace(env.workspace)) == sorted([env.number, other_number])


# --- crash between the database write and the commit ----------------------------------------------------


@pytest.mark.parametrize("crash_point", [
    "timeline.insert",  # message stored, conversation not touched yet
    "conversations.update",  # conversation changed (unread, last message, window), nothing published
])
async def test_crash_after_a_write_and_redelivery_counts_once(env: Env, monkeypatch: pytest.MonkeyPatch,
                                                             crash_point: str) -> None:
    event = env.message(WA, wamid=f"wamid.crash.{crash_point}")
    repository, method = crash_point.split(".")
    crash_once_after(monkeypatch, getattr(env.store.repos, repository), method)
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
    crash_once_after(monkeypatch, env.store.repos.conversations, "update")  # the last write before publishing
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
    original = publisher.conversation_event
    calls: list[int] = []

    async def flaky(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("broker hiccup after the database write")
        await original(*args, **kwargs)

    monkeypatch.setattr(publisher, "conversation_event", flaky)
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


# --- what one inbound text costs --------------------------------------------------------------------------


async def test_a_new_customers_first_text_creates_the_conversation_in_eight_operations(env: Env) -> None:
    tail = await env.tail(env.topics.conversations)
    async with counted_handlers(env) as (handlers, ops):
        await handlers.on_whatsapp_event(env.message("34600000991", wamid="wamid.warm"))  # the number is known
        ops.clear()
        await handlers.on_whatsapp_event(env.message(WA, wamid="wamid.first", profile_name="Ada Lovelace"))
        # The read that finds none, the search entries, the creation (with the message's seq and the search
        # mark), the customers service's copy, the message, the guarded update, the pending facts (a new
        # conversation may have some), the mark that conversation.created was published.
        assert ops.sent == [("findAndModify", "conversations"), ("insert", "search_index"),
                            ("findAndModify", "conversations"), ("find", "customers"), ("insert", "timeline"),
                            ("findAndModify", "conversations"), ("find", "pending"),
                            ("update", "conversations")], ops.sent
    conv = await env.conversation(WA)
    assert conv["last_seq"] == 1 and conv["unread_count"] == 1 and conv["announced"] is True
    stored = await messages(env, conv["_id"])
    assert [m["seq"] for m in stored] == [1]
    # Found by the customer's name, indexed before the conversation was created.
    query = domain.parse_query("lovelace")
    assert query is not None
    assert conv["_id"] in ((await env.store.repos.search.candidates(env.workspace, query)).ids or [])
    await tail.wait_for(lambda es: {"conversation.created", "message.created"} <= {e.type for e in es})


async def test_two_first_events_at_once_make_one_conversation_with_both_messages_in_order(env: Env) -> None:
    first = env.message(WA, wamid="wamid.race.1", at=ago(minutes=2), text="one")
    second = env.message(WA, wamid="wamid.race.2", at=ago(minutes=1), text="two")
    other = Handlers(env.store, env.publisher)  # another worker: its own caches
    await asyncio.gather(env.handlers.on_whatsapp_event(first), other.on_whatsapp_event(second))
    conv = await env.conversation(WA)
    stored = await messages(env, conv["_id"])
    assert [m["text"] for m in stored] == ["one", "two"] and conv["unread_count"] == 2
    assert sorted(m["seq"] for m in stored) == [1, 2] and conv["last_seq"] == 2  # the creator's seq is its own


async def test_an_inbound_text_is_three_database_operations(env: Env) -> None:
    async with counted_handlers(env) as (handlers, ops):
        tail = await env.tail(env.topics.conversations)
        await handlers.on_whatsapp_event(env.message(WA, wamid="wamid.ops.1", text="first"))  # creates it
        ops.clear()
        await handlers.on_whatsapp_event(env.message(WA, wamid="wamid.ops.2", text="second"))
        # The conversation read by _id (taking the message's seq), the message inserted, the conversation
        # updated once.
        assert sorted(ops.names()) == ["findAndModify", "findAndModify", "insert"]
        ops.clear()
        await handlers.on_whatsapp_event(env.message(WA, wamid="wamid.ops.2", text="second"))  # redelivered
        assert len(ops.names()) <= 3
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 2 and conv["last_message"]["preview"] == "second"
    events = await tail.wait_for(lambda es: sum(e.type == "message.created" for e in es) >= 2)
    updated = [e for e in events if e.type == "conversation.updated"]
    assert updated[-1].data["conversation"]["unread_count"] == 2
