"""Events on ``inbox.orders.v1`` (key: order id), published by the orders service.

Every event carries the whole order as it is after the change (``order``), so a consumer needs no
call back to the orders service; ``version`` grows by one with every change of an order, so a consumer
can ignore a replayed or stale event (idempotency without remembering every event id).
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from inbox_core.events import EventData, event_type
from inbox_core.events.common import Actor as Actor  # re-exported: the one definition, under its topic's name too


class Money(EventData):
    amount: str  # decimal as a string: never a float
    currency: str


class OrderItem(EventData):
    sku: str
    name: str
    quantity: int
    unit_price: Money
    line_total: Money | None = None  # quantity x unit_price, computed by the orders service


class StageChange(EventData):
    stage: str
    by: Actor | None = None
    at: datetime


class OrderSnapshot(EventData):
    id: str
    number: int
    workspace_id: str
    customer_id: str
    conversation_id: str | None = None
    items: list[OrderItem] = Field(default_factory=list)
    total: Money
    shipping: dict[str, object] = Field(default_factory=dict)
    note: str | None = None
    stage: str  # new | confirmed | shipped | delivered | cancelled | returned
    stage_history: list[StageChange] = Field(default_factory=list)
    created_by: Actor | None = None
    created_at: datetime
    updated_at: datetime | None = None
    version: int = 1


class OrderEvent(EventData):
    order: OrderSnapshot


@event_type("order.created")
class OrderCreated(OrderEvent):
    pass


@event_type("order.stage_changed")
class OrderStageChanged(OrderEvent):
    from_stage: str
    to_stage: str
    by: Actor | None = None


@event_type("order.updated")
class OrderUpdated(OrderEvent):
    pass
