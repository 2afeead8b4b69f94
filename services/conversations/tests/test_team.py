"""Team work through a real gRPC server: notes, assignment, read receipts, and the outbox that
publishes them while Kafka is down (and parks a poison entry)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import grpc
import pytest
from conversations_testkit import Env, ago, list_ids

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_core.events import Event
from inbox_core.grpc_server import ERROR_CODE_KEY

AGENT = common_pb2.Actor(id="ag_1", name="Grace Hopper")
OTHER_AGENT = common_pb2.Actor(id="ag_2", name="Linus")


def error_code(exc: grpc.aio.AioRpcError) -> str | None:
    return dict(exc.trailing_metadata() or ()).get(ERROR_CODE_KEY)


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


async def test_a_notes_mentions_count_once_however_often_its_entry_is_carried_out(
        env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("222", wamid="wamid.m.1"))
    cid = env.conversation_id("222")
    note = (await stub.AddNote(pb.AddNoteRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT,
                                                 text="see this", mentions=[OTHER_AGENT, AGENT]))).note
    assert [(a.id, a.name) for a in note.mentions] == [("ag_2", "Linus"), ("ag_1", "Grace Hopper")]

    async def unseen(agent_id: str) -> int:
        return (await stub.GetConversation(pb.GetConversationRequest(
            workspace_id=env.workspace, conversation_id=cid, agent_id=agent_id))).conversation.unseen_mentions

    assert (await unseen("ag_2"), await unseen("ag_1"), await unseen("")) == (1, 0, 0)  # not the author's own
    # The relay carrying the same entry out again (a crash before it was removed) counts nothing twice.
    stored = await env.store.get_item(note.id)
    assert stored is not None
    for _ in range(2):
        await env.store.repos.mentions.add(env.workspace, cid, note.id, ["ag_2"], stored["at"])
    assert await unseen("ag_2") == 1
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MENTIONS, agent_id="ag_2") == [cid]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MENTIONS)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await stub.MarkRead(pb.MarkReadRequest(workspace_id=env.workspace, conversation_id=cid, agent=OTHER_AGENT))
    assert await unseen("ag_2") == 0
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_MENTIONS, agent_id="ag_2") == []


async def test_the_typing_indicator_goes_at_most_every_25_s_and_only_inside_the_window(
        env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("333", wamid="wamid.t.1", at=ago(minutes=5)),
                      env.message("333", wamid="wamid.t.2", at=ago(minutes=1)),
                      env.message("444", wamid="wamid.t.old", at=ago(hours=25)))
    commands = await env.tail(env.topics.commands)

    async def typing(wa_id: str) -> bool:
        return (await stub.IndicateTyping(pb.IndicateTypingRequest(
            workspace_id=env.workspace, conversation_id=env.conversation_id(wa_id), agent=AGENT))).sent

    assert await typing("333") is True
    assert await typing("333") is False  # within 25 s: Meta still shows the first
    assert await typing("444") is False  # the window closed a hour ago
    (command,) = await commands.wait_for(lambda es: len(es) >= 1)
    await commands.settle(1.0)
    assert len(commands.events()) == 1
    assert command.type == "whatsapp.command.mark_read" and command.data["typing_indicator"] is True
    assert command.data["message_wamid"] == "wamid.t.2"  # the customer's newest message
    # 25 s later (the last one moved back in time, as a clock would), it goes again, as a command of its own.
    await env.store.conversations.update_one({"_id": env.conversation_id("333")},
                                             {"$set": {"typing_sent_at": ago(seconds=26)}})
    assert await typing("333") is True
    second = (await commands.wait_for(lambda es: len(es) >= 2))[1]
    assert second.data["typing_indicator"] is True and second.data["command_id"] != command.data["command_id"]
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stub.IndicateTyping(pb.IndicateTypingRequest(workspace_id=env.workspace, conversation_id="cnv_nope"))
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


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
