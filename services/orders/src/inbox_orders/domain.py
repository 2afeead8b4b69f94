"""The rules of orders, pure (no I/O): the pipeline's allowed moves, money arithmetic, validation, and the
shape of an order's state and of its events."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Any

from inbox_core.errors import Conflict, InvalidRequest, ValidationFailed
from inbox_core.events import new_id
from inbox_core.events.orders import Actor as EventActor
from inbox_core.events.orders import Money, OrderCreated, OrderItem, OrderSnapshot, OrderStageChanged, StageChange
from inbox_core.mongo import Document


class Stage(StrEnum):
    NEW = "new"
    CONFIRMED = "confirmed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RETURNED = "returned"


# The pipeline. Cancelling is for an order not yet on its way; once shipped, an order that does not end
# delivered comes back (refused or returned). Delivered goods can still be returned. Cancelled and
# returned are the end. Staying in the same stage is not a move.
ALLOWED_MOVES: dict[Stage, frozenset[Stage]] = {
    Stage.NEW: frozenset({Stage.CONFIRMED, Stage.CANCELLED}),
    Stage.CONFIRMED: frozenset({Stage.SHIPPED, Stage.CANCELLED}),
    Stage.SHIPPED: frozenset({Stage.DELIVERED, Stage.RETURNED}),
    Stage.DELIVERED: frozenset({Stage.RETURNED}),
    Stage.CANCELLED: frozenset(),
    Stage.RETURNED: frozenset(),
}

# An order in one of these is done: it is never the customer's "current order".
FINAL_STAGES: frozenset[Stage] = frozenset({Stage.DELIVERED, Stage.CANCELLED, Stage.RETURNED})


def can_move(current: Stage, target: Stage) -> bool:
    return target in ALLOWED_MOVES[current]


def check_move(current: Stage, target: Stage) -> None:
    """Raises Conflict (gRPC FAILED_PRECONDITION, HTTP 409) when the pipeline does not allow the move."""
    if not can_move(current, target):
        allowed = sorted(s.value for s in ALLOWED_MOVES[current])
        raise Conflict(
            f"an order cannot move from {current.value} to {target.value}",
            {"from": current.value, "to": target.value, "allowed": allowed},
        )


# --- money ----------------------------------------------------------------------------------------

# ISO 4217 currencies whose minor unit is not the cent; every other currency has 2 decimals.
_MINOR_UNITS: dict[str, int] = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0, "RWF": 0,
    "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
    "CLF": 4, "UYW": 4,
}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_PLAIN_DECIMAL = re.compile(r"^[0-9]+(\.[0-9]+)?$")
MAX_AMOUNT = Decimal("1e12")


def minor_units(currency: str) -> int:
    return _MINOR_UNITS.get(currency, 2)


def normalise_currency(currency: str) -> str:
    code = currency.strip().upper()
    if not _CURRENCY.match(code):
        raise ValidationFailed("currency must be an ISO 4217 code such as EUR", {"field": "currency"})
    return code


def format_amount(amount: Decimal, currency: str) -> str:
    """``amount`` with exactly the currency's decimals, e.g. 149.9 EUR -> "149.90", 1500 JPY -> "1500"."""
    return str(amount.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP))


def parse_price(value: str, currency: str, where: str) -> Decimal:
    """A unit price: a plain decimal string, >= 0, with no more decimals than the currency has (a price
    in fractions of a cent would make totals depend on rounding)."""
    text = value.strip()
    if text.startswith("-"):
        raise ValidationFailed(f"{where}: must not be negative", {"field": where})
    if not _PLAIN_DECIMAL.match(text):
        raise ValidationFailed(f"{where}: not a decimal number such as 149.90", {"field": where})
    amount = Decimal(text)
    if amount > MAX_AMOUNT:
        raise ValidationFailed(f"{where}: too large", {"field": where})
    exponent = amount.normalize().as_tuple().exponent  # "10.500" has 1 significant decimal
    assert isinstance(exponent, int)  # finite
    if -exponent > minor_units(currency):
        raise ValidationFailed(
            f"{where}: {currency} has {minor_units(currency)} decimals", {"field": where}
        )
    return amount


