"""Normalisation of Meta webhook bodies into ``whatsapp.events.v1`` events (pure, no broker needed).

Every file in tests/fixtures/meta-webhooks (Meta's own examples) is a fixture with its own expectations;
``INBOX_WEBHOOK_SAMPLES`` points the suite at another directory (samples there get the generic checks).
"""

from __future__ import annotations

import copy
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inbox_core.events import Event, registered_types
from inbox_core.events.whatsapp import (
    ChangeUnhandled,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    MetaError,
    SendAccepted,
    SendFailed,
    StatusUpdated,
)
from inbox_ingest.domain import NormalisedEvent, NotAWebhook, normalise, normalise_raw, parse_body
from inbox_testkit.paths import META_WEBHOOK_SAMPLES

SAMPLES = (
    Path(os.environ["INBOX_WEBHOOK_SAMPLES"])
    if os.environ.get("INBOX_WEBHOOK_SAMPLES")
    else META_WEBHOOK_SAMPLES
)
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))

PNID = "106540352242922"
DISPLAY = "15550783881"
WABA = "102290129340398"
CUSTOMER = "16505551234"
WAMID_A = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
WAMID_B = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
QUOTED = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
BSUID = "user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6"
KEY = f"{PNID}:{CUSTOMER}"
RECEIVED = "whatsapp.message.received"
STATUS = "whatsapp.status.updated"


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def load(name_or_path: str | Path) -> dict[str, Any]:
    path = name_or_path if isinstance(name_or_path, Path) else SAMPLES / name_or_path
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def inbound(**fields: Any) -> dict[str, Any]:
    """The common fields of a live inbound message from Sheena Nelson on the example number."""
    return {
        "waba_id": WABA, "phone_number_id": PNID, "display_phone_number": DISPLAY, "field": "messages",
        "origin": "live", "direction": "in", "wa_id": CUSTOMER, "profile_name": "Sheena Nelson", **fields,
    }


