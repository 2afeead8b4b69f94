"""The right column: the customer, its stats and its orders."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from msgspec import Meta, Struct

from inbox_gateway.models.common import ActorRef, Decimal, Id, Money, Stage

# --- right column ----------------------------------------------------------------------------------------


class Customer(Struct):
    id: str
    workspace_id: str
    wa_id: str
    user_id: str | None
    name: str
    profile_name: str | None
    phone: str
    tags: list[str]
    attributes: dict[str, Any]
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    updated_at: datetime | None


class CustomerStats(Struct):
    orders: int
    delivered: int
    returned: int
    cancelled: int
    revenue: Money


class CustomerPatch(Struct, forbid_unknown_fields=True):
    """Only the fields given change; ``tags: []`` / ``attributes: {}`` clear them."""

    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    tags: list[Annotated[str, Meta(min_length=1, max_length=64)]] | None = None
    # At most 50, names up to 64 characters; the customers service caps the values' sizes.
    attributes: Annotated[dict[Annotated[str, Meta(max_length=64)], Any], Meta(max_length=50)] | None = None


class OrderItem(Struct):
    sku: str
    name: str
    quantity: int
    unit_price: str
    line_total: str


class Shipping(Struct):
    name: str = ""
    phone: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    instructions: str = ""


class StageChange(Struct):
    stage: Stage
    by: ActorRef | None
    at: datetime | None


class Order(Struct):
    id: str
    number: int
    workspace_id: str
    customer_id: str
    conversation_id: str | None
    items: list[OrderItem]
    total: Money
    shipping: Shipping | None
    stage: Stage
    stage_history: list[StageChange]
    note: str | None
    created_by: ActorRef | None
    created_at: datetime | None
    updated_at: datetime | None


class Panel(Struct):
    customer: Customer
    stats: CustomerStats
    orders: list[Order]  # most recent first
    current_order: Order | None


class OrderItemBody(Struct, forbid_unknown_fields=True):
    sku: Annotated[str, Meta(min_length=1, max_length=100)]
    name: Annotated[str, Meta(min_length=1, max_length=300)]
    quantity: Annotated[int, Meta(ge=1, le=100000)]
    unit_price: Decimal


class ShippingBody(Struct, forbid_unknown_fields=True):
    name: Annotated[str, Meta(max_length=200)] = ""
    phone: Annotated[str, Meta(max_length=50)] = ""
    line1: Annotated[str, Meta(max_length=300)] = ""
    line2: Annotated[str, Meta(max_length=300)] = ""
    city: Annotated[str, Meta(max_length=200)] = ""
    region: Annotated[str, Meta(max_length=200)] = ""
    postal_code: Annotated[str, Meta(max_length=40)] = ""
    country: Annotated[str, Meta(max_length=2)] = ""
    instructions: Annotated[str, Meta(max_length=1000)] = ""


class CreateOrderBody(Struct, forbid_unknown_fields=True):
    conversation_id: Id
    items: Annotated[list[OrderItemBody], Meta(min_length=1, max_length=200)]
    shipping: ShippingBody | None = None
    note: Annotated[str, Meta(max_length=2000)] | None = None


class OrderEnvelope(Struct):
    order: Order


class StageBody(Struct, forbid_unknown_fields=True):
    stage: Stage
