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

import json
from collections.abc import Callable, Iterable
from typing import Any

from inbox_core.events.whatsapp import Origin
from inbox_ingest.domain.account_changes import (
    phone_quality_event,
    template_category_event,
    template_quality_event,
    template_status_event,
)
from inbox_ingest.domain.envelope import NormalisedEvent, unhandled
from inbox_ingest.domain.messages import message_event
from inbox_ingest.domain.readers import describe, str_or_none, ts_or_none, waba_of
from inbox_ingest.domain.source import Contacts, Where
from inbox_ingest.domain.statuses import status_event, webhook_error_event

__all__ = ["WEBHOOK_OBJECT", "NormalisedEvent", "NotAWebhook", "normalise", "normalise_raw", "parse_body"]

WEBHOOK_OBJECT = "whatsapp_business_account"

# Keys of a messages-shaped value that are read here; any other key makes an extra unhandled event.
_VALUE_KEYS = frozenset(
    {"messaging_product", "metadata", "contacts", "messages", "message_echoes", "statuses", "errors", "history"}
)
_ORIGIN_BY_FIELD: dict[str, Origin] = {"messages": "live", "history": "history", "smb_message_echoes": "echo"}


class NotAWebhook(ValueError):
    """The body is not a WhatsApp Business webhook at all (the HTTP layer answers 400)."""


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
            where = Where(waba_id=waba_of(entry), entry_time=None, entry_time_raw=None, field="")
            out.append(unhandled(where, f"entry could not be normalised: {describe(exc)}", entry, ("entry", index)))
    return out


# --- entries and changes ------------------------------------------------------------------------------


def _entry(entry: Any, index: int) -> list[NormalisedEvent]:
    if not isinstance(entry, dict):
        where = Where(waba_id="", entry_time=None, entry_time_raw=None, field="")
        return [unhandled(where, "entry is not an object", entry, ("entry", index))]
    time_raw = entry.get("time")
    where = Where(
        waba_id=waba_of(entry), entry_time=ts_or_none(time_raw), entry_time_raw=time_raw, field=""
    )
    changes = entry.get("changes")
    if not isinstance(changes, list):
        return [unhandled(where, "entry has no changes list", entry, ("entry", index))]
    out: list[NormalisedEvent] = []
    for change_index, change in enumerate(changes):
        try:
            out.extend(_change(where, change, change_index))
        except Exception as exc:  # keep the change, go on with the others
            reason = f"change could not be normalised: {describe(exc)}"
            out.append(unhandled(where, reason, change, ("change", change_index)))
    return out


def _change(entry_where: Where, change: Any, index: int) -> list[NormalisedEvent]:
    if not isinstance(change, dict):
        return [unhandled(entry_where, "change is not an object", change, ("change", index))]
    field_name = str_or_none(change.get("field")) or ""
    value = change.get("value")
    metadata = value.get("metadata") if isinstance(value, dict) else None
    metadata = metadata if isinstance(metadata, dict) else {}
    display = str_or_none(metadata.get("display_phone_number"))
    if display is None and isinstance(value, dict):
        display = str_or_none(value.get("display_phone_number"))
    where = Where(
        waba_id=entry_where.waba_id,
        entry_time=entry_where.entry_time,
        entry_time_raw=entry_where.entry_time_raw,
        field=field_name,
        phone_number_id=str_or_none(metadata.get("phone_number_id")),
        display_phone_number=display,
    )
    if not isinstance(value, dict):
        return [unhandled(where, "change value is not an object", change, ("change", index))]

    if field_name in _ORIGIN_BY_FIELD:
        return _messages_value(where, value, _ORIGIN_BY_FIELD[field_name])
    if field_name == "message_template_status_update":
        if "event" in value:
            return [template_status_event(where, value)]
        if "new_quality_score" in value or "previous_quality_score" in value:
            # Meta's own example of a quality update carries this field name.
            return [template_quality_event(where, value)]
    elif field_name == "message_template_quality_update":
        return [template_quality_event(where, value)]
    elif field_name == "template_category_update":
        return [template_category_event(where, value)]
    elif field_name == "phone_number_quality_update":
        return [phone_quality_event(where, value)]
    return [unhandled(where, f"field {field_name!r} is not modelled", value, ("change", index))]


def _messages_value(where: Where, value: dict[str, Any], origin: Origin) -> list[NormalisedEvent]:
    """A value of field messages, history or smb_message_echoes: messages, statuses and errors."""
    contacts = Contacts.of(value.get("contacts"))
    out: list[NormalisedEvent] = []
    for key in ("messages", "message_echoes"):
        if key in value:
            for i, msg in _items(where, value[key], key, out):
                out.append(_safe(where, msg, (key, i), message_event, i, origin, contacts))
    if "statuses" in value:
        for i, st in _items(where, value["statuses"], "statuses", out):
            out.append(_safe(where, st, ("statuses", i), status_event, i, contacts))
    if "errors" in value:
        for i, err in _items(where, value["errors"], "errors", out):
            out.append(_safe(where, err, ("errors", i), webhook_error_event, ("errors", i)))
    if "history" in value:
        for i, chunk in _items(where, value["history"], "history", out):
            out.extend(_history_chunk(where, chunk, i, contacts))
    extra = sorted(str(k) for k in value if k not in _VALUE_KEYS)
    if extra:
        out.append(unhandled(where, f"value keys not modelled: {', '.join(extra)}", value, ("value", "extra")))
    if not out:
        out.append(unhandled(where, "change carries no messages, statuses or errors", value, ("value",)))
    return out


def _history_chunk(where: Where, chunk: Any, index: int, contacts: Contacts) -> list[NormalisedEvent]:
    if not isinstance(chunk, dict):
        return [unhandled(where, "history item is not an object", chunk, ("history", index))]
    meta = chunk.get("metadata")
    meta = meta if isinstance(meta, dict) else None
    out: list[NormalisedEvent] = []
    if "threads" in chunk:
        threads = _items(where, chunk["threads"], f"history[{index}].threads", out)
        for t, thread in threads:
            path = ("history", index, "threads", t)
            if not isinstance(thread, dict):
                out.append(unhandled(where, "history thread is not an object", thread, path))
                continue
            thread_id = str_or_none(thread.get("id"))
            msgs = _items(where, thread.get("messages"), f"history[{index}].threads[{t}].messages", out)
            for m, msg in msgs:
                out.append(_safe(where, msg, (*path, m), message_event, m, "history", contacts, thread_id, meta))
    if "errors" in chunk:
        for i, err in _items(where, chunk["errors"], f"history[{index}].errors", out):
            path = ("history", index, "errors", i)
            out.append(_safe(where, err, path, webhook_error_event, path))
    if not out:
        out.append(unhandled(where, "history item carries no threads or errors", chunk, ("history", index)))
    return out


def _items(where: Where, items: Any, name: str, out: list[NormalisedEvent]) -> Iterable[tuple[int, Any]]:
    """The items of a list; anything else is recorded in ``out`` as unhandled and yields nothing."""
    if isinstance(items, list):
        return list(enumerate(items))
    out.append(unhandled(where, f"{name} is not a list", items, ("list", name)))
    return []


def _safe(
    where: Where,
    item: Any,
    path: tuple[Any, ...],
    build: Callable[..., NormalisedEvent],
    *args: Any,
) -> NormalisedEvent:
    """``build(where, item, *args)``; if it fails, the item is kept as unhandled with the reason."""
    try:
        return build(where, item, *args)
    except Exception as exc:  # one bad item never costs the rest of the batch
        return unhandled(where, f"{path[0]} item could not be normalised: {describe(exc)}", item, path)
