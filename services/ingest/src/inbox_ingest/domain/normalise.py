"""Meta webhook bodies into typed ``whatsapp.events.v1`` events. Pure: no I/O, no clock but a fallback.

Rules (see docs/architecture.md and docs/meta-cloud-api.md):

- Every entry, every change, every message, status and error of a body is normalised (Meta batches).
- ``field`` decides what a message is: ``messages`` is live inbound, ``history`` a backfill (never new
  inbound), ``smb_message_echoes`` a message the business sent from the WhatsApp Business app (outbound).
- The customer is ``wa_id`` (from ``from`` / ``to`` / the contact), else the business-scoped ``user_id``;
  contacts are matched to messages by ``wa_id`` or ``user_id``, never by position alone.
- Event ids are deterministic, so a redelivered webhook gives the same ids (consumers dedupe on them):
  uuid5 of ``message:{wamid}``, ``edit:{wamid}``, ``revoke:{wamid}``, ``status:{wamid}:{status}``
  (``placeholder:{wamid}`` for a history ``media_placeholder``, whose media comes later), and
  for everything else a SHA-256 of the canonical JSON of what it came from (entry id and time, field,
  value or item, position).
- Liberal in what it accepts: unknown types and fields are kept (``raw``/``value``); an item that cannot
  be read (no id, bad timestamp, wrong shape) becomes a ``whatsapp.change.unhandled`` event with a
  reason, and the rest of the body still goes through. Only a body that is not a WhatsApp Business
  webhook at all raises :class:`NotAWebhook`.
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inbox_core.events import Event, EventData, utcnow
from inbox_core.events.whatsapp import (
    MEDIA_TYPES,
    Button,
    ChangeUnhandled,
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
    MetaError,
    Order,
    OrderItem,
    Origin,
    PhoneNumberQualityChanged,
    Reaction,
    Referral,
    StatusUpdated,
    System,
    TemplateCategoryChanged,
    TemplateQualityChanged,
    TemplateStatusChanged,
    WebhookError,
    parse_meta_timestamp,
)

WEBHOOK_OBJECT = "whatsapp_business_account"

# Fixed forever: changing it changes every event id, and consumers would take redeliveries for new facts.
ID_NAMESPACE = uuid.UUID("6f0b6c43-2a4e-5a51-9d0c-2f6a1f3c9e71")

# Keys of a messages-shaped value that are read here; any other key makes an extra unhandled event.
_VALUE_KEYS = frozenset(
    {"messaging_product", "metadata", "contacts", "messages", "message_echoes", "statuses", "errors", "history"}
)
_ORIGIN_BY_FIELD: dict[str, Origin] = {"messages": "live", "history": "history", "smb_message_echoes": "echo"}


class NotAWebhook(ValueError):
    """The body is not a WhatsApp Business webhook at all (the HTTP layer answers 400)."""


@dataclass(frozen=True)
class NormalisedEvent:
    """One event to publish on ``whatsapp.events.v1`` with its Kafka ``key``."""

    key: str
    event: Event


# --- entry points ---------------------------------------------------------------------------------------


def parse_body(raw: bytes | str) -> dict[str, Any]:
    """The JSON object of a webhook body; :class:`NotAWebhook` when it is not JSON or not an object."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise NotAWebhook(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise NotAWebhook("body is not a JSON object")
    return body


def normalise_raw(raw: bytes | str) -> list[NormalisedEvent]:
    """:func:`normalise` of the raw bytes of a webhook body."""
    return normalise(parse_body(raw))


