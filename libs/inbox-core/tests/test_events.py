from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from inbox_core.events import Event, EventData, event_type


@event_type("test.order.shipped")
class OrderShipped(EventData):
    order_id: str
    parcels: int


def test_envelope_round_trip_keeps_payload_and_unknown_fields() -> None:
    event = Event.of(OrderShipped(order_id="o1", parcels=2), workspace_id="w1",
                     occurred_at=datetime(2026, 3, 1, tzinfo=UTC))
    raw = event.to_bytes()
    back = Event.from_bytes(raw)
    assert back == event
    assert back.type == "test.order.shipped"
    assert back.payload() == OrderShipped(order_id="o1", parcels=2)
    newer = Event(type="test.order.shipped", data={"order_id": "o2", "parcels": 1, "carrier": "dhl"})
    assert newer.payload(OrderShipped).model_dump()["carrier"] == "dhl"


def test_unregistered_payload_and_bad_data_are_refused() -> None:
    class NotRegistered(EventData):
        x: int

    with pytest.raises(ValueError, match="not a registered event type"):
        Event.of(NotRegistered(x=1))
    with pytest.raises(ValidationError):
        Event(type="test.order.shipped", data={"order_id": "o3"}).payload()
    with pytest.raises(KeyError):
        Event(type="nobody.knows", data={}).payload()