# --- creating an order ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ActorIn:
    id: str
    name: str = ""

    def to_doc(self) -> Document:
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class ItemIn:
    sku: str
    name: str
    quantity: int
    unit_price: str


@dataclass(frozen=True)
class NewOrder:
    """A create request as the gRPC layer hands it over (strings as received, not yet validated)."""

    workspace_id: str
    customer_id: str
    conversation_id: str
    items: list[ItemIn]
    currency: str
    created_by: ActorIn
    shipping: dict[str, str] = field(default_factory=dict)
    note: str = ""
    idempotency_key: str = ""


MAX_ITEMS = 100
MAX_QUANTITY = 1_000_000
SHIPPING_FIELDS = ("name", "phone", "line1", "line2", "city", "region", "postal_code", "country", "instructions")
_LIMITS = {"sku": 100, "name": 200, "note": 2000, "shipping": 500, "id": 200}


def _text(value: str, limit: int, where: str, *, required: bool = False) -> str:
    text = value.strip()
    if required and not text:
        raise ValidationFailed(f"{where} is required", {"field": where})
    if len(text) > limit:
        raise ValidationFailed(f"{where}: at most {limit} characters", {"field": where})
    return text


def validate_new_order(req: NewOrder) -> NewOrder:
    """The request with its text trimmed and currency normalised; raises on anything wrong."""
    for name in ("workspace_id", "customer_id"):
        if not getattr(req, name).strip():
            raise InvalidRequest(f"{name} is required", {"field": name})
    if not req.created_by.id.strip():
        raise InvalidRequest("created_by.id is required: who creates the order", {"field": "created_by"})
    currency = normalise_currency(req.currency)
    if not req.items:
        raise ValidationFailed("an order needs at least one item", {"field": "items"})
    if len(req.items) > MAX_ITEMS:
        raise ValidationFailed(f"an order has at most {MAX_ITEMS} items", {"field": "items"})
    items: list[ItemIn] = []
    for i, item in enumerate(req.items):
        where = f"items[{i}]"
        if not 0 < item.quantity <= MAX_QUANTITY:
            raise ValidationFailed(f"{where}.quantity must be between 1 and {MAX_QUANTITY}",
                                   {"field": f"{where}.quantity"})
        parse_price(item.unit_price, currency, f"{where}.unit_price")
        items.append(ItemIn(
            sku=_text(item.sku, _LIMITS["sku"], f"{where}.sku"),
            name=_text(item.name, _LIMITS["name"], f"{where}.name", required=True),
            quantity=item.quantity,
            unit_price=item.unit_price.strip(),
        ))
    shipping = {k: _text(v, _LIMITS["shipping"], f"shipping.{k}") for k, v in req.shipping.items()
                if k in SHIPPING_FIELDS}
    shipping = {k: v for k, v in shipping.items() if v}
    if "country" in shipping:
        shipping["country"] = shipping["country"].upper()
        if not re.match(r"^[A-Z]{2}$", shipping["country"]):
            raise ValidationFailed("shipping.country must be an ISO 3166-1 alpha-2 code",
                                   {"field": "shipping.country"})
    return NewOrder(
        workspace_id=req.workspace_id.strip(),
        customer_id=req.customer_id.strip(),
        conversation_id=_text(req.conversation_id, _LIMITS["id"], "conversation_id"),
        items=items,
        currency=currency,
        created_by=ActorIn(req.created_by.id.strip(), req.created_by.name.strip()),
        shipping=shipping,
        note=_text(req.note, _LIMITS["note"], "note"),
        idempotency_key=_text(req.idempotency_key, _LIMITS["id"], "idempotency_key"),
    )


