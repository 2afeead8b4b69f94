"""Items keep the order the inbox learned of them (``seq``; Meta's timestamps have one-second resolution):
in the timeline, across page boundaries, in the conversation's last message and awaiting_reply, after
redeliveries and crashes; old and invalid timeline cursors. Real Kafka and database."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import grpc
import pytest
from conversations_testkit import Crash, Env, ago, crash_once_after

from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_conversations import documents, domain
from inbox_conversations.consumers import register
from inbox_conversations.outbox import Publisher
from inbox_core.events import Event
from inbox_core.events.orders import Actor, Money, OrderCreated, OrderSnapshot
from inbox_core.events.whatsapp import Context
from inbox_core.grpc_server import ERROR_CODE_KEY
from inbox_core.kafka import make_broker, publish
from inbox_core.mongo import encode_cursor

WA = "34600111222"
TEXTS = ["Hi! Is the blue dress in stock?", "And can you ship by Friday?", "In size M", "Thanks!"]


def meta_second(**delta: float) -> datetime:
    """A timestamp as Meta gives it: whole seconds."""
    return ago(**delta).replace(microsecond=0)


def against_id_order(count: int, make_id: Callable[[str], str], prefix: str) -> list[str]:
    """Names whose derived ids sort in the REVERSE of the returned order, so that ordering ties by id
    (the old behaviour) shows them backwards and the tests can fail."""
    names = [f"{prefix}.{uuid.uuid4().hex}" for _ in range(count)]
    return sorted(names, key=make_id, reverse=True)


def message_ids(env: Env, wamids: list[str]) -> list[str]:
    return [domain.inbound_message_id(env.workspace, w) for w in wamids]


async def timeline(stub: ConversationsServiceStub, env: Env, cid: str, limit: int) -> list[pb.TimelineItem]:
    """The whole timeline, oldest first, read backwards in pages of ``limit``."""
    items: list[pb.TimelineItem] = []
    before = ""
    while True:
        reply = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid,
                                                             before=before, limit=limit))
        assert len(reply.items) <= limit
        items = list(reply.items) + items
        if not reply.next_before:
            return items
        before = reply.next_before


def ids_of(items: list[pb.TimelineItem]) -> list[str]:
    return [getattr(i, str(i.WhichOneof("item"))).id for i in items]


def same_second_messages(env: Env, at: datetime) -> tuple[list[str], list[Event]]:
    wamids = against_id_order(len(TEXTS), lambda w: domain.inbound_message_id(env.workspace, w), "wamid.tie")
    events = [env.message(WA, wamid=w, at=at, text=t) for w, t in zip(wamids, TEXTS, strict=True)]
    # The second is a reply-quote of the first, as WhatsApp sends it.
    events[1] = env.message(WA, wamid=wamids[1], at=at, text=TEXTS[1], context=Context(message_id=wamids[0]))
    return wamids, events


async def assert_in_arrival_order(env: Env, stub: ConversationsServiceStub, wamids: list[str]) -> None:
    cid = env.conversation_id(WA)
    expected = message_ids(env, wamids)
    for limit in (50, 3, 2, 1):  # one page, and page boundaries inside the tie
        assert ids_of(await timeline(stub, env, cid, limit)) == expected, f"limit {limit}"
    reply = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid))
    assert [i.message.text for i in reply.items] == TEXTS
    seqs = [i.message.seq for i in reply.items]  # what clients order by: strictly increasing
    assert all(0 < a < b for a, b in itertools.pairwise(seqs)), seqs
    conv = await env.conversation(WA)
    assert conv["last_message"]["id"] == expected[-1] and conv["last_message"]["preview"] == TEXTS[-1]
    assert conv["awaiting_reply"] and conv["unread_count"] == len(TEXTS)
    assert conv["last_inbound_wamid"] == wamids[-1]  # MarkRead's receipt covers them all
    got = await stub.GetConversation(pb.GetConversationRequest(workspace_id=env.workspace, conversation_id=cid))
    assert got.conversation.last_message.preview == TEXTS[-1]


async def test_messages_of_the_same_second_keep_their_arrival_order(env: Env, stub: ConversationsServiceStub,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    at = meta_second(minutes=3)
    wamids, events = same_second_messages(env, at)
    # The first one crashes after its insert and is redelivered before the next (its offset was not committed).
    crash_once_after(monkeypatch, env.store.repos.timeline, "insert")
    with pytest.raises(Crash):
        await env.deliver(events[0])
    await env.deliver(*events)
    await assert_in_arrival_order(env, stub, wamids)
    reply_doc = await env.store.get_item(message_ids(env, wamids)[1])
    assert reply_doc is not None and reply_doc["reply_to"] == message_ids(env, wamids)[0]

    # A late redelivery of the first one, and Meta's own duplicate of it (another event id), move nothing.
    await env.deliver(events[0], env.message(WA, wamid=wamids[0], at=at, text=TEXTS[0]))
    await assert_in_arrival_order(env, stub, wamids)


async def test_the_same_second_through_the_real_consumer_with_a_redelivery(env: Env, stub: ConversationsServiceStub,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Kafka's order within the customer's partition is the arrival order; the first event comes again at
    the end (a producer retry upstream) and changes nothing."""
    wamids, events = same_second_messages(env, meta_second(minutes=2))
    tail = await env.tail(env.topics.conversations)
    broker = make_broker(env.settings, "conversations-test-worker", registry=None, telemetry=False)
    monkeypatch.setattr("inbox_conversations.consumers.GROUP_ID", f"test-{uuid.uuid4().hex[:8]}")
    register(broker, env.store, Publisher(env.store, broker, env.topics), env.topics)
    await broker.start()
    try:
        key = f"{env.number}:{WA}"
        for event in [*events, events[0]]:
            await publish(broker, env.topics.whatsapp_events, key, event)
        # The handler's last step publishes conversation.updated with an id derived from the event; the
        # partition is processed in order, so its second copy means everything was handled.
        done_id = domain.event_id(events[0].id, "conversation.updated")
        await tail.wait_for(lambda es: sum(e.id == done_id for e in es) >= 2, timeout=60)
    finally:
        await broker.stop()
    await assert_in_arrival_order(env, stub, wamids)


