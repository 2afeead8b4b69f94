"""Payload parts every topic shares, defined once (like protos/inbox/common/v1): an agent reads the same in a
conversation's, a customer's and an order's events."""

from __future__ import annotations

from inbox_core.events import EventData


class Actor(EventData):
    """An agent (or, for an inbound reaction, the customer), with the name as it was at the time."""

    id: str
    name: str = ""
