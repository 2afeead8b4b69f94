"""Messages of a webhook (live, history, echoes) into ``MessageReceived`` / ``MessageEdited`` /
``MessageRevoked`` events: the customer, the direction, the content of every type."""

from __future__ import annotations

from typing import Any

from inbox_core.events import EventData
from inbox_core.events.whatsapp import (
    MEDIA_TYPES,
    Button,
    Context,
    Direction,
    FlowReply,
    Interactive,
    Location,
    Media,
    MessageContent,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    Order,
    OrderItem,
    Origin,
    Reaction,
    Referral,
    System,
    parse_meta_timestamp,
)
from inbox_ingest.domain.envelope import NormalisedEvent, customer_key, emit, name_uuid, unhandled
from inbox_ingest.domain.readers import (
    bool_or_none,
    digits_only,
    float_or_none,
    json_object_or_none,
    meta_errors,
    str_or_none,
)
from inbox_ingest.domain.source import Contacts, Where


def message_event(
    where: Where,
    msg: Any,
    index: int,
    origin: Origin,
    contacts: Contacts,
    thread_id: str | None = None,
    history_meta: dict[str, Any] | None = None,
) -> NormalisedEvent:
    path = ("message", origin, thread_id, index)
    if not isinstance(msg, dict):
        return unhandled(where, "message is not an object", msg, path)
    sender = str_or_none(msg.get("from")) or ""
    sender_user_id = str_or_none(msg.get("from_user_id"))
    recipient = str_or_none(msg.get("to"))
    recipient_user_id = str_or_none(msg.get("to_user_id"))
    wamid = str_or_none(msg.get("id"))
    if not wamid:
        return unhandled(where, "message without id", msg, path, wa_id=sender, user_id=sender_user_id)
    try:
        timestamp = parse_meta_timestamp(msg.get("timestamp"))
    except ValueError:
        reason = "message timestamp missing or invalid"
        return unhandled(where, reason, msg, path, wa_id=sender, user_id=sender_user_id)

    direction = _direction(origin, sender, where.display_phone_number, thread_id)
    if direction == "in":
        customer, customer_user = sender, sender_user_id
        if not customer and not customer_user and thread_id:
            customer, customer_user = _thread_customer(thread_id)
    else:
        customer, customer_user = recipient or "", recipient_user_id
        if not customer and not customer_user and thread_id:
            customer, customer_user = _thread_customer(thread_id)
    contact = contacts.find(customer, customer_user) or {}
    profile = contact.get("profile")
    profile = profile if isinstance(profile, dict) else {}
    wa_id = customer or str_or_none(contact.get("wa_id")) or ""
    user_id = customer_user or str_or_none(contact.get("user_id"))
    group_id = str_or_none(msg.get("group_id"))
    history_context = msg.get("history_context")

    common: dict[str, Any] = {
        **where.common(),
        "origin": origin,
        "direction": direction,
        "wamid": wamid,
        "wa_id": wa_id,
        "user_id": user_id,
        "from_user_id": sender_user_id,
        "from_": sender or None,
        "to": recipient,
        "profile_name": str_or_none(profile.get("name")),
        "username": str_or_none(profile.get("username")),
        "group_id": group_id,
        "timestamp": timestamp,
        "history_status": str_or_none(history_context.get("status")) if isinstance(history_context, dict) else None,
        "history": history_meta,
        "raw": msg,
    }
    key = customer_key(where, group_id or wa_id or user_id or "")
    kind = str_or_none(msg.get("type")) or "unknown"
    edit, revoke = msg.get("edit"), msg.get("revoke")
    payload: EventData
    if kind == "edit" and isinstance(edit, dict):
        new = edit.get("message")
        payload = MessageEdited(
            **common,
            original_message_id=str_or_none(edit.get("original_message_id")),
            message=MessageContent(**_content(new)) if isinstance(new, dict) else None,
            context=_context(msg.get("context")),
            errors=meta_errors(msg.get("errors")),
        )
        name = f"edit:{wamid}"
    elif kind == "revoke" and isinstance(revoke, dict):
        payload = MessageRevoked(
            **common,
            original_message_id=str_or_none(revoke.get("original_message_id")),
            errors=meta_errors(msg.get("errors")),
        )
        name = f"revoke:{wamid}"
    else:
        payload = MessageReceived(**common, **_content(msg))
        # A history backfill sends a media message first as a placeholder, later with its media under the
        # same wamid: the two must not dedupe into one.
        name = f"placeholder:{wamid}" if kind == "media_placeholder" else f"message:{wamid}"
    return emit(payload, name_uuid(name), key, timestamp)


def _direction(origin: Origin, sender: str, display: str | None, thread_id: str | None) -> Direction:
    if origin == "echo":
        return "out"
    if origin == "live":
        return "in"
    business = digits_only(display)
    if sender and business and digits_only(sender) == business:
        return "out"
    if sender and thread_id and not business and sender != thread_id:
        return "out"
    return "in"


def _thread_customer(thread_id: str) -> tuple[str, str | None]:
    """A history thread is named by the customer's wa_id, or by a BSUID for username users."""
    return ("", thread_id) if thread_id.startswith("user.") else (thread_id, None)