@pytest.mark.parametrize("echo_last", [True, False])
async def test_awaiting_reply_follows_the_later_of_the_same_second(env: Env, echo_last: bool) -> None:
    """A reply sent from the WhatsApp Business app in the same second as the customer's message."""
    at = meta_second(minutes=1)
    # The one processed first gets the greater id.
    first, second = against_id_order(2, lambda w: domain.inbound_message_id(env.workspace, w), "wamid.wait")
    customer = env.message(WA, wamid=first if echo_last else second, at=at, text="Is it in stock?")
    echo = env.message(WA, wamid=second if echo_last else first, at=at, text="Yes!", origin="echo",
                       direction="out", profile_name=None)
    await env.deliver(*([customer, echo] if echo_last else [echo, customer]))
    conv = await env.conversation(WA)
    assert conv["last_message"]["preview"] == ("Yes!" if echo_last else "Is it in stock?")
    assert conv["awaiting_reply"] is (not echo_last)


async def test_activities_of_the_same_time_keep_their_order(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message(WA, at=meta_second(minutes=5)))
    cid = env.conversation_id(WA)
    at = ago(minutes=1)
    event_ids = against_id_order(3, lambda e: domain.derived_id("act_", "order-event", e), "evt")
    for n, event_id in enumerate(event_ids):
        order = OrderSnapshot(id=f"ord_{n}", number=n + 1, workspace_id=env.workspace, customer_id="cus",
                              conversation_id=cid, total=Money(amount="1", currency="EUR"), stage="new",
                              created_by=Actor(id="ag_1", name="Grace"), created_at=at)
        await env.handlers.on_order_event(Event.of(OrderCreated(order=order), workspace_id=env.workspace,
                                                   id=event_id))
    items = await timeline(stub, env, cid, 2)
    assert [i.activity.details["order_number"] for i in items[1:]] == [1, 2, 3]


