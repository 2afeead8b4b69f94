"""A stream frame reads exactly like the GET answer (but for the order of a free object's keys): an event's
view takes the path of its service's gRPC answer (the service's own encoding of the view, here) through the
gateway's one converter of its entity; and that converter's rules hold for what only events carry (an actor
without an id, an unknown status or stage, a customer without a name)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from inbox_conversations import wire
from inbox_core.events import Event, EventData
from inbox_core.events import conversations as cev
from inbox_core.events import customers as kev
from inbox_core.events import orders as oev
from inbox_customers.domain import Customer
from inbox_customers.rpc import customer_to_proto, stats_to_proto
from inbox_gateway import convert
from inbox_gateway.stream.frames import translate
from inbox_orders.rpc import order_to_proto

AT = datetime(2026, 12, 2, 5, 0, 0, 123456, tzinfo=UTC)
WORKSPACE = "ws_1"
AGENT = cev.Actor(id="agt_1", name="Ben")
SYSTEM = cev.Actor(id="", name="System")  # an actor without an id: none in the API
MONEY = oev.Money(amount="12.50", currency="EUR")


def canonical(data: Any) -> str:
    """``data``'s JSON, its objects' keys sorted: a Struct's keys come out of the gRPC path in no fixed order
    (on GET too), every other byte counts (``12`` is not ``12.0``)."""
    return json.dumps(json.loads(msgspec.json.encode(data)), sort_keys=True)


def frame_json(payload: EventData) -> tuple[str, str]:
    """The frame's name and data's JSON (canonical), for the event as it comes from Kafka."""
    event = Event.model_validate_json(Event.of(payload, workspace_id=WORKSPACE).model_dump_json())
    name, data = translate(event)
    return name, canonical(data)


def frame_data(payload: EventData) -> Any:
    return json.loads(frame_json(payload)[1])


def answer(model: Any) -> str:
    """A GET answer's JSON (canonical)."""
    return canonical(model)


def summary() -> cev.ConversationSummary:
    return cev.ConversationSummary(
        id="cnv_1", workspace_id=WORKSPACE, number_id="n1",
        customer=cev.CustomerRef(id="cus_1", wa_id="346", user_id="u1", name="Ada", phone="+346"),
        last_message=cev.LastMessage(id="msg_1", direction="out", type="text", preview="hi", at=AT,
                                     status="delivered"),
        unread_count=2, awaiting_reply=True, assignee=AGENT,
        window=cev.Window(open=True, expires_at=AT + timedelta(hours=1)), updated_at=AT, created_at=AT, version=7)


def messages() -> list[cev.MessageView]:
    full = cev.MessageView(
        id="msg_1", conversation_id="cnv_1", wamid="wamid.1", direction="out", origin="api", type="image",
        text="caption", media=cev.MediaView(id="st_1", media_id="meta_1", mime_type="image/png", filename="a.png",
                                            caption="caption", size=10, sha256="ab", status="stored"),
        template=cev.TemplateRef(name="welcome", language="en", params={"body": ["x", 1, 2.5, True, None]}),
        location={"latitude": 41.5, "longitude": 2, "name": "Shop"}, contacts=[{"name": {"first": "Ada"}}],
        interactive={"type": "button_reply", "button_reply": {"id": "b1"}},
        reaction=cev.ReactionRef(message_id="msg_0", emoji="👍"), reply_to="msg_0",
        reactions=[cev.MessageReaction(emoji="👍", by=AGENT, direction="out", at=AT),
                   cev.MessageReaction(emoji="❤", direction="in", at=AT)],
        status="failed", status_at=AT, error=cev.MessageError(code=131047, title="Re-engagement", detail="24h"),
        sent_by=AGENT, at=AT, edited=True)
    bare = cev.MessageView(id="msg_2", conversation_id="cnv_1", direction="in", type="location", at=AT,
                           location={}, media=cev.MediaView(status="pending"), error=cev.MessageError())
    return [full, bare]


def order() -> oev.OrderSnapshot:
    return oev.OrderSnapshot(
        id="ord_1", number=3, workspace_id=WORKSPACE, customer_id="cus_1", conversation_id="cnv_1",
        items=[oev.OrderItem(sku="MUG", name="Mug", quantity=2, unit_price=MONEY,
                             line_total=oev.Money(amount="25.00", currency="EUR")),
               oev.OrderItem(sku="CUP", name="Cup", quantity=1, unit_price=MONEY)],
        total=oev.Money(amount="37.50", currency="EUR"), shipping={"name": "Ada", "city": "Barcelona"},
        note="fragile", stage="shipped",
        stage_history=[oev.StageChange(stage="new", by=AGENT, at=AT), oev.StageChange(stage="shipped", at=AT)],
        created_by=AGENT, created_at=AT, updated_at=AT, version=3)


def customer() -> kev.CustomerSnapshot:
    return kev.CustomerSnapshot(
        id="cus_1", workspace_id=WORKSPACE, wa_id="346", user_id="u1", phone="+346", name="Ada",
        profile_name="Ada P", tags=["vip"], attributes={"size": "M", "visits": 2}, first_seen_at=AT,
        last_seen_at=AT, stats=kev.CustomerStats(orders=3, delivered=1, returned=1, revenue_amount="25.00",
                                                 revenue_currency="EUR"))