def normalise(body: object) -> list[NormalisedEvent]:
    """Every event in a webhook body, in the body's order. Raises only :class:`NotAWebhook`."""
    if not isinstance(body, dict):
        raise NotAWebhook("body is not a JSON object")
    if body.get("object") != WEBHOOK_OBJECT:
        raise NotAWebhook(f"object is {body.get('object')!r}, not {WEBHOOK_OBJECT!r}")
    entries = body.get("entry")
    if not isinstance(entries, list):
        raise NotAWebhook("body has no entry list")
    out: list[NormalisedEvent] = []
    for index, entry in enumerate(entries):
        try:
            out.extend(_entry(entry, index))
        except Exception as exc:  # the last safety net: keep the entry, never fail the body
            where = _Where(waba_id=_waba_of(entry), entry_time=None, entry_time_raw=None, field="")
            out.append(_unhandled(where, f"entry could not be normalised: {_describe(exc)}", entry, ("entry", index)))
    return out


# --- where an item came from ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Where:
    waba_id: str
    entry_time: datetime | None
    entry_time_raw: Any
    field: str
    phone_number_id: str | None = None
    display_phone_number: str | None = None

    def common(self) -> dict[str, Any]:
        return {
            "waba_id": self.waba_id,
            "phone_number_id": self.phone_number_id,
            "display_phone_number": self.display_phone_number,
            "field": self.field,
        }

    def fingerprint(self) -> list[Any]:
        return [self.waba_id, self.entry_time_raw, self.field, self.phone_number_id]


@dataclass
class _Contacts:
    by_wa_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    by_user_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    only: dict[str, Any] | None = None

    @classmethod
    def of(cls, contacts: Any) -> _Contacts:
        found = cls()
        items = [c for c in contacts if isinstance(c, dict)] if isinstance(contacts, list) else []
        for contact in items:
            wa_id, user_id = _s(contact.get("wa_id")), _s(contact.get("user_id"))
            if wa_id:
                found.by_wa_id.setdefault(wa_id, contact)
            if user_id:
                found.by_user_id.setdefault(user_id, contact)
        if len(items) == 1:
            found.only = items[0]
        return found

    def find(self, wa_id: str | None, user_id: str | None) -> dict[str, Any] | None:
        if wa_id and wa_id in self.by_wa_id:
            return self.by_wa_id[wa_id]
        if user_id and user_id in self.by_user_id:
            return self.by_user_id[user_id]
        if not wa_id and not user_id:
            return self.only  # nothing to match on: a lone contact can only be this one
        return None


# --- entries and changes ------------------------------------------------------------------------------


def _entry(entry: Any, index: int) -> list[NormalisedEvent]:
    if not isinstance(entry, dict):
        where = _Where(waba_id="", entry_time=None, entry_time_raw=None, field="")
        return [_unhandled(where, "entry is not an object", entry, ("entry", index))]
    time_raw = entry.get("time")
    where = _Where(
        waba_id=_waba_of(entry), entry_time=_ts_or_none(time_raw), entry_time_raw=time_raw, field=""
    )
    changes = entry.get("changes")
    if not isinstance(changes, list):
        return [_unhandled(where, "entry has no changes list", entry, ("entry", index))]
    out: list[NormalisedEvent] = []
    for change_index, change in enumerate(changes):
        try:
            out.extend(_change(where, change, change_index))
        except Exception as exc:  # keep the change, go on with the others
            reason = f"change could not be normalised: {_describe(exc)}"
            out.append(_unhandled(where, reason, change, ("change", change_index)))
    return out


