"""Resolve and snooze through a real gRPC server, real Kafka and the database: SetStatus's rules, its
activities and events, the list's status filters with paging, a customer message reopening, the waker
of ended snoozes, and the backfill of documents from before statuses."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from conversations_testkit import Crash, Env, ago, crash_once_after, list_ids
from google.protobuf import timestamp_pb2

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_conversations import domain
from inbox_conversations.repositories.conversations import STATUS_BACKFILL_MARK
from inbox_conversations.usecases.snoozes import SnoozeWaker
from inbox_conversations.usecases.team import TeamWork
from inbox_core.grpc_server import ERROR_CODE_KEY

AGENT = common_pb2.Actor(id="ag_1", name="Grace Hopper")


def ts(value: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def in_(**delta: float) -> datetime:
    return datetime.now(UTC) + timedelta(**delta)


async def set_status(stub: ConversationsServiceStub, env: Env, cid: str, status: int,
                     until: datetime | None = None) -> pb.Conversation:
    request = pb.SetStatusRequest(workspace_id=env.workspace, conversation_id=cid, agent=AGENT, status=status)
    if until is not None:
        request.until.CopyFrom(ts(until))
    return (await stub.SetStatus(request)).conversation


async def activities(stub: ConversationsServiceStub, env: Env, cid: str) -> list[pb.Activity]:
    reply = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid))
    return [i.activity for i in reply.items if i.WhichOneof("item") == "activity"]


def waker(env: Env) -> SnoozeWaker:
    return SnoozeWaker(TeamWork(env.store.repos, env.publisher, 10))


async def test_invalid_requests_and_another_workspace(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111"))
    cid = env.conversation_id("111")
    for status, until in ((pb.CONVERSATION_STATUS_UNSPECIFIED, None), (pb.CONVERSATION_STATUS_SNOOZED, None),
                          (pb.CONVERSATION_STATUS_SNOOZED, ago(minutes=1)),
                          (pb.CONVERSATION_STATUS_RESOLVED, in_(hours=1)),
                          (pb.CONVERSATION_STATUS_OPEN, in_(hours=1))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await set_status(stub, env, cid, status, until)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (status, until)
        assert dict(refused.value.trailing_metadata() or ()).get(ERROR_CODE_KEY) == "invalid_request"
    with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
        await stub.SetStatus(pb.SetStatusRequest(workspace_id="ws_other", conversation_id=cid, agent=AGENT,
                                                 status=pb.CONVERSATION_STATUS_RESOLVED))
    assert elsewhere.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await env.conversation("111")).get("status") == "open"
    assert await activities(stub, env, cid) == []


async def test_resolve_snooze_and_reopen_with_their_activities_and_events(
        env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111"))
    cid = env.conversation_id("111")
    stream = await env.tail(env.topics.conversations)
    fresh = (await stub.GetConversation(pb.GetConversationRequest(workspace_id=env.workspace,
                                                                  conversation_id=cid))).conversation
    assert fresh.status == pb.CONVERSATION_STATUS_OPEN and fresh.last_seq == 1

    resolved = await set_status(stub, env, cid, pb.CONVERSATION_STATUS_RESOLVED)
    assert resolved.status == pb.CONVERSATION_STATUS_RESOLVED and not resolved.HasField("snoozed_until")
    again = await set_status(stub, env, cid, pb.CONVERSATION_STATUS_RESOLVED)
    assert again.version == resolved.version  # no change, no activity
    until = in_(hours=2).replace(microsecond=0)
    snoozed = await set_status(stub, env, cid, pb.CONVERSATION_STATUS_SNOOZED, until)
    assert snoozed.status == pb.CONVERSATION_STATUS_SNOOZED
    assert snoozed.snoozed_until.ToDatetime(tzinfo=UTC) == until
    assert (await set_status(stub, env, cid, pb.CONVERSATION_STATUS_SNOOZED, until)).version == snoozed.version
    later = await set_status(stub, env, cid, pb.CONVERSATION_STATUS_SNOOZED, until + timedelta(hours=1))
    assert later.version > snoozed.version  # another end is a change
    reopened = await set_status(stub, env, cid, pb.CONVERSATION_STATUS_OPEN)
    assert reopened.status == pb.CONVERSATION_STATUS_OPEN and not reopened.HasField("snoozed_until")

    items = await activities(stub, env, cid)
    assert [a.action for a in items] == ["resolved", "snoozed", "snoozed", "reopened"]
    assert all(a.actor.id == "ag_1" for a in items)
    assert dict(items[1].details)["until"] == until.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    seqs = [a.seq for a in items]
    assert seqs == sorted(seqs) and seqs[0] > 1 and len(set(seqs)) == 4
    assert reopened.last_seq == seqs[-1]

    events = await stream.wait_for(lambda es: len([e for e in es if e.type == "activity.created"]) >= 4
                                   and [e for e in es if e.type == "conversation.updated"][-1:]
                                   and es[-1].data.get("conversation", {}).get("status") == "open")
    assert [e.data["activity"]["action"] for e in events if e.type == "activity.created"] == [
        "resolved", "snoozed", "snoozed", "reopened"]
    statuses = [e.data["conversation"]["status"] for e in events if e.type == "conversation.updated"]
    assert statuses == ["resolved", "snoozed", "snoozed", "open"]
    snoozed_update = [e for e in events if e.type == "conversation.updated"][1].data["conversation"]
    assert datetime.fromisoformat(snoozed_update["snoozed_until"]) == until
    assert [e for e in events if e.type == "conversation.updated"][-1].data["conversation"]["last_seq"] == seqs[-1]


async def test_the_list_per_status_filter_with_paging(env: Env, stub: ConversationsServiceStub,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    customers = [f"20{i}" for i in range(6)]
    for i, wa_id in enumerate(customers):
        await env.deliver(env.message(wa_id, at=ago(minutes=10 - i)))
    ids = [env.conversation_id(w) for w in customers]
    newest_first = list(reversed(ids))
    for cid in (ids[0], ids[2], ids[4]):
        await set_status(stub, env, cid, pb.CONVERSATION_STATUS_RESOLVED)
    await set_status(stub, env, ids[3], pb.CONVERSATION_STATUS_SNOOZED, in_(hours=1))

    async def paged(status: int) -> list[str]:
        found: list[str] = []
        cursor = ""
        while True:
            reply = await stub.ListConversations(pb.ListConversationsRequest(
                workspace_id=env.workspace, status=status, limit=2, cursor=cursor))
            found += [c.id for c in reply.items]
            cursor = reply.next_cursor
            if not cursor:
                return found

    assert await paged(pb.STATUS_FILTER_UNSPECIFIED) == [ids[5], ids[1]]
    assert await paged(pb.STATUS_FILTER_OPEN) == [ids[5], ids[1]]
    assert await paged(pb.STATUS_FILTER_RESOLVED) == [ids[4], ids[2], ids[0]]
    assert await paged(pb.STATUS_FILTER_SNOOZED) == [ids[3]]
    assert await paged(pb.STATUS_FILTER_ANY) == newest_first
    # the other filters combine with the status
    assert await list_ids(stub, env, filter=pb.CONVERSATION_FILTER_UNREAD, status=pb.STATUS_FILTER_RESOLVED) == [
        ids[4], ids[2], ids[0]]
    counts = await stub.CountUnread(pb.CountUnreadRequest(workspace_id=env.workspace))
    assert [c.conversations for c in counts.counts] == [2]  # the badge counts the open ones, as the list shows
    monkeypatch.setattr(domain, "UNREAD_COUNT_MAX", 1)  # the count stops at the cap: 1 means 1 or more
    counts = await stub.CountUnread(pb.CountUnreadRequest(workspace_id=env.workspace))
    assert [c.conversations for c in counts.counts] == [1]


async def test_a_customer_message_reopens_and_an_echo_does_not(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("111", at=ago(minutes=5)))
    cid = env.conversation_id("111")
    await set_status(stub, env, cid, pb.CONVERSATION_STATUS_RESOLVED)
    stream = await env.tail(env.topics.conversations)
    await env.deliver(env.message("111", origin="echo", direction="out", at=ago(minutes=4)))
    assert (await env.conversation("111"))["status"] == "resolved"

    message = env.message("111", at=ago(minutes=3))
    await env.deliver(message)
    await env.deliver(message)  # a redelivery reopens nothing more
    stored = await env.conversation("111")
    assert stored["status"] == "open" and stored["snoozed_until"] is None
    items = await activities(stub, env, cid)
    assert [(a.action, a.actor.id, dict(a.details)) for a in items] == [
        ("resolved", "ag_1", {}), ("reopened", "", {"reason": "customer_message"})]
    events = await stream.wait_for(lambda es: any(e.type == "activity.created" for e in es)
                                   and any(e.type == "conversation.updated"
                                           and e.data["conversation"]["status"] == "open" for e in es))
    # one event (the redelivery publishes it again under the same id, as it does the message's)
    (created,) = {e.id: e for e in events if e.type == "activity.created"}.values()
    assert created.data["activity"]["action"] == "reopened" and created.data["activity"]["actor"] is None
    timeline = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid))
    kinds = [i.WhichOneof("item") for i in timeline.items]
    assert kinds[-2:] == ["message", "activity"]  # the reopening comes after the message that did it

    # a snoozed conversation too
    await set_status(stub, env, cid, pb.CONVERSATION_STATUS_SNOOZED, in_(hours=3))
    await env.deliver(env.message("111", at=ago(minutes=1)))
    assert (await env.conversation("111"))["status"] == "open"
    assert [a.action for a in await activities(stub, env, cid)][-1] == "reopened"


async def test_the_waker_reopens_a_due_snooze_and_not_an_early_one(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("301"), env.message("302"))
    due, early = env.conversation_id("301"), env.conversation_id("302")
    await set_status(stub, env, due, pb.CONVERSATION_STATUS_SNOOZED, in_(minutes=5))
    await set_status(stub, env, early, pb.CONVERSATION_STATUS_SNOOZED, in_(hours=5))
    stream = await env.tail(env.topics.conversations)

    assert await waker(env).wake_due() == 0  # nothing is due yet
    later = in_(minutes=10)
    # Two workers at once: one reopens, the other finds it open.
    assert sum(await asyncio.gather(waker(env).wake_due(later), waker(env).wake_due(later))) == 1
    assert await waker(env).wake_due(later) == 0

    assert (await env.conversation("301"))["status"] == "open"
    assert (await env.conversation("302"))["status"] == "snoozed"
    woken = await activities(stub, env, due)
    assert [(a.action, a.actor.id, dict(a.details)) for a in woken][-1] == (
        "reopened", "", {"reason": "snooze_ended"})
    assert [a.action for a in woken] == ["snoozed", "reopened"]
    assert [a.action for a in await activities(stub, env, early)] == ["snoozed"]
    events = await stream.wait_for(lambda es: any(e.type == "conversation.updated" for e in es)
                                   and any(e.type == "activity.created" for e in es))
    await stream.settle(1.0)
    events = stream.events()
    assert [e.data["activity"]["action"] for e in events if e.type == "activity.created"] == ["reopened"]
    assert {e.data["conversation"]["id"] for e in events if e.type == "conversation.updated"} == {due}


async def test_documents_from_before_statuses_are_open_after_the_backfill(
        env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message("401"))
    await env.store.conversations.update_many({}, {"$unset": {"status": "", "snoozed_until": ""}})
    assert await list_ids(stub, env) == []  # unlisted until the backfill
    await env.store.repos.conversations.marks.delete_one({"_id": STATUS_BACKFILL_MARK})
    assert await env.store.repos.conversations.backfill_status() == 1
    assert await env.store.repos.conversations.backfill_status() == 0  # once
    assert await list_ids(stub, env) == [env.conversation_id("401")]


@pytest.mark.parametrize("crash_after", ["the activity's insert", "the conversation's update"])
async def test_a_crash_while_a_customer_message_reopens_gives_one_reopening(
        env: Env, stub: ConversationsServiceStub, monkeypatch: pytest.MonkeyPatch, crash_after: str) -> None:
    """The activity is inserted before the write that reopens: a crash after either write, then the
    redelivery, leaves the conversation open with one ``reopened`` activity."""
    await env.deliver(env.message("501", at=ago(minutes=5)))
    cid = env.conversation_id("501")
    await set_status(stub, env, cid, pb.CONVERSATION_STATUS_RESOLVED)
    message = env.message("501", at=ago(minutes=1))
    timeline = env.store.repos.timeline
    if crash_after == "the conversation's update":
        crashed = crash_once_after(monkeypatch, env.store.repos.conversations, "update")
    else:
        crashed = []
        insert = timeline.insert

        async def insert_then_crash_on_the_activity(doc: dict[str, Any]) -> bool:
            inserted = await insert(doc)
            if doc.get("kind") == "activity" and not crashed:
                crashed.append(1)
                raise Crash("insert")
            return inserted

        monkeypatch.setattr(timeline, "insert", insert_then_crash_on_the_activity)
    stream = await env.tail(env.topics.conversations)
    with pytest.raises(Crash):
        await env.deliver(message)
    assert crashed
    await env.deliver(message)
    assert (await env.conversation("501"))["status"] == "open"
    assert [a.action for a in await activities(stub, env, cid)] == ["resolved", "reopened"]
    # and its event is published, whichever write the crash followed
    events = await stream.wait_for(lambda es: [e for e in es if e.type == "activity.created"
                                               and e.data["activity"]["action"] == "reopened"])
    assert {e.data["activity"]["id"] for e in events if e.type == "activity.created"} == {
        a.id for a in await activities(stub, env, cid) if a.action == "reopened"}
