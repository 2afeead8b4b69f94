"""From the services' gRPC messages to the API's models, one converter per entity.

The events of inbox.*.v1 take the same converters (as the message of their view, below), so a
``conversation.updated`` on the stream reads exactly like the conversation from ``GET /api/conversations/{id}``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message as ProtoMessage
from google.protobuf.struct_pb2 import Struct
from google.protobuf.timestamp_pb2 import Timestamp
from pydantic import BaseModel

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import content_pb2, conversations_pb2
from inbox.customers.v1 import customers_pb2
from inbox.ingest.v1 import ingest_pb2
from inbox.orders.v1 import orders_pb2
from inbox_core.events import customers as kev
from inbox_core.events import orders as oev
from inbox_gateway import models as m

STATUS = {conversations_pb2.MESSAGE_STATUS_PENDING: "pending", conversations_pb2.MESSAGE_STATUS_SENT: "sent",
          conversations_pb2.MESSAGE_STATUS_DELIVERED: "delivered", conversations_pb2.MESSAGE_STATUS_READ: "read",
          conversations_pb2.MESSAGE_STATUS_FAILED: "failed", conversations_pb2.MESSAGE_STATUS_PLAYED: "played"}
DIRECTION = {conversations_pb2.DIRECTION_IN: "in", conversations_pb2.DIRECTION_OUT: "out"}
LIBRARY_TYPE = {content_pb2.LIBRARY_ITEM_TYPE_TEXT: "text", content_pb2.LIBRARY_ITEM_TYPE_IMAGE: "image",
                content_pb2.LIBRARY_ITEM_TYPE_VIDEO: "video", content_pb2.LIBRARY_ITEM_TYPE_AUDIO: "audio",
                content_pb2.LIBRARY_ITEM_TYPE_DOCUMENT: "document"}
LIBRARY_TYPE_VALUE = {v: k for k, v in LIBRARY_TYPE.items()}
MEDIA_KIND = {"image": conversations_pb2.MEDIA_KIND_IMAGE, "video": conversations_pb2.MEDIA_KIND_VIDEO,
              "audio": conversations_pb2.MEDIA_KIND_AUDIO, "document": conversations_pb2.MEDIA_KIND_DOCUMENT}
# A conversation from before statuses existed (UNSPECIFIED) is open.
CONVERSATION_STATUS = {conversations_pb2.CONVERSATION_STATUS_OPEN: "open",
                       conversations_pb2.CONVERSATION_STATUS_RESOLVED: "resolved",
                       conversations_pb2.CONVERSATION_STATUS_SNOOZED: "snoozed"}
CONVERSATION_STATUS_VALUE = {v: k for k, v in CONVERSATION_STATUS.items()}
STATUS_FILTER = {"open": conversations_pb2.STATUS_FILTER_OPEN, "resolved": conversations_pb2.STATUS_FILTER_RESOLVED,
                 "snoozed": conversations_pb2.STATUS_FILTER_SNOOZED, "any": conversations_pb2.STATUS_FILTER_ANY}
STAGES = ("new", "confirmed", "shipped", "delivered", "cancelled", "returned")
STAGE_VALUE = {name: orders_pb2.OrderStage.Value(f"ORDER_STAGE_{name.upper()}") for name in STAGES}
STAGE_NAME = {v: k for k, v in STAGE_VALUE.items()}


# --- small pieces ----------------------------------------------------------------------------------------


def when(message: ProtoMessage, field: str) -> datetime | None:
    if not message.HasField(field):
        return None
    stamp: Timestamp = getattr(message, field)
    return stamp.ToDatetime(tzinfo=UTC)


def struct_dict(value: Struct) -> dict[str, Any]:
    return json_format.MessageToDict(value)


def maybe_struct(message: ProtoMessage, field: str) -> dict[str, Any] | None:
    return struct_dict(getattr(message, field)) if message.HasField(field) else None


def actor(message: ProtoMessage, field: str) -> m.ActorRef | None:
    if not message.HasField(field):
        return None
    value = getattr(message, field)
    return m.ActorRef(id=value.id, name=value.name) if value.id else None


def _direction(value: str) -> Any:
    return value if value in ("in", "out") else "in"


# --- conversations (gRPC) --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Colleagues:
    """Who else is composing in and viewing a conversation (from presence; the caller left out)."""

    composing: list[m.Composing] = dataclasses.field(default_factory=list)
    viewing: list[m.Viewer] = dataclasses.field(default_factory=list)


def conversation(c: conversations_pb2.Conversation, colleagues: Colleagues | None = None) -> m.Conversation:
    last = None
    if c.HasField("last_message"):
        lm = c.last_message
        last = m.LastMessage(id=lm.id, direction=_direction(DIRECTION.get(lm.direction, "in")), type=lm.type,
                             preview=lm.preview, at=when(lm, "at"), status=STATUS.get(lm.status))  # type: ignore[arg-type]
    customer = c.customer
    return m.Conversation(
        id=c.id, number_id=c.number_id, workspace_id=c.workspace_id,
        customer=m.CustomerSummary(id=customer.id, wa_id=customer.wa_id, name=customer.name, phone=customer.phone,
                                   user_id=customer.user_id or None),
        last_message=last, unread_count=c.unread_count, awaiting_reply=c.awaiting_reply,
        assignee=actor(c, "assignee"),
        window=m.Window(open=c.window.open, expires_at=when(c.window, "expires_at")),
        composing=colleagues.composing if colleagues else [], viewing=colleagues.viewing if colleagues else [],
        updated_at=when(c, "updated_at"), created_at=when(c, "created_at"),
        version=c.version, status=CONVERSATION_STATUS.get(c.status, "open"),  # type: ignore[arg-type]
        unseen_mentions=c.unseen_mentions,
        snoozed_until=when(c, "snoozed_until") if c.status == conversations_pb2.CONVERSATION_STATUS_SNOOZED else None,
        last_seq=c.last_seq,
    )


def media(x: common_pb2.Media) -> m.Media:
    return m.Media(id=x.id, mime_type=x.mime_type or None, filename=x.filename or None, caption=x.caption or None,
                   size=x.size, status=x.status or ("stored" if x.id else "pending"))


def message(x: conversations_pb2.Message) -> m.MessageItem:
    return m.MessageItem(
        id=x.id, conversation_id=x.conversation_id, wamid=x.wamid or None,
        direction=_direction(DIRECTION.get(x.direction, "in")), type=x.type, text=x.text or None,
        media=media(x.media) if x.HasField("media") else None,
        template=m.TemplateUse(name=x.template.name, language=x.template.language,
                               params=struct_dict(x.template.params)) if x.HasField("template") else None,
        location=maybe_struct(x, "location"), contacts=[struct_dict(c) for c in x.contacts],
        interactive=maybe_struct(x, "interactive"),
        reaction=m.ReactionContent(message_id=x.reaction.message_id, emoji=x.reaction.emoji)
        if x.HasField("reaction") else None,
        reply_to=x.reply_to or None,
        reactions=[m.MessageReaction(emoji=r.emoji, by=actor(r, "by"), direction=DIRECTION.get(r.direction),  # type: ignore[arg-type]
                                     at=when(r, "at")) for r in x.reactions],
        status=STATUS.get(x.status),  # type: ignore[arg-type]
        error=m.MessageError(code=x.error.code or None, title=x.error.title, detail=x.error.detail)
        if x.HasField("error") else None,
        sent_by=actor(x, "sent_by"), at=when(x, "at"), origin=x.origin or "live", edited=x.edited, revoked=x.revoked,
        seq=x.seq,
    )


def note(x: conversations_pb2.Note) -> m.NoteItem:
    return m.NoteItem(id=x.id, conversation_id=x.conversation_id, text=x.text, author=actor(x, "author"),
                      at=when(x, "at"), seq=x.seq, mentions=[m.ActorRef(id=a.id, name=a.name) for a in x.mentions])


def activity(x: conversations_pb2.Activity) -> m.ActivityItem:
    return m.ActivityItem(id=x.id, conversation_id=x.conversation_id, action=x.action, actor=actor(x, "actor"),
                          details=maybe_struct(x, "details") or {}, at=when(x, "at"), seq=x.seq)


def timeline_item(x: conversations_pb2.TimelineItem) -> m.TimelineItem | None:
    kind = x.WhichOneof("item")
    if kind == "message":
        return message(x.message)
    if kind == "note":
        return note(x.note)
    if kind == "activity":
        return activity(x.activity)
    return None  # a kind this gateway does not know yet


def template(x: content_pb2.Template) -> m.Template:
    return m.Template(number_id=x.number_id, name=x.name, language=x.language, category=x.category,
                      status=x.status, components=[struct_dict(c) for c in x.components])


def canned_reply(x: content_pb2.CannedReply) -> m.CannedReply:
    return m.CannedReply(id=x.id, workspace_id=x.workspace_id, shortcut=x.shortcut, title=x.title, text=x.text)


def library_item(x: content_pb2.LibraryItem) -> m.LibraryItem:
    return m.LibraryItem(
        id=x.id, workspace_id=x.workspace_id, title=x.title,
        type=LIBRARY_TYPE.get(x.type, "text"),  # type: ignore[arg-type]
        text=x.text or None, media=media(x.media) if x.HasField("media") else None,
        created_by=actor(x, "created_by"), created_at=when(x, "created_at"))


# --- customers and orders (gRPC) -------------------------------------------------------------------------


def customer(x: customers_pb2.Customer) -> m.Customer:
    return m.Customer(
        id=x.id, workspace_id=x.workspace_id, wa_id=x.wa_id, user_id=x.user_id or None,
        name=x.name or x.profile_name,  # the customers service shows the WhatsApp name until an agent sets one
        profile_name=x.profile_name or None, phone=x.phone, tags=list(x.tags),
        attributes=maybe_struct(x, "attributes") or {}, first_seen_at=when(x, "first_seen_at"),
        last_seen_at=when(x, "last_seen_at"), updated_at=when(x, "updated_at"))


def stats(x: customers_pb2.CustomerStats, currency: str) -> m.CustomerStats:
    return m.CustomerStats(orders=x.orders, delivered=x.delivered, returned=x.returned, cancelled=x.cancelled,
                           revenue=m.Money(amount=x.revenue.amount or "0",
                                           currency=x.revenue.currency or currency))


def order(x: orders_pb2.Order) -> m.Order:
    shipping = None
    if x.HasField("shipping"):
        s = x.shipping
        shipping = m.Shipping(name=s.name, phone=s.phone, line1=s.line1, line2=s.line2, city=s.city,
                              region=s.region, postal_code=s.postal_code, country=s.country,
                              instructions=s.instructions)
    return m.Order(
        id=x.id, number=x.number, workspace_id=x.workspace_id, customer_id=x.customer_id,
        conversation_id=x.conversation_id or None,
        items=[m.OrderItem(sku=i.sku, name=i.name, quantity=i.quantity, unit_price=i.unit_price,
                           line_total=i.line_total) for i in x.items],
        total=m.Money(amount=x.total.amount, currency=x.total.currency), shipping=shipping,
        stage=STAGE_NAME.get(x.stage, "new"),  # type: ignore[arg-type]
        stage_history=[m.StageChange(stage=STAGE_NAME.get(h.stage, "new"), by=actor(h, "by"),  # type: ignore[arg-type]
                                     at=when(h, "at")) for h in x.stage_history],
        note=x.note or None, created_by=actor(x, "created_by"), created_at=when(x, "created_at"),
        updated_at=when(x, "updated_at"))


def connected_number(x: ingest_pb2.Channel) -> m.ConnectedNumber:
    return m.ConnectedNumber(id=x.phone_number_id, workspace_id=x.workspace_id,
                             display_phone_number=x.display_phone_number, name=x.name, waba_id=x.waba_id,
                             has_access_token=x.has_access_token)


# --- events (inbox.*.v1): as the service's gRPC message, then through the converters above ---------------
#
# An event carries the view its service also serves over gRPC (each service builds its messages from the same
# views), so the stream converts an event's view into that message and the message through the one converter
# of its entity: a stream frame reads exactly like the GET answer, and every rule (an actor without an id is
# none, an unknown status or stage, empty strings as null) lives once, above.

ProtoT = TypeVar("ProtoT", bound=ProtoMessage)
Source = BaseModel | Mapping[str, Any]


def as_proto(view: Source, message_type: type[ProtoT], **replaced: Any) -> ProtoT:
    """The view as ``message_type``, field by field by name (a view names its fields like its message);
    ``replaced`` gives the values of the fields whose shapes the two do not share.

    A message's field the view lacks, or has as None, stays unset; a view's field the message lacks is left
    out. Enums take the view's names (``"in"`` -> ``DIRECTION_IN``; an unknown name -> ``*_UNSPECIFIED``)."""
    message = message_type()
    _fill(message, view, replaced)
    return message