def _change(entry_where: _Where, change: Any, index: int) -> list[NormalisedEvent]:
    if not isinstance(change, dict):
        return [_unhandled(entry_where, "change is not an object", change, ("change", index))]
    field_name = _s(change.get("field")) or ""
    value = change.get("value")
    metadata = value.get("metadata") if isinstance(value, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    display = _s(metadata.get("display_phone_number"))
    if display is None and isinstance(value, dict):
        display = _s(value.get("display_phone_number"))
    where = _Where(
        waba_id=entry_where.waba_id,
        entry_time=entry_where.entry_time,
        entry_time_raw=entry_where.entry_time_raw,
        field=field_name,
        phone_number_id=_s(metadata.get("phone_number_id")),
        display_phone_number=display,
    )
    if not isinstance(value, dict):
        return [_unhandled(where, "change value is not an object", change, ("change", index))]

    if field_name in _ORIGIN_BY_FIELD:
        return _messages_value(where, value, _ORIGIN_BY_FIELD[field_name])
    if field_name == "message_template_status_update":
        if "event" in value:
            return [_template_status(where, value)]
        if "new_quality_score" in value or "previous_quality_score" in value:
            # Meta's own example of a quality update carries this field name.
            return [_template_quality(where, value)]
    elif field_name == "message_template_quality_update":
        return [_template_quality(where, value)]
    elif field_name == "template_category_update":
        return [_template_category(where, value)]
    elif field_name == "phone_number_quality_update":
        return [_phone_quality(where, value)]
    return [_unhandled(where, f"field {field_name!r} is not modelled", value, ("change", index))]


def _messages_value(where: _Where, value: dict[str, Any], origin: Origin) -> list[NormalisedEvent]:
    """A value of field messages, history or smb_message_echoes: messages, statuses and errors."""
    contacts = _Contacts.of(value.get("contacts"))
    out: list[NormalisedEvent] = []
    for key in ("messages", "message_echoes"):
        if key in value:
            for i, msg in _items(where, value[key], key, out):
                out.append(_safe(where, msg, (key, i), _message, i, origin, contacts))
    if "statuses" in value:
        for i, st in _items(where, value["statuses"], "statuses", out):
            out.append(_safe(where, st, ("statuses", i), _status, i, contacts))
    if "errors" in value:
        for i, err in _items(where, value["errors"], "errors", out):
            out.append(_safe(where, err, ("errors", i), _webhook_error, ("errors", i)))
    if "history" in value:
        for i, chunk in _items(where, value["history"], "history", out):
            out.extend(_history_chunk(where, chunk, i, contacts))
    extra = sorted(str(k) for k in value if k not in _VALUE_KEYS)
    if extra:
        out.append(_unhandled(where, f"value keys not modelled: {', '.join(extra)}", value, ("value", "extra")))
    if not out:
        out.append(_unhandled(where, "change carries no messages, statuses or errors", value, ("value",)))
    return out


def _history_chunk(where: _Where, chunk: Any, index: int, contacts: _Contacts) -> list[NormalisedEvent]:
    if not isinstance(chunk, dict):
        return [_unhandled(where, "history item is not an object", chunk, ("history", index))]
    meta = chunk.get("metadata")
    meta = meta if isinstance(meta, dict) else None
    out: list[NormalisedEvent] = []
    if "threads" in chunk:
        threads = _items(where, chunk["threads"], f"history[{index}].threads", out)
        for t, thread in threads:
            path = ("history", index, "threads", t)
            if not isinstance(thread, dict):
                out.append(_unhandled(where, "history thread is not an object", thread, path))
                continue
            thread_id = _s(thread.get("id"))
            msgs = _items(where, thread.get("messages"), f"history[{index}].threads[{t}].messages", out)
            for m, msg in msgs:
                out.append(_safe(where, msg, (*path, m), _message, m, "history", contacts, thread_id, meta))
    if "errors" in chunk:
        for i, err in _items(where, chunk["errors"], f"history[{index}].errors", out):
            path = ("history", index, "errors", i)
            out.append(_safe(where, err, path, _webhook_error, path))
    if not out:
        out.append(_unhandled(where, "history item carries no threads or errors", chunk, ("history", index)))
    return out


def _items(where: _Where, items: Any, name: str, out: list[NormalisedEvent]) -> Iterable[tuple[int, Any]]:
    """The items of a list; anything else is recorded in ``out`` as unhandled and yields nothing."""
    if isinstance(items, list):
        return list(enumerate(items))
    out.append(_unhandled(where, f"{name} is not a list", items, ("list", name)))
    return []


def _safe(
    where: _Where,
    item: Any,
    path: tuple[Any, ...],
    build: Callable[..., NormalisedEvent],
    *args: Any,
) -> NormalisedEvent:
    """``build(where, item, *args)``; if it fails, the item is kept as unhandled with the reason."""
    try:
        return build(where, item, *args)
    except Exception as exc:  # one bad item never costs the rest of the batch
        return _unhandled(where, f"{path[0]} item could not be normalised: {_describe(exc)}", item, path)


# --- messages -----------------------------------------------------------------------------------------


def _message(
    where: _Where,
    msg: Any,
    index: int,
    origin: Origin,
    contacts: _Contacts,
    thread_id: str | None = None,
    history_meta: dict[str, Any] | None = None,
) -> NormalisedEvent:
    path = ("message", origin, thread_id, index)
    if not isinstance(msg, dict):
        return _unhandled(where, "message is not an object", msg, path)
    sender = _s(msg.get("from")) or ""
    sender_user_id = _s(msg.get("from_user_id"))
    recipient = _s(msg.get("to"))
    recipient_user_id = _s(msg.get("to_user_id"))
    wamid = _s(msg.get("id"))
    if not wamid:
        return _unhandled(where, "message without id", msg, path, wa_id=sender, user_id=sender_user_id)
    try:
        timestamp = parse_meta_timestamp(msg.get("timestamp"))
    except ValueError:
        reason = "message timestamp missing or invalid"
        return _unhandled(where, reason, msg, path, wa_id=sender, user_id=sender_user_id)

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
    wa_id = customer or _s(contact.get("wa_id")) or ""
    user_id = customer_user or _s(contact.get("user_id"))
    group_id = _s(msg.get("group_id"))
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
        "profile_name": _s(profile.get("name")),
        "username": _s(profile.get("username")),
        "group_id": group_id,
        "timestamp": timestamp,
        "history_status": _s(history_context.get("status")) if isinstance(history_context, dict) else None,
        "history": history_meta,
        "raw": msg,
    }
    key = _key(where, group_id or wa_id or user_id or "")
    kind = _s(msg.get("type")) or "unknown"
    edit, revoke = msg.get("edit"), msg.get("revoke")
    payload: EventData
    if kind == "edit" and isinstance(edit, dict):
        new = edit.get("message")
        payload = MessageEdited(
            **common,
            original_message_id=_s(edit.get("original_message_id")),
            message=MessageContent(**_content(new)) if isinstance(new, dict) else None,
            context=_context(msg.get("context")),
            errors=_errors(msg.get("errors")),
        )
        name = f"edit:{wamid}"
    elif kind == "revoke" and isinstance(revoke, dict):
        payload = MessageRevoked(
            **common,
            original_message_id=_s(revoke.get("original_message_id")),
            errors=_errors(msg.get("errors")),
        )
        name = f"revoke:{wamid}"
    else:
        payload = MessageReceived(**common, **_content(msg))
        # A history backfill sends a media message first as a placeholder, later with its media under the
        # same wamid: the two must not dedupe into one.
        name = f"placeholder:{wamid}" if kind == "media_placeholder" else f"message:{wamid}"
    return _emit(payload, _uuid(name), key, timestamp)