# (type, key, {dotted path in the typed payload: expected value}) per event, in the body's order.
Expectation = list[tuple[str, str, dict[str, Any]]]
EXPECTED: dict[str, Expectation] = {
    "meta-docs-text.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="text", text="Does it come in another color?", timestamp=ts(1749416383),
            from_=CUSTOMER, user_id=None, context=None, media=None, errors=[],
        )),
    ],
    "meta-docs-text-referred_product.json": [
        (RECEIVED, KEY, inbound(
            waba_id="419561257915477",
            wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTA2NTUwRkNEMDdFQjJCRUU0NQA=", type="text",
            text="Is this still available?", timestamp=ts(1750016800),
            **{
                "context.message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA",
                "context.from_": DISPLAY,
                "context.forwarded": False,
                "context.referred_product": {"catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"},
            },
        )),
    ],
    "meta-docs-referral-ctwa.json": [
        (RECEIVED, KEY, inbound(
            wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUQ0N0VFMDA2MTQ0RkJFNkNDNAA=", type="text",
            text="Can I get more info about this?", timestamp=ts(1750275992),
            **{
                "referral.source_url": "https://fb.me/3cr4Wqqkv",
                "referral.source_id": "120226305854810726",
                "referral.source_type": "ad",
                "referral.body": "Summer Succulents are here!",
                "referral.headline": "Chat with us",
                "referral.media_type": "image",
                "referral.image_url": "https://scontent.xx.fbcdn.net/v/t45.1...",
                "referral.ctwa_clid": "Aff-n8ZTODiE79d22KtAwQKj9e_mIEOOj27vDVwFjN80dp4_0NiNhEgpGo0AHemvuSoifXaytf"
                "TzcchptiErTKCqTrJ5nW1h7IHYeYymGb5K5J5iTROpBhWAGaIAeUzHL50",
                "referral.welcome_message": {"text": "Hi there! Let us know how we can help!"},
            },
        )),
    ],
    "meta-docs-image.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="image", caption="Taj Mahal", text=None, timestamp=ts(1744344496),
            **{
                "media.media_id": "1003383421387256",
                "media.mime_type": "image/jpeg",
                "media.sha256": "SfInY0gGKTsJlUWbwxC1k+FAD0FZHvzwfpvO0zX0GUI=",
                "media.caption": "Taj Mahal",
                "media.url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=133...",
            },
        )),
    ],
    "meta-docs-video.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="video", caption="Timelapse of growth",
            **{"media.media_id": "731675419373506", "media.mime_type": "video/mp4"},
        )),
    ],
    "meta-docs-audio-voice.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="audio", caption=None,
            **{
                "media.media_id": "1908647269898587", "media.voice": True,
                "media.mime_type": "audio/ogg; codecs=opus",
            },
        )),
    ],
    "meta-docs-document.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="document", caption="my receipt",
            **{
                "media.media_id": "622684793477189", "media.filename": "receipt.pdf",
                "media.mime_type": "application/pdf",
            },
        )),
    ],
    "meta-docs-sticker.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="sticker",
            **{"media.media_id": "1908647269898587", "media.animated": True, "media.mime_type": "image/webp"},
        )),
    ],
    "meta-docs-location.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="location",
            **{
                "location.latitude": 37.44221496582, "location.longitude": -122.16165924072,
                "location.name": "Philz Coffee", "location.address": "101 Forest Ave, Palo Alto, CA 94301",
                "location.url": "https://philzcoffee.com/",
            },
        )),
    ],
    "meta-docs-contacts.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_A, type="contacts",
            **{
                "contacts.0.name.formatted_name": "Barbara J. Johnson",
                "contacts.0.org.company": "Social Tsunami",
                "contacts.0.phones.0.wa_id": "14125550829",
                "contacts.0.phones.0.phone": "+1 (415) 555-0829",
            },
        )),
    ],
    "meta-docs-order.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="order", timestamp=ts(1750096325),
            **{
                "order.catalog_id": "194836987003835", "order.text": "Love these!",
                "order.product_items.0.product_retailer_id": "di9ozbzfi4",
                "order.product_items.0.quantity": 2, "order.product_items.0.item_price": 30,
                "order.product_items.0.currency": "USD",
                "order.product_items.1.product_retailer_id": "nqryix03ez",
                "order.product_items.1.item_price": 25,
            },
        )),
    ],
    "meta-docs-unsupported.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="unsupported", unsupported={"type": "edit"},
            **{
                "errors.0.code": 131051, "errors.0.title": "Message type unknown",
                "errors.0.details": "Message type is currently not supported.",
            },
        )),
    ],
    "meta-docs-button-quick_reply.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="button", timestamp=ts(1750091045),
            **{
                "button.payload": "Unsubscribe", "button.text": "Unsubscribe",
                "context.message_id": QUOTED, "context.from_": DISPLAY,
            },
        )),
    ],
    "meta-docs-system-user_changed_number.json": [
        # No contacts array: no profile name, the customer is still known from "from".
        (RECEIVED, KEY, inbound(
            wamid="wamid.HBgLMTk4MzU1NTE5NzQVAgASGAoxMTgyMDg2MjY3AA==", type="system", profile_name=None,
            **{
                "system.type": "user_changed_number", "system.wa_id": "12195555358",
                "system.body": "User Sheena Nelson changed from 16505551234 to 12195555358",
            },
        )),
    ],
    "meta-docs-errors-130429.json": [
        ("whatsapp.webhook.error", f"{PNID}:", {
            "waba_id": WABA, "phone_number_id": PNID, "error.code": 130429, "error.title": "Rate limit hit",
            "error.details": "Message failed to send because there were too many messages sent from this "
            "phone number in a short period of time",
            "error.href": "/documentation/business-messaging/whatsapp/support/error-codes",
        }),
    ],
    "meta-docs-status-sent-pmp.json": [
        (STATUS, KEY, {
            "waba_id": WABA, "phone_number_id": PNID, "wamid": WAMID_B, "status": "sent",
            "timestamp": ts(1750030073), "recipient_id": CUSTOMER, "wa_id": CUSTOMER,
            "conversation.id": "72b14d6bd5407799e66f64d1b338e567",
            "conversation.origin": {"type": "marketing"},
            "pricing.pricing_model": "PMP", "pricing.category": "marketing", "pricing.billable": True,
            "errors": [],
        }),
    ],
    "meta-docs-status-sent-v24-no_conversation.json": [
        (STATUS, KEY, {"wamid": WAMID_B, "status": "sent", "conversation": None, "pricing": None}),
    ],
    "meta-docs-status-failed-131049.json": [
        (STATUS, KEY, {
            "wamid": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA", "status": "failed",
            "timestamp": ts(1751142888), "errors.0.code": 131049,
            "errors.0.details": "In order to maintain a healthy ecosystem engagement, the message failed "
            "to be delivered.",
        }),
    ],
    "meta-docs-status-delivered-cbp.json": [
        (STATUS, KEY, {
            "wamid": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MTE5MjVBOTE3MDk5QUVFM0YA", "status": "delivered",
            "conversation.origin": {"type": "service"}, "pricing.pricing_model": "CBP",
        }),
    ],
    "meta-docs-group-text.json": [
        # A group conversation is keyed by the group, so all of it stays in order on one partition.
        (RECEIVED, f"{PNID}:HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA", inbound(
            wamid="wamid.HASDI128HJOPUERIH82ahdasd09ASDHi5>", type="text", profile_name="Tiago Mingo",
            text="What does everyone think about this?",
            group_id="HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA",
        )),
    ],
    "meta-docs-message_template_status_update-approved.json": [
        ("whatsapp.template.status_changed", f"waba:{WABA}", {
            "waba_id": WABA, "phone_number_id": None, "field": "message_template_status_update",
            "event": "APPROVED", "message_template_id": "1689556908129832",
            "message_template_name": "order_confirmation", "message_template_language": "en-US",
            "reason": "NONE", "message_template_category": "UTILITY", "entry_time": ts(1751247548),
        }),
    ],
    "meta-docs-message_template_status_update-rejected.json": [
        ("whatsapp.template.status_changed", f"waba:{WABA}", {
            "event": "REJECTED", "message_template_id": "1689556908129835", "reason": "INVALID_FORMAT",
            "message_template_category": "MARKETING",
            "rejection_info.recommendation": "Separate parameters with descriptive text and ensure each "
            "parameter is clearly contextualized.",
        }),
    ],
    "meta-docs-message_template_quality_update.json": [
        # Meta's example carries field message_template_status_update: recognised by its content.
        ("whatsapp.template.quality_changed", f"waba:{WABA}", {
            "field": "message_template_status_update", "previous_quality_score": "GREEN",
            "new_quality_score": "YELLOW", "message_template_id": "806312974732579",
            "message_template_name": "welcome_template", "entry_time": ts(1674864290),
        }),
    ],
    "meta-docs-template_category_update.json": [
        ("whatsapp.template.category_changed", f"waba:{WABA}", {
            "new_category": "UTILITY", "correct_category": "MARKETING",
            "message_template_id": "278077987957091", "category_update_timestamp": ts(1746169200),
        }),
    ],
    "meta-docs-phone_number_quality_update.json": [
        ("whatsapp.phone_number.quality_changed", f"waba:{WABA}", {
            "display_phone_number": DISPLAY, "phone_number_id": None, "event": "THROUGHPUT_UPGRADE",
            "current_limit": "TIER_UNLIMITED", "entry_time": ts(1748454394),
        }),
    ],
    "meta-docs-smb_message_echoes.json": [
        # Sent by the business from the WhatsApp Business app: outbound, the customer is "to".
        (RECEIVED, KEY, {
            "field": "smb_message_echoes", "origin": "echo", "direction": "out", "wa_id": CUSTOMER,
            "from_": DISPLAY, "to": CUSTOMER, "type": "text", "timestamp": ts(1739321024),
            "wamid": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA",
            "text": "Here's the info you requested! https://www.meta.com/quest/quest-3/",
        }),
    ],
    "meta-docs-history-threads.json": [
        (RECEIVED, KEY, {
            "field": "history", "origin": "history", "direction": "out", "wa_id": CUSTOMER,
            "wamid": "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA", "type": "text",
            "history_status": "READ", "history": {"phase": 0, "chunk_order": 1, "progress": 55},
        }),
        (RECEIVED, KEY, {
            "origin": "history", "direction": "out", "type": "media_placeholder", "history_status": "PLAYED",
            "wamid": "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA",
        }),
        (RECEIVED, KEY, {
            "origin": "history", "direction": "in", "wa_id": CUSTOMER, "text": "Thanks!",
            "wamid": "wamid.N0FCNjMAHBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0",
        }),
        (RECEIVED, f"{PNID}:12125557890", {
            "origin": "history", "direction": "out", "wa_id": "12125557890", "history_status": "DELIVERED",
            "wamid": "wamid.BIyNDlBOEI5N0FCNjMAHBgLMTY0NjcwNDM1OTUVAgARGQUQ4NDc0",
        }),
    ],
    "meta-docs-history-media.json": [
        (RECEIVED, KEY, {
            "field": "history", "origin": "history", "direction": "in", "wa_id": CUSTOMER, "type": "image",
            "wamid": "wamid.QyNUEHBgLMTY0NjcwNDM1OTUVAgARGBI1Rj3NEYxMzAzMzQ5MkEA",
            "caption": "Black Prince echeveria", "media.media_id": "24230790383178626",
            "timestamp": ts(1738796547),
        }),
    ],
    "meta-docs-bsuid-text-empty_from.json": [
        (RECEIVED, f"{PNID}:user.93737...", {
            "wa_id": "", "user_id": "user.93737...", "from_user_id": "user.93737...", "from_": None,
            "profile_name": "Sheena Nelson", "username": "@realsheenanelson", "type": "text",
            "text": "Does it come in another color?", "wamid": WAMID_A,
        }),
    ],
    "meta-docs-bsuid-status-delivered.json": [
        (STATUS, KEY, {
            "wamid": WAMID_B, "status": "delivered", "recipient_id": CUSTOMER, "wa_id": CUSTOMER,
            "user_id": BSUID, "recipient_user_id": None, "pricing.pricing_model": "PMP", "conversation": None,
        }),
    ],
    "meta-docs-bsuid-status-delivered-to_bsuid.json": [
        (STATUS, f"{PNID}:{BSUID}", {
            "wamid": WAMID_B, "status": "delivered", "recipient_id": "", "wa_id": "",
            "recipient_user_id": BSUID, "user_id": BSUID,
        }),
    ],
    "meta-docs-interactive-list_reply.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="interactive",
            **{
                "interactive.type": "list_reply", "interactive.id": "priority_express",
                "interactive.title": "Priority Mail Express", "interactive.description": "Next Day to 2 Days",
                "context.message_id": QUOTED,
            },
        )),
    ],
    "meta-docs-interactive-button_reply.json": [
        (RECEIVED, KEY, inbound(
            wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=", type="interactive",
            **{
                "interactive.type": "button_reply", "interactive.id": "cancel-button",
                "interactive.title": "Cancel",
                "context.message_id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA",
            },
        )),
    ],
    "meta-docs-reaction.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="reaction",
            **{"reaction.message_id": QUOTED, "reaction.emoji": "\U0001f44d", "reaction.removed": False},
        )),
    ],
    "meta-docs-reaction-removed.json": [
        (RECEIVED, KEY, inbound(
            wamid=WAMID_B, type="reaction",
            **{"reaction.message_id": QUOTED, "reaction.emoji": "", "reaction.removed": True},
        )),
    ],
    "meta-docs-edit.json": [
        ("whatsapp.message.edited", KEY, inbound(
            wamid=WAMID_B, original_message_id=QUOTED, timestamp=ts(1749854575),
            **{
                "message.type": "image", "message.caption": "Updated image caption",
                "message.media.media_id": "1234567890",
                "message.media.url": "https://media.example.com/updated-image.jpg",
                "message.context.message_id": "M0",
            },
        )),
    ],
    "meta-docs-revoke.json": [
        ("whatsapp.message.revoked", KEY, inbound(wamid=WAMID_B, original_message_id=QUOTED)),
    ],
}


