"""Events on ``inbox.customers.v1`` (key: customer id), published by the customers service.

Each carries the customer (and stats) as they are after the change; ``version`` orders them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from inbox_core.events import EventData, event_type
from inbox_core.events.common import Actor as Actor  # re-exported: the one definition, under its topic's name too


class CustomerStats(EventData):
    orders: int = 0
    delivered: int = 0
    returned: int = 0
    cancelled: int = 0
    revenue_amount: str = "0"
    revenue_currency: str | None = None


class CustomerSnapshot(EventData):
    id: str
    workspace_id: str
    wa_id: str = ""
    user_id: str | None = None
    phone: str | None = None  # E.164
    name: str | None = None
    profile_name: str | None = None
    name_edited: bool = False
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)
    first_seen_at: datetime | None = None
    last_seen_at: datetime | None = None
    stats: CustomerStats = Field(default_factory=CustomerStats)
    version: int = 1


class CustomerEvent(EventData):
    customer: CustomerSnapshot


@event_type("customer.created")
class CustomerCreated(CustomerEvent):
    pass


@event_type("customer.updated")
class CustomerUpdated(CustomerEvent):
    # Who changed it (an agent through the API; None for a change from WhatsApp) and which fields.
    by: Actor | None = None
    changed: list[str] = Field(default_factory=list)


@event_type("customer.stats_changed")
class CustomerStatsChanged(CustomerEvent):
    pass