def _direction(origin: Origin, sender: str, display: str | None, thread_id: str | None) -> Direction:
    if origin == "echo":
        return "out"
    if origin == "live":
        return "in"
    business = _digits(display)
    if sender and business and _digits(sender) == business:
        return "out"
    if sender and thread_id and not business and sender != thread_id:
        return "out"
    return "in"


def _thread_customer(thread_id: str) -> tuple[str, str | None]:
    """A history thread is named by the customer's wa_id, or by a BSUID for username users."""
    return ("", thread_id) if thread_id.startswith("user.") else (thread_id, None)


def _content(msg: dict[str, Any]) -> dict[str, Any]:
    """The content fields of a message (or of the new version of an edited one)."""
    kind = _s(msg.get("type")) or "unknown"
    text = msg.get("text")
    content: dict[str, Any] = {
        "type": kind,
        "text": _s(text.get("body")) if isinstance(text, dict) else _s(text),
        "context": _context(msg.get("context")),
        "errors": _errors(msg.get("errors")),
    }
    media = msg.get(kind) if kind in MEDIA_TYPES else None
    if isinstance(media, dict):
        content["media"] = Media(
            media_id=_s(media.get("id")),
            mime_type=_s(media.get("mime_type")),
            sha256=_s(media.get("sha256")),
            filename=_s(media.get("filename")),
            caption=_s(media.get("caption")),
            voice=_bool_or_none(media.get("voice")),
            animated=_bool_or_none(media.get("animated")),
            url=_s(media.get("url")),
        )
        content["caption"] = _s(media.get("caption"))
    location = msg.get("location")
    if isinstance(location, dict):
        content["location"] = Location(
            latitude=_f(location.get("latitude")),
            longitude=_f(location.get("longitude")),
            name=_s(location.get("name")),
            address=_s(location.get("address")),
            url=_s(location.get("url")),
        )
    shared = msg.get("contacts")
    if isinstance(shared, list):
        content["contacts"] = [c for c in shared if isinstance(c, dict)]
    interactive = msg.get("interactive")
    if isinstance(interactive, dict):
        content["interactive"] = _interactive(interactive)
    button = msg.get("button")
    if isinstance(button, dict):
        content["button"] = Button(payload=_s(button.get("payload")), text=_s(button.get("text")))
    reaction = msg.get("reaction")
    if isinstance(reaction, dict):
        emoji = _s(reaction.get("emoji")) or ""
        content["reaction"] = Reaction(message_id=_s(reaction.get("message_id")), emoji=emoji, removed=not emoji)
    order = msg.get("order")
    if isinstance(order, dict):
        items = order.get("product_items")
        content["order"] = Order(
            catalog_id=_s(order.get("catalog_id")),
            text=_s(order.get("text")),
            product_items=[
                OrderItem(
                    product_retailer_id=_s(item.get("product_retailer_id")),
                    quantity=_f(item.get("quantity")),
                    item_price=_f(item.get("item_price")),
                    currency=_s(item.get("currency")),
                )
                for item in (items if isinstance(items, list) else [])
                if isinstance(item, dict)
            ],
        )
    system = msg.get("system")
    if isinstance(system, dict):
        content["system"] = System(
            type=_s(system.get("type")),
            body=_s(system.get("body")),
            wa_id=_s(system.get("wa_id")) or _s(system.get("new_wa_id")),
            customer=_s(system.get("customer")),
            user_id=_s(system.get("user_id")),
        )
    referral = msg.get("referral")
    if isinstance(referral, dict):
        welcome = referral.get("welcome_message")
        content["referral"] = Referral(
            **{k: _s(referral.get(k)) for k in _REFERRAL_TEXT_FIELDS},
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
    kind = _s(interactive.get("type"))
    reply = interactive.get(kind) if kind else None
    reply = reply if isinstance(reply, dict) else {}
    flow: FlowReply | None = None
    if kind == "nfm_reply":
        response_json = _s(reply.get("response_json"))
        flow = FlowReply(
            name=_s(reply.get("name")),
            body=_s(reply.get("body")),
            response_json=response_json,
            response=_json_object(response_json),
        )
    return Interactive(
        type=kind,
        id=_s(reply.get("id")),
        title=_s(reply.get("title")),
        description=_s(reply.get("description")),
        flow=flow,
        raw=interactive,
    )


def _context(context: Any) -> Context | None:
    if not isinstance(context, dict):
        return None
    product = context.get("referred_product")
    return Context(
        message_id=_s(context.get("id")) or _s(context.get("message_id")),
        from_=_s(context.get("from")),
        forwarded=context.get("forwarded") is True,
        frequently_forwarded=context.get("frequently_forwarded") is True,
        referred_product=product if isinstance(product, dict) else None,
    )


def _errors(errors: Any) -> list[MetaError]:
    if not isinstance(errors, list):
        return []
    return [_error(e) for e in errors if isinstance(e, dict)]


def _error(error: dict[str, Any]) -> MetaError:
    data = error.get("error_data")
    data = data if isinstance(data, dict) else None
    return MetaError(
        code=_int(error.get("code")),
        title=_s(error.get("title")),
        message=_s(error.get("message")),
        details=_s(data.get("details")) if data else _s(error.get("details")),
        href=_s(error.get("href")),
        error_data=data,
    )


# --- statuses, errors, account-level changes ----------------------------------------------------------


def _status(where: _Where, st: Any, index: int, contacts: _Contacts) -> NormalisedEvent:
    path = ("status", index)
    if not isinstance(st, dict):
        return _unhandled(where, "status is not an object", st, path)
    wamid, status = _s(st.get("id")), _s(st.get("status"))
    recipient_id = _s(st.get("recipient_id")) or ""
    recipient_user_id = _s(st.get("recipient_user_id"))
    if not wamid or not status:
        reason = "status without id or status"
        return _unhandled(where, reason, st, path, wa_id=recipient_id, user_id=recipient_user_id)
    try:
        timestamp = parse_meta_timestamp(st.get("timestamp"))
    except ValueError:
        reason = "status timestamp missing or invalid"
        return _unhandled(where, reason, st, path, wa_id=recipient_id, user_id=recipient_user_id)
    recipient_type = _s(st.get("recipient_type"))
    group_id = recipient_id if recipient_type == "group" else None
    customer = "" if group_id else recipient_id
    contact = contacts.find(customer, recipient_user_id) or {}
    wa_id = customer or ("" if group_id else _s(contact.get("wa_id")) or "")
    user_id = recipient_user_id or _s(contact.get("user_id"))
    conversation, pricing = st.get("conversation"), st.get("pricing")
    payload = StatusUpdated(
        **where.common(),
        wamid=wamid,
        status=status,
        timestamp=timestamp,
        recipient_id=recipient_id,
        recipient_user_id=recipient_user_id,
        recipient_type=recipient_type,
        group_id=group_id,
        wa_id=wa_id,
        user_id=user_id,
        conversation=conversation if isinstance(conversation, dict) else None,
        pricing=pricing if isinstance(pricing, dict) else None,
        errors=_errors(st.get("errors")),
        biz_opaque_callback_data=_s(st.get("biz_opaque_callback_data")),
        raw=st,
    )
    return _emit(payload, _uuid(f"status:{wamid}:{status}"), _key(where, group_id or wa_id or user_id or ""), timestamp)


def _webhook_error(where: _Where, error: Any, path: tuple[Any, ...]) -> NormalisedEvent:
    if not isinstance(error, dict):
        return _unhandled(where, "error is not an object", error, path)
    payload = WebhookError(**where.common(), error=_error(error), entry_time=where.entry_time, raw=error)
    return _emit(payload, _hash_id("error", where, error, path), _key(where, ""), where.entry_time)


def _template_common(where: _Where, value: dict[str, Any]) -> dict[str, Any]:
    return {
        **where.common(),
        "entry_time": where.entry_time,
        "message_template_id": _s(value.get("message_template_id")),
        "message_template_name": _s(value.get("message_template_name")),
        "message_template_language": _s(value.get("message_template_language")),
        "value": value,
    }


def _template_status(where: _Where, value: dict[str, Any]) -> NormalisedEvent:
    event = _s(value.get("event"))
    if event is None:
        return _unhandled(where, "template status update without event", value, ("template_status",))
    rejection = value.get("rejection_info")
    payload = TemplateStatusChanged(
        **_template_common(where, value),
        event=event,
        reason=_s(value.get("reason")),
        message_template_category=_s(value.get("message_template_category")),
        rejection_info=rejection if isinstance(rejection, dict) else None,
    )
    return _emit(payload, _hash_id("template_status", where, value), _waba_key(where), where.entry_time)


def _template_quality(where: _Where, value: dict[str, Any]) -> NormalisedEvent:
    payload = TemplateQualityChanged(
        **_template_common(where, value),
        previous_quality_score=_s(value.get("previous_quality_score")),
        new_quality_score=_s(value.get("new_quality_score")),
    )
    return _emit(payload, _hash_id("template_quality", where, value), _waba_key(where), where.entry_time)


def _template_category(where: _Where, value: dict[str, Any]) -> NormalisedEvent:
    payload = TemplateCategoryChanged(
        **_template_common(where, value),
        previous_category=_s(value.get("previous_category")),
        new_category=_s(value.get("new_category")),
        correct_category=_s(value.get("correct_category")),
        category_update_timestamp=_ts_or_none(value.get("category_update_timestamp")),
    )
    return _emit(payload, _hash_id("template_category", where, value), _waba_key(where), where.entry_time)


def _phone_quality(where: _Where, value: dict[str, Any]) -> NormalisedEvent:
    payload = PhoneNumberQualityChanged(
        **where.common(),
        entry_time=where.entry_time,
        event=_s(value.get("event")),
        current_limit=_s(value.get("current_limit")),
        old_limit=_s(value.get("old_limit")),
        value=value,
    )
    return _emit(payload, _hash_id("phone_quality", where, value), _waba_key(where), where.entry_time)


def _unhandled(
    where: _Where,
    reason: str,
    value: Any,
    path: tuple[Any, ...],
    *,
    wa_id: str = "",
    user_id: str | None = None,
) -> NormalisedEvent:
    payload = ChangeUnhandled(
        **where.common(), reason=reason, entry_time=where.entry_time, wa_id=wa_id, user_id=user_id, value=value
    )
    customer = wa_id or user_id or ""
    key = _key(where, customer) if where.phone_number_id else _waba_key(where)
    return _emit(payload, _hash_id("unhandled", where, value, path), key, where.entry_time)


# --- ids, keys, envelope -------------------------------------------------------------------------------


def _emit(payload: EventData, event_id: str, key: str, occurred_at: datetime | None) -> NormalisedEvent:
    return NormalisedEvent(key=key, event=Event.of(payload, id=event_id, occurred_at=occurred_at or utcnow()))


def _uuid(name: str) -> str:
    return uuid.uuid5(ID_NAMESPACE, name).hex


def _hash_id(kind: str, where: _Where, value: Any, path: tuple[Any, ...] = ()) -> str:
    digest = hashlib.sha256(_canonical([where.fingerprint(), list(path), value]).encode()).hexdigest()
    return _uuid(f"{kind}:{digest}")


def _canonical(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        pass  # not JSON (only possible when called from Python): fall back to repr
    try:
        return repr(value)
    except (ValueError, RecursionError):  # e.g. an int beyond Python's 4300-digit str limit
        return f"<unrepresentable {type(value).__name__}>"


def _key(where: _Where, customer: str) -> str:
    """``{phone_number_id}:{wa_id or user_id}`` (docs/architecture.md); a group's messages are keyed by the group."""
    return f"{where.phone_number_id or ''}:{customer}"


def _waba_key(where: _Where) -> str:
    """Account-level events (templates, number quality) have no customer: keyed by the business account."""
    return f"waba:{where.waba_id}"


# --- lenient readers -------------------------------------------------------------------------------------


def _waba_of(entry: Any) -> str:
    return (_s(entry.get("id")) or "") if isinstance(entry, dict) else ""


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def _s(value: Any) -> str | None:
    """A string; ids Meta sends as numbers become strings; anything else is None (kept in raw)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            return None
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _f(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _digits(value: str | None) -> str:
    return "".join(ch for ch in value if ch.isdigit()) if value else ""


def _ts_or_none(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_meta_timestamp(value)
    except ValueError:
        return None


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None
