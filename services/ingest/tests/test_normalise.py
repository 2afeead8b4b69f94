"""Normalisation of Meta webhook bodies into ``whatsapp.events.v1`` events (pure, no broker needed): ids and
duplicates, batches, origins and identity, what is kept, what is not a webhook, send results."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from ingest_normalise_kit import (
    CUSTOMER,
    DISPLAY,
    KEY,
    PNID,
    RECEIVED,
    SAMPLE_FILES,
    SAMPLES,
    STATUS,
    WABA,
    WAMID_A,
    WAMID_B,
    load,
    ts,
)

from inbox_core.events import Event
from inbox_core.events.whatsapp import (
    ChangeUnhandled,
    MessageReceived,
    MetaError,
    SendAccepted,
    SendFailed,
)
from inbox_ingest.domain import NotAWebhook, normalise, normalise_raw, parse_body

# --- ids and duplicates ------------------------------------------------------------------------------


def test_duplicate_delivery_gives_identical_ids() -> None:
    for path in SAMPLE_FILES:
        body = load(path)
        first = [(ne.key, ne.event.id, ne.event.type) for ne in normalise(body)]
        second = [(ne.key, ne.event.id, ne.event.type) for ne in normalise(copy.deepcopy(body))]
        assert first == second, path.name


def test_ids_follow_the_scheme() -> None:
    import uuid

    from inbox_ingest.domain.envelope import ID_NAMESPACE

    (msg,) = normalise(load("meta-docs-text.json"))
    assert msg.event.id == uuid.uuid5(ID_NAMESPACE, f"message:{WAMID_A}").hex
    (status,) = normalise(load("meta-docs-status-sent-pmp.json"))
    assert status.event.id == uuid.uuid5(ID_NAMESPACE, f"status:{WAMID_B}:sent").hex
    (edit,) = normalise(load("meta-docs-edit.json"))
    assert edit.event.id == uuid.uuid5(ID_NAMESPACE, f"edit:{WAMID_B}").hex


def test_each_status_of_a_message_is_its_own_fact() -> None:
    body = load("meta-docs-status-sent-pmp.json")
    ids = set()
    for status in ("sent", "delivered", "read", "failed"):
        b = copy.deepcopy(body)
        b["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] = status
        ids.add(normalise(b)[0].event.id)
    assert len(ids) == 4
    # The same fact in another webhook shape (v24, no conversation) is the same event.
    assert normalise(body)[0].event.id == normalise(load("meta-docs-status-sent-v24-no_conversation.json"))[0].event.id


def test_history_placeholder_and_its_media_do_not_dedupe_into_one() -> None:
    placeholder = normalise(load("meta-docs-history-threads.json"))[1]
    media = normalise(load("meta-docs-history-media.json"))[0]
    assert placeholder.event.data["wamid"] == media.event.data["wamid"]
    assert placeholder.event.id != media.event.id


def test_distinct_template_updates_get_distinct_ids() -> None:
    approved = normalise(load("meta-docs-message_template_status_update-approved.json"))[0]
    body = load("meta-docs-message_template_status_update-approved.json")
    body["entry"][0]["time"] = 1751247999
    later = normalise(body)[0]
    assert approved.event.id != later.event.id


# --- batches --------------------------------------------------------------------------------------------


def _message(wamid: str, sender: str, body: str, timestamp: Any = "1750000000") -> dict[str, Any]:
    return {"from": sender, "id": wamid, "timestamp": timestamp, "type": "text", "text": {"body": body}}


def _status(wamid: str, status: str, recipient: str) -> dict[str, Any]:
    return {"id": wamid, "status": status, "timestamp": "1750000001", "recipient_id": recipient}


def _batch() -> dict[str, Any]:
    entries = []
    for e in range(2):
        changes = []
        for c in range(2):
            pnid = f"PN{e}{c}"
            changes.append({
                "field": "messages",
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": f"1555000{e}{c}", "phone_number_id": pnid},
                    # Contacts in another order than the messages: matched by wa_id, not by position.
                    "contacts": [
                        {"profile": {"name": "Bob"}, "wa_id": "222"},
                        {"profile": {"name": "Ann"}, "wa_id": "111"},
                    ],
                    "messages": [
                        _message(f"wamid.m{e}{c}0", "111", "hi from Ann"),
                        _message(f"wamid.m{e}{c}1", "222", "hi from Bob"),
                        _message(f"wamid.m{e}{c}2", "111", "Ann again"),
                    ],
                    "statuses": [
                        _status(f"wamid.s{e}{c}", "delivered", "111"),
                        _status(f"wamid.s{e}{c}", "read", "111"),
                    ],
                },
            })
        entries.append({"id": f"WABA{e}", "changes": changes})
    return {"object": "whatsapp_business_account", "entry": entries}


def test_batch_gives_every_entry_change_message_and_status() -> None:
    events = normalise(_batch())
    assert len(events) == 2 * 2 * (3 + 2)
    messages = [ne for ne in events if ne.event.type == RECEIVED]
    statuses = [ne for ne in events if ne.event.type == STATUS]
    assert {ne.event.data["wamid"] for ne in messages} == {
        f"wamid.m{e}{c}{i}" for e in "01" for c in "01" for i in "012"
    }
    assert {(ne.event.data["wamid"], ne.event.data["status"]) for ne in statuses} == {
        (f"wamid.s{e}{c}", s) for e in "01" for c in "01" for s in ("delivered", "read")
    }
    for ne in messages:
        data = ne.event.data
        assert data["profile_name"] == {"111": "Ann", "222": "Bob"}[data["wa_id"]]
        assert ne.key == f"{data['phone_number_id']}:{data['wa_id']}"
        assert data["waba_id"] == f"WABA{data['phone_number_id'][2]}"
    assert len({ne.event.id for ne in events}) == len(events)


def test_message_missing_its_id_does_not_lose_the_batch() -> None:
    body = _batch()
    value = body["entry"][0]["changes"][1]["value"]
    broken = {"from": "111", "timestamp": "1750000000", "type": "text", "text": {"body": "no id"}}
    value["messages"].insert(1, broken)
    value["messages"].append({**_message("wamid.badts", "111", "bad time"), "timestamp": "yesterday"})
    value["messages"].append("not even an object")
    events = normalise(body)
    assert len(events) == 20 + 3
    unhandled = [ne for ne in events if ne.event.type == "whatsapp.change.unhandled"]
    assert [u.event.data["reason"] for u in unhandled] == [
        "message without id", "message timestamp missing or invalid", "message is not an object",
    ]
    first = unhandled[0].event.payload()
    assert isinstance(first, ChangeUnhandled)
    assert first.value == broken
    assert first.phone_number_id == "PN01"
    assert unhandled[0].key == "PN01:111"
    assert sum(ne.event.type == RECEIVED for ne in events) == 12


def test_statuses_without_id_or_status_are_kept() -> None:
    body = load("meta-docs-status-sent-pmp.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["statuses"].append({"status": "read", "timestamp": "1", "recipient_id": CUSTOMER})
    events = normalise(body)
    assert [ne.event.type for ne in events] == [STATUS, "whatsapp.change.unhandled"]
    assert events[1].event.data["reason"] == "status without id or status"
    assert events[1].key == KEY


def test_broken_entries_and_changes_do_not_lose_the_others() -> None:
    good = load("meta-docs-text.json")["entry"][0]
    body = {
        "object": "whatsapp_business_account",
        "entry": [
            "junk",
            {"id": WABA},
            {"id": WABA, "changes": ["junk", {"field": "messages", "value": []}, *good["changes"]]},
            good,
        ],
    }
    events = normalise(body)
    assert [ne.event.type for ne in events] == ["whatsapp.change.unhandled"] * 4 + [RECEIVED] * 2
    assert [ne.event.data.get("reason") for ne in events[:4]] == [
        "entry is not an object", "entry has no changes list", "change is not an object",
        "change value is not an object",
    ]


# --- origins, directions, identity ----------------------------------------------------------------


def test_history_is_never_live_inbound() -> None:
    for name in ("meta-docs-history-threads.json", "meta-docs-history-media.json"):
        for ne in normalise(load(name)):
            assert ne.event.data["origin"] == "history"
            assert ne.event.data["field"] == "history"


def test_history_with_bsuid_thread_and_errors() -> None:
    body = load("meta-docs-history-threads.json")
    history = body["entry"][0]["changes"][0]["value"]["history"]
    history[0]["threads"][1]["id"] = "user.abc"
    history[0]["threads"][1]["messages"][0]["from"] = DISPLAY
    history.append({"errors": [{"code": 2593109, "title": "History sharing declined"}]})
    events = normalise(body)
    assert events[3].key == f"{PNID}:user.abc"
    assert events[3].event.data["user_id"] == "user.abc"
    assert events[3].event.data["direction"] == "out"
    assert events[4].event.type == "whatsapp.webhook.error"
    assert events[4].event.data["error"]["code"] == 2593109


def test_echoes_are_outbound() -> None:
    (ne,) = normalise(load("meta-docs-smb_message_echoes.json"))
    assert ne.event.data["direction"] == "out"
    assert ne.event.data["origin"] == "echo"
    assert ne.key == KEY


def test_bsuid_only_contact_is_keyed_by_user_id() -> None:
    (ne,) = normalise(load("meta-docs-bsuid-text-empty_from.json"))
    assert ne.event.data["wa_id"] == ""
    assert ne.key == f"{PNID}:user.93737..."


def test_contact_is_matched_by_user_id_among_several() -> None:
    body = load("meta-docs-bsuid-text-empty_from.json")
    value = body["entry"][0]["changes"][0]["value"]
    value["contacts"].insert(0, {"profile": {"name": "Someone else"}, "wa_id": "19990000000"})
    (ne,) = normalise(body)
    assert ne.event.data["profile_name"] == "Sheena Nelson"
    assert ne.event.data["username"] == "@realsheenanelson"


def test_unmatched_contact_is_not_attached_by_position() -> None:
    body = load("meta-docs-text.json")
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = "19990000000"
    (ne,) = normalise(body)
    assert ne.event.data["wa_id"] == CUSTOMER
    assert ne.event.data["profile_name"] is None


@pytest.mark.parametrize("stamp", ["1749416383", 1749416383, 1749416383.0, " 1749416383 ", "2025-06-08T20:59:43Z"])
def test_timestamps_as_strings_or_numbers(stamp: Any) -> None:
    body = load("meta-docs-text.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = stamp
    (ne,) = normalise(body)
    assert ne.event.payload().timestamp == ts(1749416383)  # type: ignore[attr-defined]


@pytest.mark.parametrize("stamp", [None, True, "soon", float("nan"), 10**30, [], {}])
def test_bad_timestamps_make_an_unhandled_event(stamp: Any) -> None:
    body = load("meta-docs-text.json")
    body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = stamp
    (ne,) = normalise(body)
    assert ne.event.type == "whatsapp.change.unhandled"


# --- unknown things are kept -----------------------------------------------------------------------


def test_unknown_message_type_is_kept() -> None:
    body = load("meta-docs-text.json")
    msg = body["entry"][0]["changes"][0]["value"]["messages"][0]
    msg.update({"type": "hologram", "hologram": {"id": "h1"}, "brand_new_field": [1, 2]})
    del msg["text"]
    (ne,) = normalise(body)
    assert ne.event.type == RECEIVED
    assert ne.event.data["type"] == "hologram"
    assert ne.event.data["raw"]["hologram"] == {"id": "h1"}
    assert ne.event.data["raw"]["brand_new_field"] == [1, 2]


def test_unknown_field_is_kept_whole() -> None:
    value = {"phone_number": "15550783881", "event": "VERIFIED_ACCOUNT"}
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA, "time": 1, "changes": [{"field": "account_update", "value": value}]}],
    }
    (ne,) = normalise(body)
    assert ne.event.type == "whatsapp.change.unhandled"
    assert ne.event.data["field"] == "account_update"
    assert ne.event.data["value"] == value
    assert ne.key == f"waba:{WABA}"


def test_unknown_value_keys_are_kept() -> None:
    body = load("meta-docs-text.json")
    body["entry"][0]["changes"][0]["value"]["calls"] = [{"id": "c1"}]
    events = normalise(body)
    assert [ne.event.type for ne in events] == [RECEIVED, "whatsapp.change.unhandled"]
    assert events[1].event.data["value"]["calls"] == [{"id": "c1"}]
    assert "calls" in events[1].event.data["reason"]


def test_empty_messages_change_is_kept() -> None:
    body = load("meta-docs-text.json")
    del body["entry"][0]["changes"][0]["value"]["messages"]
    (ne,) = normalise(body)
    assert ne.event.type == "whatsapp.change.unhandled"
    assert ne.event.data["value"]["contacts"][0]["wa_id"] == CUSTOMER


def test_flow_reply() -> None:
    body = load("meta-docs-interactive-button_reply.json")
    msg = body["entry"][0]["changes"][0]["value"]["messages"][0]
    msg["interactive"] = {
        "type": "nfm_reply",
        "nfm_reply": {"name": "flow", "body": "Sent", "response_json": '{"flow_token": "t", "size": "M"}'},
    }
    (ne,) = normalise(body)
    payload = ne.event.payload()
    assert isinstance(payload, MessageReceived)
    assert payload.interactive is not None and payload.interactive.flow is not None
    assert payload.interactive.type == "nfm_reply"
    assert payload.interactive.flow.response == {"flow_token": "t", "size": "M"}
    assert payload.interactive.flow.body == "Sent"


def test_forwarded_context() -> None:
    body = load("meta-docs-text.json")
    msg = body["entry"][0]["changes"][0]["value"]["messages"][0]
    msg["context"] = {"forwarded": True, "frequently_forwarded": True}
    (ne,) = normalise(body)
    assert ne.event.data["context"]["forwarded"] is True
    assert ne.event.data["context"]["frequently_forwarded"] is True
    assert ne.event.data["context"]["message_id"] is None


def test_group_status_is_keyed_by_the_group() -> None:
    body = load("meta-docs-status-sent-pmp.json")
    status = body["entry"][0]["changes"][0]["value"]["statuses"][0]
    status.update({"recipient_type": "group", "recipient_id": "G1"})
    (ne,) = normalise(body)
    assert ne.key == f"{PNID}:G1"
    assert ne.event.data["group_id"] == "G1"
    assert ne.event.data["wa_id"] == ""


# --- not a webhook ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        None, [], "x", 1, {}, {"object": "page", "entry": []}, {"object": "whatsapp_business_account"},
        {"object": "whatsapp_business_account", "entry": {}}, {"entry": []},
    ],
)
def test_not_a_webhook(body: Any) -> None:
    with pytest.raises(NotAWebhook):
        normalise(body)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000, '"text"'])
def test_raw_body_that_is_not_a_webhook(raw: bytes | str) -> None:
    with pytest.raises(NotAWebhook):
        normalise_raw(raw)


def test_raw_body() -> None:
    raw = (SAMPLES / "meta-docs-text.json").read_bytes()
    assert parse_body(raw) == load("meta-docs-text.json")
    assert [ne.event.id for ne in normalise_raw(raw)] == [ne.event.id for ne in normalise(load("meta-docs-text.json"))]


def test_empty_entry_list_is_a_webhook_with_nothing_in_it() -> None:
    assert normalise({"object": "whatsapp_business_account", "entry": []}) == []


# --- send results -------------------------------------------------------------------------------------


def test_send_result_models() -> None:
    accepted = Event.of(SendAccepted(command_id="c1", phone_number_id=PNID, wa_id=CUSTOMER, wamid="wamid.X"))
    assert accepted.type == "whatsapp.send.accepted"
    assert Event.from_bytes(accepted.to_bytes()).payload() == SendAccepted(
        command_id="c1", phone_number_id=PNID, wa_id=CUSTOMER, wamid="wamid.X"
    )
    error = MetaError(code=131047, title="Re-engagement message", message="m", details="d")
    failed = Event.of(SendFailed(command_id="c2", phone_number_id=PNID, wa_id=CUSTOMER, error=error))
    assert failed.type == "whatsapp.send.failed"
    payload = Event.from_bytes(failed.to_bytes()).payload()
    assert isinstance(payload, SendFailed)
    assert payload.error.code == 131047
