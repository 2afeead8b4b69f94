"""Whatever JSON arrives, the normaliser gives a list of events or raises NotAWebhook (property tests)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ingest_normalise_kit import (
    SAMPLE_FILES,
    load,
)

from inbox_ingest.domain import NormalisedEvent, NotAWebhook, normalise

# --- never anything but a list or NotAWebhook ---------------------------------------------------------

_KEYS = st.sampled_from([
    "object", "entry", "id", "time", "changes", "field", "value", "metadata", "phone_number_id",
    "display_phone_number", "contacts", "wa_id", "user_id", "profile", "messages", "message_echoes",
    "statuses", "errors", "history", "threads", "from", "to", "from_user_id", "timestamp", "type", "text",
    "body", "image", "context", "reaction", "emoji", "interactive", "nfm_reply", "response_json", "status",
    "recipient_id", "recipient_type", "event", "code", "error_data", "edit", "revoke", "message",
]) | st.text(max_size=8)
_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["whatsapp_business_account", "messages", "history", "smb_message_echoes", "text",
                       "image", "edit", "revoke", "nfm_reply", "1750000000", "group", "user.x", ""])
)
JSONISH = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=5), max_leaves=40
)
SAMPLE_BODIES = [load(p) for p in SAMPLE_FILES]


def _check(body: Any) -> None:
    try:
        events = normalise(body)
    except NotAWebhook:
        return
    assert isinstance(events, list)
    for ne in events:
        assert isinstance(ne, NormalisedEvent)
        assert isinstance(ne.key, str)
        ne.event.to_bytes()
        ne.event.payload()


@given(JSONISH)
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_json_gives_a_list_or_not_a_webhook(body: Any) -> None:
    _check(body)


@given(st.dictionaries(_KEYS, JSONISH, max_size=3), st.lists(JSONISH, max_size=3))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_webhook_shaped_json_gives_a_list(extra: dict[str, Any], entries: list[Any]) -> None:
    _check({**extra, "object": "whatsapp_business_account", "entry": entries})


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.extend(_paths(v, (*prefix, k)))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out.extend(_paths(v, (*prefix, i)))
    return out


@given(st.data())
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
def test_mutated_samples_give_a_list(data: st.DataObject) -> None:
    if not SAMPLE_BODIES:
        return
    body = copy.deepcopy(data.draw(st.sampled_from(SAMPLE_BODIES)))
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(_paths(body)[1:]))
        parent = body
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()) and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = data.draw(JSONISH)
        if not _paths(body)[1:]:
            break
    _check(body)
