import pytest

from inbox_core.ids import conversation_id, customer_id, customer_key


def test_ids_are_stable_and_scoped() -> None:
    assert customer_id("w1", "15551234567") == customer_id("w1", "15551234567")
    assert customer_id("w1", "15551234567") != customer_id("w2", "15551234567")
    assert conversation_id("w1", "p1", "15551234567") != conversation_id("w1", "p2", "15551234567")
    assert customer_id("w1", "15551234567").startswith("cus_")
    # The username-only customer is keyed by the BSUID; when the wa_id becomes known it wins.
    assert customer_key("", "US.123") == "bsuid:US.123"
    assert customer_key("1555", "US.123") == "wa:1555"
    with pytest.raises(ValueError):
        customer_key("", None)
