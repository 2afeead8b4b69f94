"""Each normalised event's envelope: its deterministic id, its Kafka key, and the unhandled event that keeps
what could not be read."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from inbox_core.events import Event, EventData, utcnow
from inbox_core.events.whatsapp import ChangeUnhandled
from inbox_ingest.domain.source import Where

# Fixed forever: changing it changes every event id, and consumers would take redeliveries for new facts.
ID_NAMESPACE = uuid.UUID("6f0b6c43-2a4e-5a51-9d0c-2f6a1f3c9e71")


@dataclass(frozen=True)
class NormalisedEvent:
    """One event to publish on ``whatsapp.events.v1`` with its Kafka ``key``."""

    key: str
    event: Event


def unhandled(
    where: Where,
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
    key = customer_key(where, customer) if where.phone_number_id else waba_key(where)
    return emit(payload, hash_id("unhandled", where, value, path), key, where.entry_time)


# --- ids, keys, envelope -------------------------------------------------------------------------------


def emit(payload: EventData, event_id: str, key: str, occurred_at: datetime | None) -> NormalisedEvent:
    return NormalisedEvent(key=key, event=Event.of(payload, id=event_id, occurred_at=occurred_at or utcnow()))


def name_uuid(name: str) -> str:
    return uuid.uuid5(ID_NAMESPACE, name).hex


def hash_id(kind: str, where: Where, value: Any, path: tuple[Any, ...] = ()) -> str:
    digest = hashlib.sha256(canonical_json([where.fingerprint(), list(path), value]).encode()).hexdigest()
    return name_uuid(f"{kind}:{digest}")


def canonical_json(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr)
    except (TypeError, ValueError, RecursionError):
        pass  # not JSON (only possible when called from Python): fall back to repr
    try:
        return repr(value)
    except (ValueError, RecursionError):  # e.g. an int beyond Python's 4300-digit str limit
        return f"<unrepresentable {type(value).__name__}>"


def customer_key(where: Where, customer: str) -> str:
    """``{phone_number_id}:{wa_id or user_id}`` (docs/architecture.md); a group's messages are keyed by the group."""
    return f"{where.phone_number_id or ''}:{customer}"


def waba_key(where: Where) -> str:
    """Account-level events (templates, number quality) have no customer: keyed by the business account."""
    return f"waba:{where.waba_id}"