async def test_old_cursors_still_page_and_bad_ones_are_invalid_requests(env: Env,
                                                                        stub: ConversationsServiceStub) -> None:
    _, events = same_second_messages(env, meta_second(minutes=3))
    await env.deliver(env.message(WA, at=meta_second(minutes=4), text="earlier"), *events)
    cid = env.conversation_id(WA)
    first = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid, limit=2))
    assert [i.message.text for i in first.items] == TEXTS[2:]
    oldest = first.items[0].message
    # A cursor of the format before arrivals existed: (at, id).
    legacy = encode_cursor([oldest.at.ToDatetime().replace(tzinfo=UTC), oldest.id])
    for before in (first.next_before, legacy):
        page = await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid,
                                                            before=before, limit=10))
        assert [i.message.text for i in page.items] == ["earlier", *TEXTS[:2]]
    for bad in ("not-a-cursor", encode_cursor([1, 2, 3]), encode_cursor([oldest.at.ToJsonString(), "x", "y"]),
                encode_cursor([{"$dt": "2024-01-01T00:00:00+00:00"}, True, "msg_x"])):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await stub.GetTimeline(pb.GetTimelineRequest(workspace_id=env.workspace, conversation_id=cid,
                                                         before=bad))
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert dict(err.value.trailing_metadata() or ()).get(ERROR_CODE_KEY) == "invalid_request"


async def test_items_stored_before_arrivals_existed(env: Env, stub: ConversationsServiceStub) -> None:
    """Documents without ``arrival`` (written by the previous version) come first among their ``at``,
    are paged exactly once, and a conversation whose last message has none takes a newer arrival."""
    at = meta_second(minutes=3)
    await env.deliver(env.message(WA, at=at, text="new one"))
    cid = env.conversation_id(WA)
    legacy = []
    for n in range(3):
        doc = {"_id": f"msg_legacy{n}", "kind": "message", "workspace_id": env.workspace, "conversation_id": cid,
               "direction": "in", "origin": "live", "type": "text", "text": f"legacy {n}", "at": at}
        await env.store.timeline.insert_one(doc)
        legacy.append(doc)
    # The conversation's last message as the previous version wrote it: no arrival.
    await env.store.conversations.update_one({"_id": cid}, {"$set": {"last_message": {
        "id": "msg_legacy2", "direction": "in", "type": "text", "preview": "legacy 2", "at": at}}})
    for limit in (1, 2, 50):
        texts = [i.message.text for i in await timeline(stub, env, cid, limit)]
        assert texts == ["legacy 0", "legacy 1", "legacy 2", "new one"], f"limit {limit}"

    later = env.message(WA, at=at, text="after the upgrade")
    await env.deliver(later)
    assert (await env.conversation(WA))["last_message"]["preview"] == "after the upgrade"
    # A redelivered legacy-era message does not take the place back.
    assert not await env.store.apply_last_message(cid, documents.last_message(legacy[2]), True)
    assert (await env.conversation(WA))["last_message"]["preview"] == "after the upgrade"


async def test_the_old_timeline_indexes_are_replaced(env: Env) -> None:
    await env.store.timeline.drop_index("timeline_seq")
    await env.store.timeline.create_index([("conversation_id", 1), ("at", -1), ("_id", -1)], name="timeline")
    await env.store.timeline.create_index([("conversation_id", 1), ("at", -1), ("arrival", -1), ("_id", -1)],
                                          name="timeline_order")
    await env.store.ensure_indexes()
    names = set(await env.store.timeline.index_information())
    assert "timeline_seq" in names and not names & {"timeline", "timeline_order"}
