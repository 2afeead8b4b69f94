"""The pure rules: every allowed and every forbidden stage move, money arithmetic, validation."""

import itertools
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from inbox_core.errors import Conflict, InvalidRequest, ValidationFailed
from inbox_orders.domain import (
    ALLOWED_MOVES,
    FINAL_STAGES,
    ActorIn,
    ItemIn,
    NewOrder,
    Stage,
    check_move,
    created_event,
    format_amount,
    moved_state,
    new_order_state,
    parse_price,
    priced_items,
    validate_new_order,
)

# Written out by hand (not derived from ALLOWED_MOVES), so a changed rule fails here.
EXPECTED_ALLOWED = {
    ("new", "confirmed"), ("new", "cancelled"),
    ("confirmed", "shipped"), ("confirmed", "cancelled"),
    ("shipped", "delivered"), ("shipped", "returned"),
    ("delivered", "returned"),
}
ALL_MOVES = list(itertools.product(list(Stage), repeat=2))
AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("current", "target"), ALL_MOVES, ids=[f"{a}->{b}" for a, b in ALL_MOVES])
def test_every_move_is_allowed_or_refused_with_a_conflict(current: Stage, target: Stage) -> None:
    if (current.value, target.value) in EXPECTED_ALLOWED:
        check_move(current, target)
        order = {"_id": "o1", "version": 3, "stage": current.value, "stage_history": [{"stage": current.value}]}
        state = moved_state(order, target, ActorIn("a1", "Ana"), AT)
        assert state["stage"] == target.value
        assert state["final"] is (target in FINAL_STAGES)
        assert state["stage_history"][-1] == {"stage": target.value, "by": {"id": "a1", "name": "Ana"}, "at": AT}
        assert "version" not in state and "_id" not in state
    else:
        with pytest.raises(Conflict) as refused:
            check_move(current, target)
        assert refused.value.grpc_status.name == "FAILED_PRECONDITION"
        assert refused.value.details["from"] == current.value
        with pytest.raises(Conflict):
            moved_state({"stage": current.value, "stage_history": []}, target, None, AT)


def test_the_move_table_is_the_documented_pipeline() -> None:
    assert {(a.value, b.value) for a, targets in ALLOWED_MOVES.items() for b in targets} == EXPECTED_ALLOWED
    assert {Stage.DELIVERED, Stage.CANCELLED, Stage.RETURNED} == FINAL_STAGES
    assert not ALLOWED_MOVES[Stage.CANCELLED] and not ALLOWED_MOVES[Stage.RETURNED]


def test_totals_are_exact_decimals_in_the_currency_minor_unit() -> None:
    items = [ItemIn("A", "Shirt", 3, "19.99"), ItemIn("B", "Socks", 1, "0.1"), ItemIn("", "Gift", 2, "0")]
    priced, total = priced_items(items, "EUR")
    assert [i["line_total"] for i in priced] == ["59.97", "0.10", "0.00"]
    assert [i["unit_price"] for i in priced] == ["19.99", "0.10", "0.00"]
    assert total == "60.07"  # 0.1 + 0.2 style float errors would show here
    assert priced_items([ItemIn("J", "Tea", 3, "1500")], "JPY")[1] == "4500"
    assert priced_items([ItemIn("K", "Oil", 2, "1.005")], "KWD")[1] == "2.010"
    many = [ItemIn(str(i), "x", 1, "0.10") for i in range(10)]
    assert priced_items(many, "USD")[1] == "1.00"


@pytest.mark.parametrize(("value", "currency", "ok"), [
    ("10", "EUR", True), ("10.5", "EUR", True), ("10.500", "EUR", True), ("0", "EUR", True),
    ("10.555", "EUR", False), ("1.5", "JPY", False), ("-1", "EUR", False), ("abc", "EUR", False),
    ("1e3", "EUR", False), ("NaN", "EUR", False), ("", "EUR", False), ("1,5", "EUR", False),
    ("10000000000000", "EUR", False),
])
def test_unit_prices(value: str, currency: str, ok: bool) -> None:
    if ok:
        assert parse_price(value, currency, "p") == Decimal(value)
    else:
        with pytest.raises(ValidationFailed):
            parse_price(value, currency, "p")


def test_format_amount() -> None:
    assert format_amount(Decimal("149.9"), "EUR") == "149.90"
    assert format_amount(Decimal("1500"), "JPY") == "1500"
    assert format_amount(Decimal("0"), "BHD") == "0.000"


def _request(**changes: object) -> NewOrder:
    base: dict[str, object] = {
        "workspace_id": "w1", "customer_id": "c1", "conversation_id": "cv1",
        "items": [ItemIn(" SKU-1 ", " Shirt ", 2, "10.00")], "currency": "eur",
        "created_by": ActorIn("a1", "Ana"), "shipping": {"city": " Madrid ", "country": "es", "line2": " "},
        "note": " fragile ", "idempotency_key": "k1",
    }
    base.update(changes)
    return NewOrder(**base)  # type: ignore[arg-type]


def test_validation_trims_and_normalises() -> None:
    req = validate_new_order(_request())
    assert req.currency == "EUR"
    assert req.items[0].sku == "SKU-1" and req.items[0].name == "Shirt"
    assert req.shipping == {"city": "Madrid", "country": "ES"}
    assert req.note == "fragile"
    state = new_order_state(req, 7, AT)
    assert state["number"] == 7 and state["total"] == "20.00" and state["stage"] == "new"
    assert state["stage_history"] == [{"stage": "new", "by": {"id": "a1", "name": "Ana"}, "at": AT}]
    event = created_event({"_id": "ord_1", **state, "version": 1})
    assert event.order.total.amount == "20.00" and event.order.total.currency == "EUR"
    assert event.order.items[0].unit_price.amount == "10.00"
    assert event.order.version == 1


@pytest.mark.parametrize(("changes", "error"), [
    ({"workspace_id": ""}, InvalidRequest),
    ({"customer_id": " "}, InvalidRequest),
    ({"created_by": ActorIn("")}, InvalidRequest),
    ({"currency": ""}, ValidationFailed),
    ({"currency": "EURO"}, ValidationFailed),
    ({"items": []}, ValidationFailed),
    ({"items": [ItemIn("s", "n", 0, "1")]}, ValidationFailed),
    ({"items": [ItemIn("s", "n", -2, "1")]}, ValidationFailed),
    ({"items": [ItemIn("s", "", 1, "1")]}, ValidationFailed),
    ({"items": [ItemIn("s", "n", 1, "-1")]}, ValidationFailed),
    ({"items": [ItemIn("s", "n", 1, "1")] * 101}, ValidationFailed),
    ({"shipping": {"country": "Spain"}}, ValidationFailed),
    ({"note": "x" * 2001}, ValidationFailed),
])
def test_invalid_requests_are_refused(changes: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        validate_new_order(_request(**changes))
