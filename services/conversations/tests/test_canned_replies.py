"""Canned replies' pure rules: rendering, the list's filter and what a valid reply is."""

from __future__ import annotations

import pytest

from inbox_conversations.canned_replies import (
    CannedReply,
    checked_shortcut,
    checked_text,
    checked_title,
    matching,
    render,
    values_for,
)
from inbox_core.errors import InvalidRequest


def test_render_fills_the_known_placeholders_and_empties_the_rest() -> None:
    values = values_for("  Ada   Lovelace ", "Omar")
    assert values == {"customer.name": "Ada   Lovelace", "customer.first_name": "Ada", "agent.name": "Omar"}
    text = "Hi {{customer.first_name}}! {{ agent.name }} here, for {{customer.name}}.{{order.number}}{{ nope }}"
    assert render(text, values) == "Hi Ada! Omar here, for Ada   Lovelace."
    assert render("Hi {{customer.first_name}},", values_for("", "Omar")) == "Hi ,"
    # Whatever stands in double braces is a placeholder: unknown ones never show their braces.
    assert render("{single} {{ two words }} {{}} {{{{agent.name}}}}", values) == "{single}   {{Omar}}"


def test_matching_is_a_case_insensitive_prefix_of_shortcut_or_title_sorted_by_shortcut() -> None:
    replies = [CannedReply("r1", "w", "thanks", "Thank you", "t"), CannedReply("r2", "w", "Ship", "Shipping", "s"),
               CannedReply("r3", "w", "hours", "Opening times", "h")]
    assert [r.id for r in matching(replies, "")] == ["r3", "r2", "r1"]
    assert [r.id for r in matching(replies, "/SH")] == ["r2"]
    assert [r.id for r in matching(replies, "open")] == ["r3"]
    assert [r.id for r in matching(replies, "th")] == ["r1"]
    assert matching(replies, "zzz") == []


def test_what_a_valid_reply_is() -> None:
    assert checked_shortcut(" /thanks ") == "thanks"
    for bad in ("", "/", "two words", "a/b", "x" * 33):
        with pytest.raises(InvalidRequest):
            checked_shortcut(bad)
    assert checked_title("  Hi  ") == "Hi"
    with pytest.raises(InvalidRequest):
        checked_title("t" * 101)
    with pytest.raises(InvalidRequest):
        checked_text("   ")
    with pytest.raises(InvalidRequest):
        checked_text("x" * 4097)