def priced_items(items: list[ItemIn], currency: str) -> tuple[list[Document], str]:
    """Each item with its line total, and the order total, in exact decimal arithmetic."""
    out: list[Document] = []
    total = Decimal(0)
    for i, item in enumerate(items):
        price = parse_price(item.unit_price, currency, f"items[{i}].unit_price")
        line = price * item.quantity  # exact: a price has at most the currency's decimals
        total += line
        out.append({
            "sku": item.sku,
            "name": item.name,
            "quantity": item.quantity,
            "unit_price": format_amount(price, currency),
            "line_total": format_amount(line, currency),
        })
    return out, format_amount(total, currency)


def new_order_state(req: NewOrder, number: int, at: datetime) -> Document:
    """The state of a just-created order (``req`` validated)."""
    items, total = priced_items(req.items, req.currency)
    return {
        "workspace_id": req.workspace_id,
        "number": number,
        "customer_id": req.customer_id,
        "conversation_id": req.conversation_id,
        "items": items,
        "currency": req.currency,
        "total": total,
        "shipping": req.shipping or None,
        "note": req.note,
        "stage": Stage.NEW.value,
        "final": False,
        "stage_history": [{"stage": Stage.NEW.value, "by": req.created_by.to_doc(), "at": at}],
        "created_by": req.created_by.to_doc(),
        "created_at": at,
        "updated_at": at,
        "idempotency_key": req.idempotency_key,
    }


def moved_state(order: Document, target: Stage, by: ActorIn | None, at: datetime) -> Document:
    """The state after a move (checked first); the history grows by one entry."""
    check_move(Stage(order["stage"]), target)
    state = {k: v for k, v in order.items() if k not in ("_id", "version")}
    state["stage"] = target.value
    state["final"] = target in FINAL_STAGES
    state["stage_history"] = [*order["stage_history"],
                              {"stage": target.value, "by": by.to_doc() if by else None, "at": at}]
    state["updated_at"] = at
    return state


# --- events ---------------------------------------------------------------------------------------


def _actor(doc: dict[str, Any] | None) -> EventActor | None:
    return EventActor(id=doc["id"], name=doc.get("name", "")) if doc else None


def snapshot(order: Document) -> OrderSnapshot:
    """The order as events carry it (``order`` as the projection holds it: with ``_id`` and ``version``)."""
    currency = order["currency"]
    return OrderSnapshot(
        id=order["_id"],
        number=order["number"],
        workspace_id=order["workspace_id"],
        customer_id=order["customer_id"],
        conversation_id=order.get("conversation_id") or None,
        items=[
            OrderItem(sku=i["sku"], name=i["name"], quantity=i["quantity"],
                      unit_price=Money(amount=i["unit_price"], currency=currency),
                      line_total=Money(amount=i["line_total"], currency=currency))
            for i in order["items"]
        ],
        total=Money(amount=order["total"], currency=currency),
        shipping=dict(order.get("shipping") or {}),
        note=order.get("note") or None,
        stage=order["stage"],
        stage_history=[StageChange(stage=h["stage"], by=_actor(h.get("by")), at=h["at"])
                       for h in order["stage_history"]],
        created_by=_actor(order.get("created_by")),
        created_at=order["created_at"],
        updated_at=order.get("updated_at"),
        version=order["version"],
    )


def created_event(order: Document) -> OrderCreated:
    return OrderCreated(order=snapshot(order))


def stage_changed_event(order: Document, from_stage: str, by: ActorIn | None) -> OrderStageChanged:
    return OrderStageChanged(order=snapshot(order), from_stage=from_stage, to_stage=order["stage"],
                             by=EventActor(id=by.id, name=by.name) if by else None)


def new_order_id() -> str:
    return new_id()[:24]


def event_id(order_id: str, version: int) -> str:
    """Deterministic: the writer and the relay publish one change under one id."""
    return f"{order_id}:v{version}"