def test_a_conversation_frame_reads_like_the_get_answer_but_for_composing_viewing_and_mentions() -> None:
    name, data = frame_json(cev.ConversationUpdated(conversation=summary()))
    fetched = msgspec.to_builtins(convert.conversation(wire.conversation_pb(summary(), unseen_mentions=3)))
    assert name == "conversation.updated"
    assert fetched.pop("composing") == []  # composing and viewing changes have their own events
    assert fetched.pop("viewing") == []
    assert fetched.pop("unseen_mentions") == 3  # each agent's own: `mention` events tell it
    assert data == answer(fetched)


def test_message_note_and_activity_frames_read_like_the_timeline() -> None:
    for view in messages():
        name, data = frame_json(cev.MessageCreated(conversation_id="cnv_1", message=view))
        assert name == "message.created"
        assert data == answer({"conversation_id": "cnv_1", "message": convert.message(wire.message_pb(view))})
    note = cev.NoteView(id="nte_1", conversation_id="cnv_1", text="call back", author=AGENT, at=AT)
    assert frame_json(cev.NoteCreated(conversation_id="cnv_1", note=note))[1] == \
        answer({"conversation_id": "cnv_1", "note": convert.note(wire.note_pb(note))})
    activity = cev.ActivityView(id="act_1", conversation_id="cnv_1", action="order_created", actor=AGENT,
                                details={"order_id": "ord_1", "order_number": 12}, at=AT)
    assert frame_json(cev.ActivityCreated(conversation_id="cnv_1", activity=activity))[1] == \
        answer({"conversation_id": "cnv_1", "activity": convert.activity(wire.activity_pb(activity))})


def test_order_and_customer_frames_read_like_the_panel() -> None:
    name, data = frame_json(oev.OrderCreated(order=order()))
    assert name == "order.updated"
    assert data == answer(convert.order(order_to_proto(order())))
    assert json.loads(data)["items"][1] == {"sku": "CUP", "name": "Cup", "quantity": 1,
                                                     "unit_price": "12.50", "line_total": ""}

    name, data = frame_json(kev.CustomerUpdated(customer=customer()))
    served = Customer(**customer().model_dump())  # the service's customer; the event has no updated_at
    assert name == "customer.updated"
    assert data == answer({**msgspec.to_builtins(convert.customer(customer_to_proto(served))),
                           "stats": convert.stats(stats_to_proto(served), currency="")})


def test_what_only_events_carry_follows_the_converters_rules() -> None:
    odd = summary().model_copy(update={
        "assignee": SYSTEM, "customer": cev.CustomerRef(id="cus_2"),
        "last_message": cev.LastMessage(id="m", direction="in", type="text", preview="", at=AT, status="weird")})
    conversation = frame_data(cev.ConversationUpdated(conversation=odd))
    assert conversation["assignee"] is None and conversation["last_message"]["status"] is None
    assert conversation["customer"] == {"id": "cus_2", "wa_id": "", "name": "", "phone": "", "user_id": None}

    message = cev.MessageView(id="m", conversation_id="cnv_1", direction="in", type="text", text="hi", at=AT,
                              status="bogus", sent_by=SYSTEM,
                              reactions=[cev.MessageReaction(emoji="x", by=SYSTEM, direction="in", at=AT)])
    streamed = frame_data(cev.MessageCreated(conversation_id="cnv_1", message=message))["message"]
    assert streamed["status"] is None and streamed["sent_by"] is None and streamed["wamid"] is None
    assert streamed["reactions"] == [{"emoji": "x", "by": None, "direction": "in", "at": "2026-12-02T05:00:00.123456Z"}]

    odd_order = order().model_copy(update={
        "stage": "lost", "shipping": {}, "conversation_id": None, "updated_at": None, "created_by": SYSTEM,
        "stage_history": [oev.StageChange(stage="lost", by=SYSTEM, at=AT)]})
    streamed = frame_data(oev.OrderUpdated(order=odd_order))
    assert streamed["stage"] == "new" and streamed["stage_history"][0]["stage"] == "new"
    assert streamed["stage_history"][0]["by"] is None and streamed["created_by"] is None
    assert streamed["shipping"] is None and streamed["conversation_id"] is None and streamed["updated_at"] is None

    # The customers service names a customer by their WhatsApp name until an agent sets one.
    unnamed = kev.CustomerSnapshot(id="cus_3", workspace_id=WORKSPACE, profile_name="Profile")
    streamed = frame_data(kev.CustomerCreated(customer=unnamed))
    assert streamed["name"] == "Profile" and streamed["phone"] == "" and streamed["profile_name"] == "Profile"
    assert streamed["stats"] == {"orders": 0, "delivered": 0, "returned": 0, "cancelled": 0,
                                 "revenue": {"amount": "0", "currency": ""}}


def test_a_field_an_event_gains_that_its_message_lacks_is_left_out() -> None:
    newer = cev.NoteView.model_validate({"id": "nte_1", "conversation_id": "cnv_1", "text": "t", "at": AT,
                                         "pinned": True, "author": {"id": "agt_1", "name": "Ben", "role": "x"}})
    streamed = frame_data(cev.NoteCreated(conversation_id="cnv_1", note=newer))["note"]
    assert streamed == {"kind": "note", "id": "nte_1", "conversation_id": "cnv_1", "text": "t",
                        "author": {"id": "agt_1", "name": "Ben"}, "at": "2026-12-02T05:00:00.123456Z", "seq": 0,
                        "mentions": []}


def test_a_streamed_item_carries_its_seq() -> None:
    note = cev.NoteView(id="nte_2", conversation_id="cnv_1", text="t", at=AT, seq=7)
    assert frame_data(cev.NoteCreated(conversation_id="cnv_1", note=note))["note"]["seq"] == 7
