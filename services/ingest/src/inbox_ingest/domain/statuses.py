"""Statuses of sent messages and webhook-level errors into ``StatusUpdated`` / ``WebhookError`` events."""

from __future__ import annotations

from typing import Any

from inbox_core.events.whatsapp import (
    StatusUpdated,
    WebhookError,
    parse_meta_timestamp,
)
from inbox_ingest.domain.envelope import NormalisedEvent, customer_key, emit, hash_id, name_uuid, unhandled
from inbox_ingest.domain.readers import meta_error, meta_errors, str_or_none
from inbox_ingest.domain.source import Contacts, Where


def status_event(where: Where, st: Any, index: int, contacts: Contacts) -> NormalisedEvent:
    path = ("status", index)
    if not isinstance(st, dict):
        return unhandled(where, "status is not an object", st, path)
    wamid, status = str_or_none(st.get("id")), str_or_none(st.get("status"))
    recipient_id = str_or_none(st.get("recipient_id")) or ""
    recipient_user_id = str_or_none(st.get("recipient_user_id"))
    if not wamid or not status:
        reason = "status without id or status"
        return unhandled(where, reason, st, path, wa_id=recipient_id, user_id=recipient_user_id)
    try:
        timestamp = parse_meta_timestamp(st.get("timestamp"))
    except ValueError:
        reason = "status timestamp missing or invalid"
        return unhandled(where, reason, st, path, wa_id=recipient_id, user_id=recipient_user_id)
    recipient_type = str_or_none(st.get("recipient_type"))
    group_id = recipient_id if recipient_type == "group" else None
    customer = "" if group_id else recipient_id
    contact = contacts.find(customer, recipient_user_id) or {}
    wa_id = customer or ("" if group_id else str_or_none(contact.get("wa_id")) or "")
    user_id = recipient_user_id or str_or_none(contact.get("user_id"))
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
        errors=meta_errors(st.get("errors")),
        biz_opaque_callback_data=str_or_none(st.get("biz_opaque_callback_data")),
        raw=st,
    )
    key = customer_key(where, group_id or wa_id or user_id or "")
    return emit(payload, name_uuid(f"status:{wamid}:{status}"), key, timestamp)


def webhook_error_event(where: Where, error: Any, path: tuple[Any, ...]) -> NormalisedEvent:
    if not isinstance(error, dict):
        return unhandled(where, "error is not an object", error, path)
    payload = WebhookError(**where.common(), error=meta_error(error), entry_time=where.entry_time, raw=error)
    return emit(payload, hash_id("error", where, error, path), customer_key(where, ""), where.entry_time)
