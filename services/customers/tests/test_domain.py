"""The pure rules: phone numbers, profile merging, edits, stats."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from inbox_core.errors import ValidationFailed
from inbox_core.events.orders import Money, OrderSnapshot
from inbox_customers.domain import (
    ContactSeen,
    apply_order,
    clean_attributes,
    clean_tags,
    compute_stats,
    edited,
    merge_contact,
    phone_from_wa_id,
)

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def contact(name: str | None = "Ana", at: datetime = T0, inbound: bool = True, wa_id: str = "34600111222",
            user_id: str | None = None) -> ContactSeen:
    return ContactSeen("w1", wa_id, user_id, name, at, inbound)


def order(oid: str, version: int, stage: str, amount: str = "10.00", currency: str = "EUR",
          workspace: str = "w1") -> OrderSnapshot:
    return OrderSnapshot(id=oid, number=1, workspace_id=workspace, customer_id="c1",
                         total=Money(amount=amount, currency=currency), stage=stage, created_at=T0,
                         version=version)


def test_phone_from_wa_id() -> None:
    assert phone_from_wa_id("34600111222") == "+34600111222"
    assert phone_from_wa_id("") is None


def test_a_new_contact_makes_a_customer_with_e164_and_profile_name() -> None:
    state = merge_contact(None, contact(), T0)
    assert state is not None
    assert state["phone"] == "+34600111222" and state["name"] == "Ana" and state["profile_name"] == "Ana"
    assert state["stats"]["orders"] == 0 and state["name_edited"] is False


def test_the_same_contact_again_changes_nothing() -> None:
    state = merge_contact(None, contact(), T0)
    assert state is not None
    assert merge_contact({"_id": "c", **state, "version": 1}, contact(), T0 + timedelta(hours=1)) is None


def test_a_later_message_repeating_the_name_changes_nothing_and_an_older_name_stays_out() -> None:
    state = merge_contact(None, contact("Ana", T0), T0)
    assert state is not None
    stored = {"_id": "c", **state, "version": 1}
    later = T0 + timedelta(days=1)
    assert merge_contact(stored, contact("Ana", later), T0, newest_name_at=later) is None
    # Newer than the name's message but older than the newest named one (the repeat above): no name.
    assert merge_contact(stored, contact("Ana Old", T0 + timedelta(hours=1)), T0, newest_name_at=later) is None
    # The newest named message brings its name, whatever arrived before it.
    newest = later + timedelta(hours=1)
    renamed = merge_contact(stored, contact("Ana B.", newest), T0, newest_name_at=newest)
    assert renamed is not None and renamed["name"] == "Ana B." and renamed["profile_name_at"] == newest


def test_profile_names_follow_message_time_and_never_replace_an_agent_name() -> None:
    first = merge_contact(None, contact("Ana", T0), T0)
    assert first is not None
    newer = merge_contact(first, contact("Ana María", T0 + timedelta(days=1)), T0)
    assert newer is not None and newer["name"] == "Ana María"
    # A backfilled old message does not bring back the old name; an outbound one brings none.
    assert merge_contact(newer, contact("Old Name", T0 - timedelta(days=30)), T0) is None
    assert merge_contact(newer, contact("Business", T0 + timedelta(days=2), inbound=False), T0) is None

    agent = edited(newer, "Ana (VIP)", None, None, T0)
    assert agent is not None and agent["name"] == "Ana (VIP)" and agent["name_edited"] is True
    later = merge_contact(agent, contact("Ana M.", T0 + timedelta(days=3)), T0)
    assert later is not None and later["profile_name"] == "Ana M." and later["name"] == "Ana (VIP)"
    back = edited(later, "", None, None, T0)
    assert back is not None and back["name"] == "Ana M." and back["name_edited"] is False


def test_edits() -> None:
    state = merge_contact(None, contact(), T0)
    assert state is not None
    assert edited(state, None, None, None, T0) is None
    assert edited(state, "Ana", None, None, T0) is not None  # same text, but now agent-owned
    tagged = edited(state, None, [" vip ", "vip", "", "wholesale"], {"size": "M", "vip": True}, T0)
    assert tagged is not None and tagged["tags"] == ["vip", "wholesale"] and tagged["attributes"]["vip"] is True
    assert edited(tagged, None, ["vip", "wholesale"], None, T0) is None
    assert clean_tags([]) == []
    for bad_tags in (["x" * 51], [str(i) for i in range(51)]):
        with pytest.raises(ValidationFailed):
            clean_tags(bad_tags)
    for bad in ({"a.b": 1}, {"$x": 1}, {"": 1}, {str(i): i for i in range(51)}):
        with pytest.raises(ValidationFailed):
            clean_attributes(bad)
    # Values are capped as JSON: one over 1 KiB, or all of them over 16 KiB.
    for too_large in ({"notes": "x" * 1100}, {"list": ["y" * 100] * 11}, {f"k{i}": "z" * 900 for i in range(20)}):
        with pytest.raises(ValidationFailed):
            clean_attributes(too_large)
    assert clean_attributes({"notes": "x" * 1000, "size": "M"}) == {"notes": "x" * 1000, "size": "M"}


def test_stats_are_a_recount_of_the_latest_version_of_each_order() -> None:
    events = [
        order("o1", 1, "new", "100.00"), order("o1", 2, "confirmed", "100.00"), order("o1", 3, "shipped", "100.00"),
        order("o1", 4, "delivered", "100.00"),
        order("o2", 1, "new", "20.50"), order("o2", 2, "cancelled", "20.50"),
        order("o3", 1, "new", "7.25"),
        order("o4", 1, "new", "50.00"), order("o4", 2, "confirmed", "50.00"), order("o4", 3, "shipped", "50.00"),
        order("o4", 4, "delivered", "50.00"), order("o4", 5, "returned", "50.00"),
    ]
    expected = {"orders": 4, "delivered": 1, "returned": 1, "cancelled": 1, "revenue_amount": "107.25",
                "revenue_currency": "EUR"}
    # Any order of arrival, with every event delivered twice, gives the same stats.
    for permutation in itertools.islice(itertools.permutations(events + events), 0, 2000, 97):
        state = None
        for event in permutation:
            state = apply_order(state, event, T0) or state
        assert state is not None
        assert state["stats"] == expected
        assert {k: v["version"] for k, v in state["orders"].items()} == {"o1": 4, "o2": 2, "o3": 1, "o4": 5}


def test_stale_duplicate_and_foreign_order_events_change_nothing() -> None:
    state = apply_order(None, order("o1", 2, "confirmed"), T0)
    assert state is not None
    assert apply_order(state, order("o1", 2, "confirmed"), T0) is None
    assert apply_order(state, order("o1", 1, "new"), T0) is None
    assert apply_order(state, order("o9", 1, "new", workspace="w2"), T0) is None


def test_revenue_with_no_orders_and_with_mixed_currencies() -> None:
    assert compute_stats({}) == {"orders": 0, "delivered": 0, "returned": 0, "cancelled": 0,
                                 "revenue_amount": "0", "revenue_currency": None}
    mixed = {
        "a": {"version": 1, "stage": "new", "amount": "10.00", "currency": "EUR"},
        "b": {"version": 1, "stage": "delivered", "amount": "5.00", "currency": "EUR"},
        "c": {"version": 1, "stage": "new", "amount": "999.00", "currency": "USD"},
        "d": {"version": 1, "stage": "cancelled", "amount": "1.00", "currency": "USD"},
    }
    stats = compute_stats(mixed)
    assert (stats["revenue_amount"], stats["revenue_currency"]) == ("15.00", "EUR")
    only_cancelled = compute_stats({"d": mixed["d"]})
    assert (only_cancelled["revenue_amount"], only_cancelled["revenue_currency"]) == ("0", "USD")
