"""The pure rules: status order, the 24-hour window, message effects, previews, search, statuses, ids."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inbox_conversations import domain, inbound
from inbox_core.errors import InvalidRequest

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

# --- status ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("current", "new", "moves"), [
    (None, "sent", True),
    ("pending", "sent", True),
    ("sent", "delivered", True),
    ("sent", "read", True),  # Meta may skip delivered
    ("delivered", "read", True),
    ("read", "played", True),  # voice notes
    ("read", "delivered", False),  # a late "delivered" never overwrites "read"
    ("delivered", "sent", False),
    ("read", "read", False),
    ("played", "read", False),
    ("pending", "failed", True),
    ("delivered", "failed", True),
    ("failed", "sent", False),  # failed is final
    ("failed", "read", False),
    ("failed", "failed", False),
    ("sent", "deleted", False),  # a status we do not track
])
def test_status_only_moves_forward(current: str | None, new: str, moves: bool) -> None:
    assert domain.status_advances(current, new) is moves


@given(st.lists(st.sampled_from(sorted(domain.STATUS_RANK)), min_size=1, max_size=12))
def test_any_arrival_order_ends_at_the_highest_status(arrivals: list[str]) -> None:
    status: str | None = None
    for new in arrivals:
        if domain.status_advances(status, new):
            status = new
    assert status == max(arrivals, key=lambda s: domain.STATUS_RANK[s])


# --- the 24-hour window ------------------------------------------------------------------------------


def test_window_is_open_until_exactly_24_hours_after_the_customer_message() -> None:
    expires = domain.window_expires_at(T0)
    assert expires == T0 + timedelta(hours=24)
    assert domain.window_open(expires, T0)
    assert domain.window_open(expires, T0 + timedelta(hours=24) - timedelta(milliseconds=1))
    assert not domain.window_open(expires, T0 + timedelta(hours=24))  # exactly 24 h: closed
    assert not domain.window_open(expires, T0 + timedelta(hours=24, seconds=1))


def test_no_customer_message_means_no_window() -> None:
    assert domain.window_expires_at(None) is None
    assert not domain.window_open(None, T0)


@pytest.mark.parametrize(("origin", "direction", "type_", "unread", "window", "awaiting"), [
    ("live", "in", "text", True, True, True),
    ("live", "in", "image", True, True, True),
    ("live", "in", "some_new_type", True, True, True),
    ("history", "in", "text", False, False, True),  # backfill: no unread, no window
    ("history", "out", "text", False, False, False),
    ("echo", "out", "text", False, False, False),  # sent from the WhatsApp Business app
    ("live", "in", "system", False, False, False),
])
def test_message_effects(origin: str, direction: str, type_: str, unread: bool, window: bool, awaiting: bool) -> None:
    effects = domain.message_effects(origin, direction, type_)
    assert (effects.unread, effects.opens_window, effects.awaiting_reply) == (unread, window, awaiting)
    assert effects.becomes_last


def test_a_reaction_is_not_a_new_message_but_a_live_one_refreshes_the_window() -> None:
    live = domain.message_effects("live", "in", "reaction")
    assert not live.unread and not live.becomes_last and live.opens_window
    assert not domain.message_effects("history", "in", "reaction").opens_window


# --- previews ------------------------------------------------------------------------------------------


def test_previews() -> None:
    assert domain.preview("text", text="  hello\n  world ") == "hello world"
    assert domain.preview("text", text="x" * 500).endswith("…")
    assert len(domain.preview("text", text="x" * 500)) == domain.PREVIEW_LENGTH
    assert domain.preview("image") == "Photo"
    assert domain.preview("image", caption="new shoes") == "Photo: new shoes"
    assert domain.preview("document", filename="invoice.pdf") == "Document: invoice.pdf"
    assert domain.preview("audio", voice=True) == "Voice message"
    assert domain.preview("template", template_name="order_update") == "Template: order_update"
    assert domain.preview("hologram") == "Unsupported message (hologram)"  # unknown types are named
    assert domain.preview("text", text="secret", revoked=True) == "Message deleted"


# --- search --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("query", "name_terms", "phone_terms"), [
    ("Jos", ["jos"], []),
    ("  JOSÉ  ", ["jose"], []),
    ("ana gar", ["ana", "gar"], []),
    ("+34 600-111", [], ["34600111"]),
    ("111", [], ["111"]),
    ("ana 600", ["ana"], ["600"]),
    ("12", ["12"], []),
])
def test_parse_query(query: str, name_terms: list[str], phone_terms: list[str]) -> None:
    parsed = domain.parse_query(query)
    assert parsed is not None
    assert parsed.name_terms == name_terms and parsed.phone_terms == phone_terms


def test_parse_query_nothing_searchable() -> None:
    assert domain.parse_query("") is None
    assert domain.parse_query("   ") is None
    assert domain.parse_query("!!!") is None


def test_a_query_matches_name_prefixes_and_phone_digits_exactly() -> None:
    q = domain.parse_query("gar")
    assert q is not None and q.matches("José García", "") and not q.matches("Ana Lopez", "")
    long = domain.parse_query("Bartholomewington")
    assert long is not None
    assert long.matches("Mr Bartholomewington", "")
    assert not long.matches("Mr Bartholomewingtom", "")
    phone = domain.parse_query("600111222")
    assert phone is not None
    assert phone.matches("", "+34 600 111 222") and not phone.matches("", "+34 600 111 223")


@given(st.text(min_size=1, max_size=30), st.text(alphabet="0123456789", min_size=0, max_size=15))
def test_every_name_word_prefix_query_matches_its_name(name: str, phone: str) -> None:
    for word in domain.name_words(name)[: domain.MAX_NAME_WORDS]:
        query = domain.parse_query(word[:5])
        if query is not None and not word[:5].isdigit():
            assert query.matches(name, phone)


# --- templates -----------------------------------------------------------------------------------------

def test_ids_are_stable() -> None:
    assert domain.inbound_message_id("w", "wamid.1") == domain.inbound_message_id("w", "wamid.1")
    assert domain.inbound_message_id("w", "wamid.1") != domain.inbound_message_id("w2", "wamid.1")
    assert domain.outbound_message_id("w", "c", "k").startswith("msg_")
    assert domain.event_id("a", "b") == domain.event_id("a", "b") != domain.event_id("a", "c")


def test_page_size() -> None:
    assert domain.page_size(0) == domain.DEFAULT_PAGE
    assert domain.page_size(-5) == domain.DEFAULT_PAGE
    assert domain.page_size(10) == 10
    assert domain.page_size(10_000) == domain.MAX_PAGE


def test_to_ms_truncates_to_milliseconds() -> None:
    assert domain.to_ms(datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)).microsecond == 123000


@pytest.mark.parametrize(("stored", "status", "until", "action"), [
    ({}, "resolved", None, "resolved"),  # stored before statuses: open
    ({"status": "open"}, "open", None, None),
    ({"status": "open"}, "snoozed", T0 + timedelta(hours=1), "snoozed"),
    ({"status": "snoozed", "snoozed_until": T0 + timedelta(hours=1)}, "snoozed", T0 + timedelta(hours=1), None),
    ({"status": "snoozed", "snoozed_until": T0 + timedelta(hours=1)}, "snoozed", T0 + timedelta(hours=2), "snoozed"),
    ({"status": "snoozed", "snoozed_until": T0 + timedelta(hours=1)}, "resolved", None, "resolved"),
    ({"status": "resolved"}, "resolved", None, None),
    ({"status": "resolved"}, "open", None, "reopened"),
])
def test_status_change_names_the_activity_or_none(stored: dict[str, object], status: str,
                                                  until: datetime | None, action: str | None) -> None:
    assert domain.status_change(stored, status, until, T0) == action


@pytest.mark.parametrize(("status", "until"), [
    ("", None), ("closed", None), ("snoozed", None), ("snoozed", T0), ("snoozed", T0 - timedelta(seconds=1)),
    ("open", T0 + timedelta(hours=1)), ("resolved", T0 + timedelta(hours=1)),
])
def test_status_change_refuses_what_is_not_a_status_move(status: str, until: datetime | None) -> None:
    with pytest.raises(InvalidRequest):
        domain.status_change({"status": "open"}, status, until, T0)


def test_a_snooze_is_due_at_its_end_not_before() -> None:
    snoozed = {"status": "snoozed", "snoozed_until": T0}
    assert domain.snooze_due(snoozed, T0) and not domain.snooze_due(snoozed, T0 - timedelta(milliseconds=1))
    assert not domain.snooze_due({"status": "resolved", "snoozed_until": T0}, T0)
    assert not domain.snooze_due({}, T0)


@pytest.mark.parametrize(("stored", "origin", "direction", "applied", "reopens"), [
    ({"status": "resolved"}, "live", "in", False, True),
    ({"status": "snoozed"}, "live", "in", False, True),
    ({"status": "open"}, "live", "in", False, False),
    ({}, "live", "in", False, False),  # stored before statuses: open
    ({"status": "resolved"}, "history", "in", False, False),
    ({"status": "resolved"}, "echo", "out", False, False),
    ({"status": "resolved"}, "live", "out", False, False),
    ({"status": "resolved"}, "live", "in", True, False),  # a redelivery, counted already
])
def test_a_first_live_customer_message_reopens(stored: dict[str, object], origin: str, direction: str,
                                               applied: bool, reopens: bool) -> None:
    message = {"_id": "msg_1"}
    conversation = {**stored, "applied": ["msg_1"] if applied else []}
    effects = domain.message_effects(origin, direction, "text")
    assert inbound.reopens(conversation, message, effects) is reopens
    fields = inbound.message_change(conversation, {**message, "at": T0, "wamid": "w", "direction": direction},
                                    {"id": "msg_1", "at": T0}, effects, None)
    assert ("snoozed_until" in fields) is reopens  # reopening clears the snooze; healing (below) does not
    assert fields.get("status") == ("open" if reopens or not stored else None)


@pytest.mark.parametrize(("origin", "direction"), [("live", "in"), ("history", "in"), ("echo", "out")])
def test_any_message_gives_a_conversation_without_status_its_status(origin: str, direction: str) -> None:
    """A conversation made by a replica from before statuses (a rolling deploy, after the one-time backfill)
    is found by the status lists again from its next message on."""
    effects = domain.message_effects(origin, direction, "text")
    fields = inbound.message_change({"applied": ["msg_1"]}, {"_id": "msg_1", "at": T0, "wamid": "w",
                                                             "direction": direction},
                                    {"id": "msg_1", "at": T0}, effects, None)
    assert fields["status"] == "open"