def _content(msg: dict[str, Any]) -> dict[str, Any]:
    """The content fields of a message (or of the new version of an edited one)."""
    kind = str_or_none(msg.get("type")) or "unknown"
    text = msg.get("text")
    content: dict[str, Any] = {
        "type": kind,
        "text": str_or_none(text.get("body")) if isinstance(text, dict) else str_or_none(text),
        "context": _context(msg.get("context")),
        "errors": meta_errors(msg.get("errors")),
    }
    media = msg.get(kind) if kind in MEDIA_TYPES else None
    if isinstance(media, dict):
        content["media"] = Media(
            media_id=str_or_none(media.get("id")),
            mime_type=str_or_none(media.get("mime_type")),
            sha256=str_or_none(media.get("sha256")),
            filename=str_or_none(media.get("filename")),
            caption=str_or_none(media.get("caption")),
            voice=bool_or_none(media.get("voice")),
            animated=bool_or_none(media.get("animated")),
            url=str_or_none(media.get("url")),
        )
        content["caption"] = str_or_none(media.get("caption"))
    location = msg.get("location")
    if isinstance(location, dict):
        content["location"] = Location(
            latitude=float_or_none(location.get("latitude")),
            longitude=float_or_none(location.get("longitude")),
            name=str_or_none(location.get("name")),
            address=str_or_none(location.get("address")),
            url=str_or_none(location.get("url")),
        )
    shared = msg.get("contacts")
    if isinstance(shared, list):
        content["contacts"] = [c for c in shared if isinstance(c, dict)]
    interactive = msg.get("interactive")
    if isinstance(interactive, dict):
        content["interactive"] = _interactive(interactive)
    button = msg.get("button")
    if isinstance(button, dict):
        content["button"] = Button(payload=str_or_none(button.get("payload")), text=str_or_none(button.get("text")))
    reaction = msg.get("reaction")
    if isinstance(reaction, dict):
        emoji = str_or_none(reaction.get("emoji")) or ""
        target = str_or_none(reaction.get("message_id"))
        content["reaction"] = Reaction(message_id=target, emoji=emoji, removed=not emoji)
    order = msg.get("order")
    if isinstance(order, dict):
        items = order.get("product_items")
        content["order"] = Order(
            catalog_id=str_or_none(order.get("catalog_id")),
            text=str_or_none(order.get("text")),
            product_items=[
                OrderItem(
                    product_retailer_id=str_or_none(item.get("product_retailer_id")),
                    quantity=float_or_none(item.get("quantity")),
                    item_price=float_or_none(item.get("item_price")),
                    currency=str_or_none(item.get("currency")),
                )
                for item in (items if isinstance(items, list) else [])
                if isinstance(item, dict)
            ],
        )
    system = msg.get("system")
    if isinstance(system, dict):
        content["system"] = System(
            type=str_or_none(system.get("type")),
            body=str_or_none(system.get("body")),
            wa_id=str_or_none(system.get("wa_id")) or str_or_none(system.get("new_wa_id")),
            customer=str_or_none(system.get("customer")),
            user_id=str_or_none(system.get("user_id")),
        )
    referral = msg.get("referral")
    if isinstance(referral, dict):
        welcome = referral.get("welcome_message")
        content["referral"] = Referral(
            **{k: str_or_none(referral.get(k)) for k in _REFERRAL_TEXT_FIELDS},
            welcome_message=welcome if isinstance(welcome, dict) else None,
        )
    unsupported = msg.get("unsupported")
    if isinstance(unsupported, dict):
        content["unsupported"] = unsupported
    return content


_REFERRAL_TEXT_FIELDS = (
    "source_url", "source_id", "source_type", "body", "headline", "media_type",
    "image_url", "video_url", "thumbnail_url", "ctwa_clid",
)


def _interactive(interactive: dict[str, Any]) -> Interactive:
    kind = str_or_none(interactive.get("type"))
    reply = interactive.get(kind) if kind else None
    reply = reply if isinstance(reply, dict) else {}
    flow: FlowReply | None = None
    if kind == "nfm_reply":
        response_json = str_or_none(reply.get("response_json"))
        flow = FlowReply(
            name=str_or_none(reply.get("name")),
            body=str_or_none(reply.get("body")),
            response_json=response_json,
            response=json_object_or_none(response_json),
        )
    return Interactive(
        type=kind,
        id=str_or_none(reply.get("id")),
        title=str_or_none(reply.get("title")),
        description=str_or_none(reply.get("description")),
        flow=flow,
        raw=interactive,
    )


def _context(context: Any) -> Context | None:
    if not isinstance(context, dict):
        return None
    product = context.get("referred_product")
    return Context(
        message_id=str_or_none(context.get("id")) or str_or_none(context.get("message_id")),
        from_=str_or_none(context.get("from")),
        forwarded=context.get("forwarded") is True,
        frequently_forwarded=context.get("frequently_forwarded") is True,
        referred_product=product if isinstance(product, dict) else None,
    )