def get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(obj, dict):
            obj = obj[part]
        elif isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = getattr(obj, part)
    return obj


def message_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message-shaped object (messages, echoes, history, statuses) anywhere in a body."""
    found: list[dict[str, Any]] = []
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            for key in ("messages", "message_echoes", "statuses"):
                found.extend(value.get(key, []))
            for chunk in value.get("history", []):
                for thread in chunk.get("threads", []):
                    found.extend(thread.get("messages", []))
    return found


# --- Meta's own examples -----------------------------------------------------------------------------


def test_samples_are_there() -> None:
    assert SAMPLE_FILES, f"no webhook samples in {SAMPLES}"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_is_normalised_without_loss(path: Path) -> None:
    body = load(path)
    events = normalise(body)
    assert events
    for ne in events:
        assert ne.event.type in registered_types()
        assert ne.event.workspace_id is None
        # A Meta example is always fully modelled: nothing lands in the catch-all.
        assert ne.event.type != "whatsapp.change.unhandled", ne.event.data
        # The envelope survives the wire, and its data reads back as its model.
        again = Event.from_bytes(ne.event.to_bytes())
        assert again == ne.event
        assert again.payload().model_dump() == ne.event.payload().model_dump()
    # Every message and status object is kept whole in some event's raw.
    raws = [ne.event.data.get("raw") for ne in events]
    for item in message_items(body):
        assert item in raws
    # Every non-message change value is kept whole too.
    values = [ne.event.data.get("value") for ne in events]
    for entry in body["entry"]:
        for change in entry["changes"]:
            if change["field"] not in ("messages", "history", "smb_message_echoes"):
                assert change["value"] in values


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_content(path: Path) -> None:
    if path.name not in EXPECTED:
        pytest.skip(f"no written expectations for {path.name} (generic checks only)")
    events = normalise(load(path))
    expected = EXPECTED[path.name]
    assert [ne.event.type for ne in events] == [t for t, _, _ in expected]
    for ne, (_, key, fields) in zip(events, expected, strict=True):
        assert ne.key == key
        payload = ne.event.payload()
        for field_path, value in fields.items():
            assert get(payload, field_path) == value, field_path


def test_every_default_sample_has_expectations() -> None:
    if os.environ.get("INBOX_WEBHOOK_SAMPLES"):
        pytest.skip("samples directory overridden")
    assert {p.name for p in SAMPLE_FILES} == set(EXPECTED)


def test_sample_payload_types() -> None:
    edited = normalise(load("meta-docs-edit.json"))[0].event.payload()
    assert isinstance(edited, MessageEdited)
    assert isinstance(normalise(load("meta-docs-revoke.json"))[0].event.payload(), MessageRevoked)
    received = normalise(load("meta-docs-text.json"))[0].event.payload()
    assert isinstance(received, MessageReceived)
    assert received.timestamp.tzinfo is not None
    assert received.raw == load("meta-docs-text.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert isinstance(normalise(load("meta-docs-status-sent-pmp.json"))[0].event.payload(), StatusUpdated)


def test_occurred_at_is_metas_timestamp() -> None:
    (ne,) = normalise(load("meta-docs-text.json"))
    assert ne.event.occurred_at == ts(1749416383)
    (tpl,) = normalise(load("meta-docs-message_template_status_update-approved.json"))
    assert tpl.event.occurred_at == ts(1751247548)


def test_context_serialises_from_as_from() -> None:
    (ne,) = normalise(load("meta-docs-button-quick_reply.json"))
    assert ne.event.data["context"]["from"] == DISPLAY
    assert ne.event.data["from"] == CUSTOMER
    assert "from_" not in ne.event.data


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
