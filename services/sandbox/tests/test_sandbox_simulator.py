"""The customer simulator: every type in the shape of Meta's example, edits, flows, template updates,
duplicates, raw bodies, the page, configuration."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sandbox_testkit import (
    OTHER_PNID,
    PNID,
    Receiver,
    Server,
    assert_meta_error,
    sample,
    say,
    send,
    shape,
)

# -------------------------------------------------------------------------------------- simulator

# kind, simulator fields, and Meta's example of the same message.
SIMULATED: list[tuple[str, dict[str, Any], str]] = [
    ("text", {"body": "Does it come in another color?"}, "meta-docs-text.json"),
    ("text", {"body": "Is this still available?", "context": {"message_id": "wamid.HBgLMTY1", "referred_product": {
        "catalog_id": "194836987003835", "product_retailer_id": "di9ozbzfi4"}}},
     "meta-docs-text-referred_product.json"),
    ("referral", {}, "meta-docs-referral-ctwa.json"),
    ("image", {"caption": "Taj Mahal"}, "meta-docs-image.json"),
    ("video", {"caption": "Timelapse of growth"}, "meta-docs-video.json"),
    ("audio", {}, "meta-docs-audio-voice.json"),
    ("document", {"caption": "my receipt", "filename": "receipt.pdf"}, "meta-docs-document.json"),
    ("sticker", {"animated": True}, "meta-docs-sticker.json"),
    ("location", {"url": "https://philzcoffee.com/"}, "meta-docs-location.json"),
    ("contacts", {}, "meta-docs-contacts.json"),
    ("button_reply", {"context": {"message_id": "wamid.HBgLMTY1"}}, "meta-docs-interactive-button_reply.json"),
    ("list_reply", {"context": {"message_id": "wamid.HBgLMTY1"}}, "meta-docs-interactive-list_reply.json"),
    ("button", {"context": {"message_id": "wamid.HBgLMTY1"}}, "meta-docs-button-quick_reply.json"),
    ("reaction", {"message_id": "wamid.HBgLMTQx"}, "meta-docs-reaction.json"),
    ("reaction", {"message_id": "wamid.HBgLMTQx", "emoji": None}, "meta-docs-reaction-removed.json"),
    ("order", {}, "meta-docs-order.json"),
    ("system", {"new_wa_id": "12195555358"}, "meta-docs-system-user_changed_number.json"),
    ("unsupported", {}, "meta-docs-unsupported.json"),
    ("revoke", {"message_id": "wamid.HBgLMTQx"}, "meta-docs-revoke.json"),
    ("text", {"bsuid_only": True, "user_id": "user.93737", "username": "@realsheenanelson", "country_code": "US"},
     "meta-docs-bsuid-text-empty_from.json"),
]


@pytest.mark.parametrize(("kind", "spec", "sample_name"), SIMULATED, ids=[s[2] for s in SIMULATED])
async def test_every_simulated_type_has_the_shape_of_meta_s_example(
        client: httpx.AsyncClient, receiver: Receiver, kind: str, spec: dict[str, Any], sample_name: str) -> None:
    result = await say(client, kind, **spec)
    (hit,) = await receiver.wait(lambda hits: len(hits) == 1)
    assert hit.signed
    assert hit.body == result["payload"]
    assert hit.value["messages"][0]["id"] == result["wamid"]
    assert shape(hit.body) == shape(sample(sample_name))


async def test_edits_flow_replies_and_template_status_updates(client: httpx.AsyncClient, receiver: Receiver) -> None:
    edit = await say(client, "edit", message_id="wamid.HBgLMTQx", body="Fixed the typo")
    message = edit["payload"]["entry"][0]["changes"][0]["value"]["messages"][0]
    expected = sample("meta-docs-edit.json")["entry"][0]["changes"][0]["value"]["messages"][0]
    assert set(message) == set(expected) and set(message["edit"]) == set(expected["edit"])
    assert message["edit"]["message"] == {"type": "text", "text": {"body": "Fixed the typo"}}
    flow = await say(client, "nfm_reply", response_json='{"size": "L"}')
    interactive = flow["payload"]["entry"][0]["changes"][0]["value"]["messages"][0]["interactive"]
    assert interactive == {"type": "nfm_reply", "nfm_reply": {"response_json": '{"size": "L"}', "body": "Sent",
                                                              "name": "flow"}}
    paused = await client.post("/sandbox/simulate/template_status", json={
        "name": "order_update", "language": "en_US", "event": "PAUSED", "reason": "LOW_QUALITY"})
    assert paused.status_code == 200 and paused.json()["status_code"] == 200
    hit = (await receiver.wait(lambda hits: len(hits) == 3))[2]
    assert hit.signed
    assert shape(hit.body) == shape(sample("meta-docs-message_template_status_update-approved.json"))
    assert hit.body["entry"][0]["changes"][0]["value"]["event"] == "PAUSED"
    # Once paused, the template cannot be sent.
    refused = await send(client, {"to": "16505551234", "type": "template", "template": {
        "name": "order_update", "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}})
    assert_meta_error(refused, 400, 132015)


async def test_duplicates_and_ingest_s_answer_come_back(client: httpx.AsyncClient, receiver: Receiver) -> None:
    first = await say(client, body="once")
    again = await say(client, body="once", wamid=first["wamid"], timestamp=int(first["payload"]["entry"][0][
        "changes"][0]["value"]["messages"][0]["timestamp"]))
    assert again["wamid"] == first["wamid"]
    hits = await receiver.wait(lambda hits: len(hits) == 2)
    assert hits[0].value["messages"] == hits[1].value["messages"]
    receiver.answers.append(503)
    refused = await client.post("/sandbox/simulate", json={"type": "text", "body": "while ingest is down"})
    assert refused.json()["status_code"] == 503
    second_number = await say(client, phone_number_id=OTHER_PNID)
    assert second_number["payload"]["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] == OTHER_PNID
    bad = await client.post("/sandbox/simulate", json={"type": "text", "phone_number_id": "42"})
    assert bad.status_code == 400
    assert (await client.post("/sandbox/simulate", json={"type": "selfie"})).status_code == 400
    assert (await client.post("/sandbox/simulate", json={"type": "text", "nonsense": 1})).status_code == 400


async def test_raw_bodies_are_posted_as_they_are(client: httpx.AsyncClient, receiver: Receiver) -> None:
    raw = '{"object": "whatsapp_business_account", "entry": []}'
    for mode in ("valid", "wrong", "none"):
        answer = await client.post("/sandbox/simulate/raw", json={"body": raw, "signature": mode})
        assert answer.status_code == 200 and answer.json()["status_code"] == 200
    custom = await client.post("/sandbox/simulate/raw", json={"body": {"a": "/"}, "signature": "custom",
                                                              "header": "sha256=00"})
    assert custom.status_code == 200
    valid, wrong, unsigned, forged = await receiver.wait(lambda hits: len(hits) == 4)
    assert valid.raw == raw.encode() and valid.signed
    assert wrong.raw == raw.encode() and not wrong.signed and wrong.headers["x-hub-signature-256"]
    assert "x-hub-signature-256" not in unsigned.headers
    assert forged.raw == b'{"a":"\\/"}' and forged.headers["x-hub-signature-256"] == "sha256=00"


async def test_the_page_sends_as_a_customer(client: httpx.AsyncClient, receiver: Receiver) -> None:
    page = await client.get("/sandbox/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<form" in page.text and 'value="button_reply"' in page.text and PNID in page.text
    sent = await client.post("/sandbox/", data={"phone_number_id": OTHER_PNID, "type": "text", "wa_id": "447700900123",
                                                "name": "Ada <script>", "body": "Hello from the page"},
                             files={"file": ("", b"", "application/octet-stream")})
    assert sent.status_code == 200, sent.text
    assert "Hello from the page" in sent.text and "Ada &lt;script&gt;" in sent.text
    (hit,) = await receiver.wait(lambda hits: len(hits) == 1)
    assert hit.signed
    assert hit.value["messages"][0]["text"] == {"body": "Hello from the page"}
    assert hit.value["contacts"][0] == {"profile": {"name": "Ada <script>"}, "wa_id": "447700900123"}
    refused = await client.post("/sandbox/", data={"type": "reaction", "emoji": ""},
                                files={"file": ("", b"", "application/octet-stream")})
    assert refused.status_code == 400 and "Not sent" in refused.text


async def test_config_changes_and_reset(client: httpx.AsyncClient, server: Server) -> None:
    changed = await client.patch("/sandbox/config", json={"auto_read": False, "status_delays_ms": [1, 2, 3]})
    assert changed.status_code == 200
    assert changed.json()["auto_read"] is False and changed.json()["status_delays_ms"] == [1, 2, 3]
    assert (await client.get("/sandbox/numbers")).json()["data"][0]["phone_number_id"] == PNID
    assert (await client.post("/sandbox/reset")).status_code == 200
    assert (await client.get("/sandbox/config")).json()["auto_read"] is True
    assert server.sandbox.state.config.status_delays_ms == (0, 0, 0)