def order_as_proto(x: oev.OrderSnapshot) -> orders_pb2.Order:
    # An item's prices are Money in the event and the amount in the message (the currency is the order's);
    # the shipping address is a free dict in the event.
    items = [{"sku": i.sku, "name": i.name, "quantity": i.quantity, "unit_price": i.unit_price.amount,
              "line_total": i.line_total.amount if i.line_total is not None else ""} for i in x.items]
    shipping = {k: str(v) for k, v in x.shipping.items()} or None
    return as_proto(x, orders_pb2.Order, items=items, shipping=shipping)


def stats_as_proto(x: kev.CustomerStats) -> customers_pb2.CustomerStats:
    # The event flattens the revenue (revenue_amount, revenue_currency); the message has it as Money.
    return as_proto(x, customers_pb2.CustomerStats,
                    revenue={"amount": x.revenue_amount, "currency": x.revenue_currency})


def _fill(message: ProtoMessage, source: Source, replaced: Mapping[str, Any] | None = None) -> None:
    for field in message.DESCRIPTOR.fields:
        value = replaced[field.name] if replaced and field.name in replaced else _field_value(source, field.name)
        if value is None:
            continue
        if field.is_repeated:
            target = getattr(message, field.name)
            for item in value:
                if field.message_type is None:
                    target.append(_scalar(field.enum_type, item))
                else:
                    _set_message(target.add(), item)
        elif field.message_type is not None:
            _set_message(getattr(message, field.name), value)
        else:
            setattr(message, field.name, _scalar(field.enum_type, value))


def _field_value(source: Source, name: str) -> Any:
    if isinstance(source, BaseModel):  # declared fields only: an unknown field kept from the wire is left out
        return getattr(source, name) if name in type(source).model_fields else None
    return source.get(name)


def _set_message(message: ProtoMessage, value: Any) -> None:
    message.SetInParent()  # present even when empty, as the service sets it (an empty location is a location)
    if isinstance(message, Timestamp):
        message.FromDatetime(value)
    elif isinstance(message, Struct):
        message.update(json.loads(json.dumps(value, default=str)))  # JSON-safe, as the services do
    else:
        _fill(message, value)


def _scalar(enum: Any, value: Any) -> Any:  # an EnumDescriptor (python's or upb's), None for a non-enum
    if enum is None:
        return value
    # The protos' enums are NAME_UNSPECIFIED = 0, NAME_IN, ... for the views' "in", ...
    prefix = enum.values_by_number[0].name.removesuffix("UNSPECIFIED")
    known = enum.values_by_name.get(prefix + str(value).upper())
    return known.number if known is not None else 0
