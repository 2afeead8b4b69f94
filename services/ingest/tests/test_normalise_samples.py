"""Meta's own examples (tests/fixtures/meta-webhooks), each a fixture with its own expectations; samples in
another directory (``INBOX_WEBHOOK_SAMPLES``) get the generic checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from ingest_normalise_kit import (
    BSUID,
    CUSTOMER,
    DISPLAY,
    KEY,
    PNID,
    QUOTED,
    RECEIVED,
    SAMPLE_FILES,
    SAMPLES,
    STATUS,
    WABA,
    WAMID_A,
    WAMID_B,
    get,
    inbound,
    load,
    message_items,
    ts,
)

from inbox_core.events import Event, registered_types
from inbox_core.events.whatsapp import (
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    StatusUpdated,
)
from inbox_ingest.domain import normalise

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
