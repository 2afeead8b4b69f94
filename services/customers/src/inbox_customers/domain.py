"""The rules of customer profiles and stats, pure (no I/O).

A customer's state is a plain dict (as stored): profile fields, normalised search fields, and the
orders it knows (``orders``: order id -> the latest version of that order seen), from which the stats are
always recomputed, so they equal a recount whatever the order, duplication or replay of order events.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from inbox_core.errors import ValidationFailed
from inbox_core.events.customers import CustomerSnapshot, CustomerStats
from inbox_core.events.orders import OrderSnapshot
from inbox_core.mongo import Document

# Stages whose order is money the customer spent: every order not cancelled and not returned (an order
# in progress counts; it leaves the revenue if it is cancelled or returned later).
NOT_REVENUE_STAGES = frozenset({"cancelled", "returned"})

MAX_TAGS = 50
MAX_TAG_LENGTH = 50
MAX_NAME_LENGTH = 200
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY_LENGTH = 64
# Sizes of attribute values as JSON: a customer's profile travels whole in every event about it (Kafka's
# limit is 1 MiB, shared with the customer's orders), and the panel shows them.
MAX_ATTRIBUTE_VALUE_BYTES = 1024
MAX_ATTRIBUTES_BYTES = 16 * 1024

PROFILE_FIELDS = ("wa_id", "user_id", "phone", "name", "profile_name", "name_edited", "tags", "attributes")


# --- text ------------------------------------------------------------------------------------------


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def phone_from_wa_id(wa_id: str) -> str | None:
    """E.164 from a WhatsApp id (its digits are the number with country code)."""
    number = digits(wa_id)
    return f"+{number}" if number else None


# --- contacts from WhatsApp ------------------------------------------------------------------------


@dataclass(frozen=True)
class ContactSeen:
    """What a WhatsApp message tells about its customer."""

    workspace_id: str
    wa_id: str
    user_id: str | None
    profile_name: str | None  # only from the customer's own (inbound) messages
    at: datetime
    inbound: bool


def empty_state(workspace_id: str, at: datetime) -> Document:
    return {
        "workspace_id": workspace_id,
        "wa_id": "",
        "user_id": None,
        "phone": None,
        "name": None,
        "profile_name": None,
        "profile_name_at": None,
        "name_edited": False,
        "tags": [],
        "attributes": {},
        "orders": {},
        "stats": compute_stats({}),
        "created_at": at,
        "updated_at": at,
    }


def profile(state: Document) -> dict[str, Any]:
    return {name: state.get(name) for name in PROFILE_FIELDS}


def merge_contact(current: Document | None, contact: ContactSeen, now: datetime,
                  newest_name_at: datetime | None = None) -> Document | None:
    """The state after a WhatsApp message of this customer, or None when it changes nothing.

    The latest profile name wins (by message time: a backfilled old message does not bring back an old
    name); it becomes the name shown unless an agent set one. ``newest_name_at`` is the time of the
    newest named message of the customer seen so far, this one included (``customer_seen.named_at``):
    a message older than it brings no name. A message that repeats the current name changes nothing, so
    the customer's everyday messages write no revision; ``profile_name_at`` stays the time of the
    message the name was first taken from."""
    state = dict(current) if current else empty_state(contact.workspace_id, now)
    state.pop("_id", None)
    state.pop("version", None)
    if contact.wa_id and not state.get("wa_id"):
        state["wa_id"] = contact.wa_id
    if contact.user_id and state.get("user_id") != contact.user_id:
        state["user_id"] = contact.user_id
    if not state.get("phone") and state.get("wa_id"):
        state["phone"] = phone_from_wa_id(state["wa_id"])
    name = (contact.profile_name or "").strip()[:MAX_NAME_LENGTH]
    taken_at = state.get("profile_name_at")
    newest = contact.at >= (taken_at or contact.at) and contact.at >= (newest_name_at or contact.at)
    if contact.inbound and name and newest and name != state.get("profile_name"):
        state["profile_name"] = name
        state["profile_name_at"] = contact.at
    if not state.get("name_edited"):
        state["name"] = state.get("profile_name")
    if current is not None and profile(state) == profile(current):
        return None
    state["updated_at"] = now
    return state


# --- edits by agents -------------------------------------------------------------------------------


def clean_tags(tags: list[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        text = tag.strip()
        if not text:
            continue
        if len(text) > MAX_TAG_LENGTH:
            raise ValidationFailed(f"a tag has at most {MAX_TAG_LENGTH} characters", {"field": "tags"})
        if text not in out:
            out.append(text)
    if len(out) > MAX_TAGS:
        raise ValidationFailed(f"at most {MAX_TAGS} tags", {"field": "tags"})
    return out


def clean_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValidationFailed(f"at most {MAX_ATTRIBUTES} attributes", {"field": "attributes"})
    for key in attributes:
        # Keys become field names in the database: no dots, no leading $.
        if not key or len(key) > MAX_ATTRIBUTE_KEY_LENGTH or "." in key or key.startswith("$") or "\x00" in key:
            raise ValidationFailed(f"attribute name not allowed: {key[:80]!r}", {"field": "attributes"})
    total = 0
    for key, value in attributes.items():
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())
        if size > MAX_ATTRIBUTE_VALUE_BYTES:
            raise ValidationFailed(f"an attribute value has at most {MAX_ATTRIBUTE_VALUE_BYTES} bytes (as JSON)",
                                   {"field": "attributes", "attribute": key, "bytes": size})
        total += size + len(key.encode())
    if total > MAX_ATTRIBUTES_BYTES:
        raise ValidationFailed(f"attributes have at most {MAX_ATTRIBUTES_BYTES} bytes in all (as JSON)",
                               {"field": "attributes", "bytes": total})
    return dict(attributes)


def edited(current: Document, name: str | None, tags: list[str] | None,
           attributes: dict[str, Any] | None, now: datetime) -> Document | None:
    """The state after an agent's edit, or None when it changes nothing.

    A name sets ``name_edited``: WhatsApp profile names never replace it afterwards. An empty name gives
    the customer back their WhatsApp profile name."""
    state = {k: v for k, v in current.items() if k not in ("_id", "version")}
    if name is not None:
        text = name.strip()
        if len(text) > MAX_NAME_LENGTH:
            raise ValidationFailed(f"a name has at most {MAX_NAME_LENGTH} characters", {"field": "name"})
        state["name_edited"] = bool(text)
        state["name"] = text or state.get("profile_name")
    if tags is not None:
        state["tags"] = clean_tags(tags)
    if attributes is not None:
        state["attributes"] = clean_attributes(attributes)
    if profile(state) == profile(current):
        return None
    state["updated_at"] = now
    return state


# --- orders and stats ------------------------------------------------------------------------------


def order_entry(order: OrderSnapshot) -> Document:
    return {"version": order.version, "stage": order.stage, "amount": order.total.amount,
            "currency": order.total.currency}


def apply_order(current: Document | None, order: OrderSnapshot, now: datetime) -> Document | None:
    """The state after an order event, or None when the event is not newer than what is known (a duplicate,
    a replay, or one overtaken by a later change) or belongs to another workspace."""
    state = dict(current) if current else empty_state(order.workspace_id, now)
    state.pop("_id", None)
    state.pop("version", None)
    if state["workspace_id"] != order.workspace_id:
        return None
    known = state.get("orders", {}).get(order.id)
    if known is not None and known["version"] >= order.version:
        return None
    state["orders"] = {**state.get("orders", {}), order.id: order_entry(order)}
    stats = compute_stats(state["orders"])
    if stats != (current or {}).get("stats"):
        state["stats"] = stats
        state["stats_updated_at"] = now
    state["updated_at"] = now
    return state


def compute_stats(orders: dict[str, Document]) -> Document:
    """Counts and revenue from the orders' latest known versions (a recount, every time).

    Revenue is the sum of the totals of orders not cancelled and not returned. A workspace has one
    currency; should orders carry several, revenue is given in the one most of them use (ties: the
    alphabetically first) and only those orders are summed."""
    stages = Counter(entry["stage"] for entry in orders.values())
    revenue_entries = [e for e in orders.values() if e["stage"] not in NOT_REVENUE_STAGES]
    candidates = revenue_entries or list(orders.values())
    by_currency = Counter(e["currency"] for e in candidates)
    currency = min(by_currency, key=lambda c: (-by_currency[c], c)) if by_currency else None
    revenue = sum((Decimal(e["amount"]) for e in revenue_entries if e["currency"] == currency), Decimal(0))
    return {
        "orders": len(orders),
        "delivered": stages["delivered"],
        "returned": stages["returned"],
        "cancelled": stages["cancelled"],
        "revenue_amount": str(revenue),
        "revenue_currency": currency,
    }


# --- events ----------------------------------------------------------------------------------------


def snapshot(customer: Document, seen: Document | None) -> CustomerSnapshot:
    """The customer as events carry it (``customer`` with ``_id`` and ``version``; ``seen`` its first and
    last seen times, kept apart)."""
    stats = customer.get("stats") or compute_stats({})
    return CustomerSnapshot(
        id=customer["_id"],
        workspace_id=customer["workspace_id"],
        wa_id=customer.get("wa_id") or "",
        user_id=customer.get("user_id"),
        phone=customer.get("phone"),
        name=customer.get("name"),
        profile_name=customer.get("profile_name"),
        name_edited=bool(customer.get("name_edited")),
        tags=list(customer.get("tags") or []),
        attributes=dict(customer.get("attributes") or {}),
        first_seen_at=(seen or {}).get("first_seen_at"),
        last_seen_at=(seen or {}).get("last_seen_at"),
        stats=CustomerStats(**stats),
        version=customer["version"],
    )


class Customer(CustomerSnapshot):
    """A customer as the service answers it: what events carry, with the times of its last changes."""

    updated_at: datetime | None = None
    stats_updated_at: datetime | None = None


def customer(state: Document, seen: Document | None) -> Customer:
    """The customer of a stored state (with ``_id`` and ``version``) and its seen times."""
    return Customer(**snapshot(state, seen).model_dump(), updated_at=state.get("updated_at"),
                    stats_updated_at=state.get("stats_updated_at") or state.get("created_at"))


def event_id(customer_id: str, version: int) -> str:
    """Deterministic: the writer and the relay publish one change under one id."""
    return f"{customer_id}:v{version}"
