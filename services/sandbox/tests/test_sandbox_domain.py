"""Unit tests of the sandbox's pure rules: ids, the window, signatures, validation, webhook bodies, files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import struct
import zlib
from typing import Any

import pytest
from sandbox_testkit import sample, shape

from inbox_sandbox import files
from inbox_sandbox.catalog import builtin_templates
from inbox_sandbox.domain import graph_errors, ids, pagination, pricing, sends, signing, simulator, templating, webhooks
from inbox_testkit.paths import META_WEBHOOK_SAMPLES

SAMPLES = META_WEBHOOK_SAMPLES
BUSINESS = webhooks.Business("106540352242922", "15550783881", "102290129340398")


def test_wamids_carry_the_customer_and_direction_like_meta_s() -> None:
    rng = random.Random(7)
    inbound = ids.new_wamid("16505551234", inbound=True, rng=rng)
    outbound = ids.new_wamid("16505551234", inbound=False, rng=rng)
    raw_in = base64.b64decode(inbound.removeprefix("wamid."))
    raw_out = base64.b64decode(outbound.removeprefix("wamid."))
    # Same layout as the wamids in Meta's examples (see webhook-samples): number, direction, key.
    assert raw_in.startswith(b"\x1c\x18\x0b16505551234\x15\x02\x00\x12\x18\x14")
    assert raw_in[-21:-19] == b"3A" and raw_in.endswith(b"\x00")
    assert raw_out.startswith(b"\x1c\x18\x0b16505551234\x15\x02\x00\x11\x18\x12")
    example = base64.b64decode(sample("meta-docs-text.json")["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
                               .removeprefix("wamid."))
    assert len(example) == len(raw_in)
    assert len({ids.new_wamid("1", inbound=True, rng=rng) for _ in range(500)}) == 500


def test_the_window_is_24_hours_from_the_last_inbound_message() -> None:
    now = 1_750_000_000
    assert not pricing.window_open(None, now)
    assert pricing.window_open(now - 1, now)
    assert pricing.window_open(now - pricing.WINDOW_S + 1, now)
    assert not pricing.window_open(now - pricing.WINDOW_S, now)
    assert not pricing.window_open(now - 25 * 3600, now)


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    expected = hmac.new(b"app-secret", body, hashlib.sha256).hexdigest()
    assert signing.signature("app-secret", body) == f"sha256={expected}"
    assert signing.signature("app-secret", body + b" ") != signing.signature("app-secret", body)


def test_bodies_are_serialised_as_meta_does() -> None:
    payload = {"text": {"body": "äöå / 👍"}, "url": "https://x.example/a"}
    raw = signing.meta_json(payload)
    assert raw.isascii()
    assert b"\\u00e4\\u00f6\\u00e5" in raw and b"\\ud83d\\udc4d" in raw
    assert b"https:\\/\\/x.example\\/a" in raw
    assert b": " not in raw and b", " not in raw
    assert json.loads(raw) == payload


def test_billing_follows_per_message_pricing() -> None:
    assert pricing.billing_for(None, True).pricing() == {
        "billable": False, "pricing_model": "PMP", "type": "free_customer_service", "category": "service"}
    assert pricing.billing_for("UTILITY", True) == pricing.Billing("utility", False, "free_customer_service")
    assert pricing.billing_for("UTILITY", False) == pricing.Billing("utility", True, "regular")
    assert pricing.billing_for("MARKETING", True) == pricing.Billing("marketing", True, "regular")


@pytest.mark.parametrize(("body", "code"), [
    ([], 100),
    ({"to": "1", "type": "text", "text": {"body": "x"}}, 100),
    ({"messaging_product": "whatsapp", "type": "text", "text": {"body": "x"}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "carousel"}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "text"}, 131008),
    ({"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": ""}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "text", "text": {"body": "x" * 4097}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {"id": "1", "link": "https://a"}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "image", "image": {"caption": "no file"}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "audio", "audio": {"id": "1", "caption": "x"}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "reaction", "reaction": {"emoji": "x"}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "recipient_type": "group", "type": "text",
      "text": {"body": "x"}}, 131009),
    ({"messaging_product": "whatsapp", "status": "read"}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "template", "template": {"name": "hello_world"}}, 100),
    ({"messaging_product": "whatsapp", "to": "1", "type": "template",
      "template": {"name": "hello_world", "language": {"code": "de"}}}, 132001),
])
def test_invalid_sends_are_refused_with_meta_s_codes(body: Any, code: int) -> None:
    with pytest.raises(graph_errors.GraphError) as refused:
        sends.parse_messages_request(body, builtin_templates())
    assert refused.value.code == code
    assert refused.value.http_status == 400
    error = refused.value.body("trace")["error"]
    assert error["message"].startswith(f"(#{code})")
    assert error["error_data"]["messaging_product"] == "whatsapp"


def test_sends_and_read_receipts_are_parsed() -> None:
    send = sends.parse_messages_request(
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "+1 (650) 555-1234", "type": "text",
         "text": {"body": "hi"}, "context": {"message_id": "wamid.X"}, "biz_opaque_callback_data": "tracking-1"},
        [])
    assert isinstance(send, sends.Send)
    assert send.recipient == sends.Recipient("+1 (650) 555-1234", "16505551234", None)
    assert send.context_message_id == "wamid.X"
    assert send.biz_opaque_callback_data == "tracking-1"
    assert sends.send_response(send, "wamid.Y") == {
        "messaging_product": "whatsapp", "contacts": [{"input": "+1 (650) 555-1234", "wa_id": "16505551234"}],
        "messages": [{"id": "wamid.Y"}]}
    to_bsuid = sends.parse_messages_request(
        {"messaging_product": "whatsapp", "to": "US.13491208655302741918", "type": "text", "text": {"body": "hi"}}, [])
    assert isinstance(to_bsuid, sends.Send)
    assert sends.send_response(to_bsuid, "wamid.Z")["contacts"] == [
        {"input": "US.13491208655302741918", "wa_id": "", "user_id": "US.13491208655302741918"}]
    read = sends.parse_messages_request(
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.A",
         "typing_indicator": {"type": "text"}}, [])
    assert read == sends.MarkRead("wamid.A", True)


def _template_send(name: str, code: str, components: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    template: dict[str, Any] = {"name": name, "language": {"code": code}}
    if components is not None:
        template["components"] = components
    return {"messaging_product": "whatsapp", "to": "16505551234", "type": "template", "template": template}


def test_template_parameters_are_checked_against_the_template() -> None:
    templates = builtin_templates()

    def code_of(body: dict[str, Any]) -> int | None:
        try:
            sends.parse_messages_request(body, templates)
        except graph_errors.GraphError as error:
            return error.code
        return None

    body = [{"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "#1"}]}]
    assert code_of(_template_send("hello_world", "en_US")) is None
    assert code_of(_template_send("order_update", "en_US", body)) is None
    assert code_of(_template_send("order_update", "es", body)) is None
    assert code_of(_template_send("order_update", "en_US", body[:0])) == 132000
    one_param = [{"type": "body", "parameters": body[0]["parameters"][:1]}]
    assert code_of(_template_send("order_update", "en_US", one_param)) == 132000
    named = [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "first_name", "text": "Pablo"},
        {"type": "text", "parameter_name": "discount", "text": "25%"},
        {"type": "text", "parameter_name": "discount_code", "text": "WELCOME25"}]}]
    assert code_of(_template_send("summer_sale", "en_US", named)) is None
    wrong_name = json.loads(json.dumps(named))
    wrong_name[0]["parameters"][2]["parameter_name"] = "code"
    assert code_of(_template_send("summer_sale", "en_US", wrong_name)) == 132000
    arrivals = [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "123"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "spring"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "spring"}]},
    ]
    assert code_of(_template_send("new_arrivals", "en_US", arrivals)) is None
    assert code_of(_template_send("new_arrivals", "en_US", arrivals[1:])) == 132012
    assert code_of(_template_send("new_arrivals", "en_US", arrivals[:2])) == 132000
    assert code_of(_template_send("abandoned_cart", "en", [])) == 132001  # rejected, so not sendable


def test_templates_render_what_the_customer_reads() -> None:
    templates = builtin_templates()
    order = templating.find_template(templates, "order_update", "en_US")
    sale = templating.find_template(templates, "summer_sale", "en_US")
    assert order is not None and sale is not None
    text = templating.render_template(order, [{"type": "body", "parameters": [
        {"type": "text", "text": "Pablo"}, {"type": "text", "text": "#1042"}]}])
    assert text.startswith("Hi Pablo, your order #1042 is on its way.")
    text = templating.render_template(sale, [{"type": "body", "parameters": [
        {"type": "text", "parameter_name": "discount_code", "text": "W25"},
        {"type": "text", "parameter_name": "first_name", "text": "Ana"},
        {"type": "text", "parameter_name": "discount", "text": "25%"}]}])
    assert "Hi Ana! Take 25% off everything with the code W25" in text


def test_status_webhooks_have_the_shape_of_meta_s() -> None:
    rng = random.Random(1)
    recipient = sends.Recipient("16505551234", "16505551234", None)
    billing = pricing.billing_for("MARKETING", False)
    common = {"wamid": "wamid.A", "timestamp": 1750030073, "recipient": recipient, "billing": billing,
              "conversation_id": ids.new_conversation_id(rng), "conversation_expires": 1750116480}
    sent = webhooks.status_webhook(BUSINESS, webhooks.StatusInfo(status="sent", **common))
    assert shape(sent) == shape(sample("meta-docs-status-sent-pmp.json"))
    delivered = webhooks.status_webhook(BUSINESS, webhooks.StatusInfo(status="delivered", **common))
    status = delivered["entry"][0]["changes"][0]["value"]["statuses"][0]
    assert "expiration_timestamp" not in status["conversation"] and status["pricing"]["category"] == "marketing"
    read = webhooks.status_webhook(BUSINESS, webhooks.StatusInfo(status="read", **common))
    assert shape(read) == shape(sample("meta-docs-status-sent-v24-no_conversation.json"))
    failed = webhooks.status_webhook(BUSINESS, webhooks.StatusInfo(
        status="failed", errors=(graph_errors.status_error(131049),), **common))
    assert shape(failed) == shape(sample("meta-docs-status-failed-131049.json"))
    assert failed["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0] == (
        sample("meta-docs-status-failed-131049.json")["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0])
    # Sent to a business-scoped user id: no number, the BSUID, and the contacts block.
    profile = webhooks.Profile("", "Pablo M.", "user.9373", "@pablomorales", "US")
    bsuid = webhooks.status_webhook(BUSINESS, webhooks.StatusInfo(
        wamid="wamid.B", status="delivered", timestamp=1750030073,
        recipient=sends.Recipient("user.9373", "", "user.9373"), billing=billing, profile=profile))
    assert shape(bsuid) == shape(sample("meta-docs-bsuid-status-delivered-to_bsuid.json"))


def test_templates_page_with_cursors() -> None:
    templates = builtin_templates()
    first, paging, has_next, has_previous = pagination.page_templates(templates, 4, None, None)
    assert [t["id"] for t in first] == [t["id"] for t in templates[:4]] and has_next and not has_previous
    rest, paging2, has_next, has_previous = pagination.page_templates(templates, 4, paging["cursors"]["after"], None)
    assert [t["id"] for t in rest] == [t["id"] for t in templates[4:]] and not has_next and has_previous
    back, _, _, _ = pagination.page_templates(templates, 4, None, paging2["cursors"]["before"])
    assert back == first
    with pytest.raises(graph_errors.GraphError):
        pagination.page_templates(templates, 4, "bm90LWFuLWlk", None)


def test_media_urls_are_signed_and_expire() -> None:
    sig = signing.url_signature("secret", "123", 1000)
    assert signing.url_signature_valid("secret", "123", 1000, sig, 999)
    assert not signing.url_signature_valid("secret", "123", 1000, sig, 1000)
    assert not signing.url_signature_valid("secret", "124", 1000, sig, 999)
    assert not signing.url_signature_valid("other", "123", 1000, sig, 999)


def test_simulated_messages_refuse_what_cannot_be_built() -> None:
    rng = random.Random(3)
    for spec in (simulator.SimulateIn(type="reaction", message_id=None), simulator.SimulateIn(type="edit"),
                 simulator.SimulateIn(type="revoke"), simulator.SimulateIn(type="selfie")):
        profile = simulator.simulator_profile(spec, rng)
        with pytest.raises(simulator.SimulationError):
            simulator.build_inbound(spec, BUSINESS, profile, "wamid.X", 1, None)
    with pytest.raises(simulator.SimulationError):
        simulator.simulator_profile(simulator.SimulateIn(wa_id="none"), rng)
    username = simulator.simulator_profile(simulator.SimulateIn(bsuid_only=True), rng)
    assert username.wa_id == "" and username.user_id and username.user_id.startswith("US.")


# ------------------------------------------------------------------------------------------- files


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks.append((kind, body))
        pos += 12 + length
    return chunks


def test_generated_files_are_well_formed() -> None:
    chunks = _png_chunks(files.png(b"a"))
    assert [k for k, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert struct.unpack(">II", chunks[0][1][:8]) == (1, 1)
    assert len(zlib.decompress(chunks[1][1])) == 4  # filter byte + one RGB pixel
    assert files.png(b"a") != files.png(b"b")

    webp = files.webp()
    assert webp[:4] == b"RIFF" and webp[8:12] == b"WEBP" and struct.unpack("<I", webp[4:8])[0] == len(webp) - 8

    pdf = files.pdf(b"x", "Receipt (copy)")
    startxref = int(pdf.rsplit(b"startxref\n", 1)[1].split(b"\n")[0])
    assert pdf[startxref:].startswith(b"xref")
    offsets = [int(line[:10]) for line in pdf[startxref:].split(b"\n")[3:8]]
    for number, offset in enumerate(offsets, start=1):
        assert pdf[offset:].startswith(f"{number} 0 obj".encode())
    assert pdf.endswith(b"%%EOF\n")

    ogg = files.ogg_opus(b"v")
    pages = ogg.split(b"OggS")[1:]
    assert len(pages) == 3 and pages[0][1] == 0x02 and pages[2][1] == 0x04
    assert b"OpusHead" in pages[0] and b"OpusTags" in pages[1]

    mp4 = files.mp4(b"m")
    assert mp4[4:8] == b"ftyp" and mp4[8:12] == b"isom"
    for kind in ("image", "video", "audio", "document", "sticker"):
        data, mime, _ = files.sample_file(kind, b"s")
        assert data and "/" in mime
