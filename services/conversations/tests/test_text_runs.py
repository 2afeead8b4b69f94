"""A run of a customer's live texts (consecutive on the partition) folded into one read, one insert and
one write of its conversation (ReceiveMessage.run), against the real database and Kafka: the same outcome
as one by one, what it costs, a redelivery, a reopening, and what goes one by one instead."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conversations_testkit import Env, ago, counted_handlers

from inbox_conversations import domain
from inbox_conversations.consumers import Handlers
from inbox_conversations.usecases.inbound import reopened_activity_id
from inbox_core.events import Event

WA = "34600222333"


def texts(env: Env, wa_id: str, tag: str, count: int, start: datetime | None = None) -> list[Event]:
    start = start or ago(minutes=4)
    return [env.message(wa_id, wamid=f"wamid.{tag}.{i}", text=f"{tag} {i}", at=start + timedelta(seconds=i))
            for i in range(count)]


async def timeline(env: Env, conversation_id: str) -> list[dict[str, Any]]:
    return await env.store.timeline.find({"conversation_id": conversation_id}).sort([("seq", 1)]).to_list(None)


# What a run must leave as one by one would (ids, times of the write and versions aside).
COMPARED = ("unread_count", "has_unread", "awaiting_reply", "status", "last_customer_at", "window_expires_at")


async def test_a_run_leaves_what_one_by_one_leaves(env: Env) -> None:
    one, run = "34600000001", "34600000002"
    for wa_id in (one, run):
        await env.deliver(env.message(wa_id, wamid=f"wamid.first.{wa_id}", at=ago(minutes=9)))
    start = ago(minutes=4)
    await env.deliver(*texts(env, one, "one", 4, start))
    assert Handlers.text_run(texts(env, run, "x", 1)[0]) == (env.workspace, env.number, f"wa:{run}")
    await env.handlers.on_text_run(texts(env, run, "run", 4, start))

    by_one, by_run = await env.conversation(one), await env.conversation(run)
    for name in COMPARED:
        assert by_one[name] == by_run[name], name
    assert by_run["unread_count"] == 5 and by_run["last_message"]["preview"] == "run 3"
    assert by_run["last_inbound_wamid"] == "wamid.run.3"
    assert by_one["last_message"]["at"] == by_run["last_message"]["at"]
    items = await timeline(env, by_run["_id"])
    assert [i.get("text") for i in items] == ["hello", "run 0", "run 1", "run 2", "run 3"]
    assert len({i["seq"] for i in items}) == 5 and items[-1]["seq"] <= by_run["last_seq"]


async def test_a_run_is_three_operations_and_one_conversation_update(env: Env) -> None:
    tail = await env.tail(env.topics.conversations)
    run = texts(env, WA, "ops", 5)
    async with counted_handlers(env) as (handlers, ops):
        await handlers.on_whatsapp_event(env.message(WA, wamid="wamid.ops.first"))  # creates it
        ops.clear()
        await handlers.on_text_run(run)
        # The conversation read by _id taking five seqs, the five messages in one insert, one guarded update.
        assert sorted(ops.names()) == ["findAndModify", "findAndModify", "insert"], ops.names()
    cid = env.conversation_id(WA)
    await tail.wait_for(lambda es: sum(e.type == "message.created" for e in es) >= 6)
    await tail.settle(0.5)
    created = [e for e in tail.events() if e.type == "message.created"]
    assert [e.data["message"]["text"] for e in created] == ["hello", *(f"ops {i}" for i in range(5))]  # in order
    updated = [e for e in tail.events() if e.type == "conversation.updated"]
    # One for the first message, one for the whole run.
    assert len(updated) == 2 and updated[1].id == domain.event_id(run[-1].id, "conversation.updated")
    assert updated[1].data["conversation"]["unread_count"] == 6
    assert set(tail.keys()) == {cid}


async def test_a_redelivered_run_changes_nothing(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.again.first"))
    run = texts(env, WA, "again", 3)
    await env.handlers.on_text_run(run)
    before = await env.conversation(WA)
    items_before = await timeline(env, before["_id"])
    tail = await env.tail(env.topics.conversations)
    await env.handlers.on_text_run(run)  # a crash before the commit: the whole run again
    await env.handlers.on_text_run(run[1:])  # or cut differently by the next poll
    after = await env.conversation(WA)
    assert after["unread_count"] == before["unread_count"] == 4
    assert after["last_message"] == before["last_message"]
    assert [(i["_id"], i["seq"]) for i in await timeline(env, after["_id"])] == \
        [(i["_id"], i["seq"]) for i in items_before]  # the stored seqs win: the order does not move
    await tail.wait_for(lambda es: sum(e.type == "message.created" for e in es) >= 5)
    await tail.settle(0.5)
    ids = [e.id for e in tail.events() if e.type == "message.created"]
    assert len(set(ids)) == 3  # republished with the same ids: downstream deduplicates


async def test_a_run_reopens_a_resolved_conversation_once(env: Env) -> None:
    await env.deliver(env.message(WA, wamid="wamid.reopen.first"))
    cid = env.conversation_id(WA)
    await env.store.conversations.update_one({"_id": cid}, {"$set": {"status": domain.RESOLVED},
                                                            "$inc": {"version": 1}})
    tail = await env.tail(env.topics.conversations)
    run = texts(env, WA, "reopen", 3)
    await env.handlers.on_text_run(run)
    await env.handlers.on_text_run(run)  # redelivered: reopens nothing more
    conv = await env.conversation(WA)
    assert conv["status"] == domain.OPEN
    opener = domain.inbound_message_id(env.workspace, "wamid.reopen.0")
    assert conv["reopened_by"] == opener
    activities = [i for i in await timeline(env, cid) if i["kind"] == "activity"]
    assert [(a["_id"], a["action"]) for a in activities] == [(reopened_activity_id(opener), "reopened")]
    await tail.wait_for(lambda es: any(e.type == "activity.created" for e in es))
    await tail.settle(0.5)
    assert len({e.id for e in tail.events() if e.type == "activity.created"}) == 1


async def test_a_new_conversation_or_one_waiting_for_facts_goes_one_by_one(env: Env) -> None:
    # No conversation yet: each message alone, the first creating it.
    await env.handlers.on_text_run(texts(env, WA, "new", 3))
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 3 and conv["last_message"]["preview"] == "new 2"
    # A reaction to a message not yet stored waits in pending, noted on the conversation.
    reaction = env.message(WA, type_="reaction", text=None, wamid="wamid.reaction.1",
                           reaction={"message_id": "wamid.late.1", "emoji": "👍"})
    await env.deliver(reaction)
    assert "wamid.late.1" in ((await env.conversation(WA)).get("pending_keys") or [])
    late = [env.message(WA, wamid="wamid.late.0", text="late 0"), env.message(WA, wamid="wamid.late.1", text="late 1")]
    await env.handlers.on_text_run(late)
    conv = await env.conversation(WA)
    assert conv["unread_count"] == 5 and "wamid.late.1" not in (conv.get("pending_keys") or [])
    target = await env.store.timeline.find_one({"wamid": "wamid.late.1"})
    assert target is not None and target["reactions"]["customer"]["emoji"] == "👍"


async def test_what_is_not_a_plain_live_text_joins_no_run(env: Env) -> None:
    plain = env.message(WA)
    assert Handlers.text_run(plain) == (env.workspace, env.number, f"wa:{WA}")
    # The customer's identity as conversation ids take it: the wa_id first, else the user id.
    assert Handlers.text_run(env.message(WA, user_id="US.1")) == Handlers.text_run(plain)
    assert Handlers.text_run(env.message("", user_id=WA)) == (env.workspace, env.number, f"bsuid:{WA}")
    for event in (env.message(WA, type_="image", text=None), env.message(WA, origin="history"),
                  env.message(WA, origin="echo", direction="out"),
                  env.message(WA, context={"message_id": "wamid.quoted"}),
                  env.message(WA, workspace=None), env.status("wamid.x", "read")):
        assert Handlers.text_run(event) is None, event
