"""Sends through the sandbox's Graph API: statuses, the window, templates, reactions, media, read receipts,
business-scoped ids; tokens and faults; status webhooks retried."""

from __future__ import annotations

import time

import httpx
from sandbox_testkit import (
    AUTH,
    DISPLAY,
    GRAPH,
    OTHER_PNID,
    PNID,
    TOKEN,
    WABA,
    Receiver,
    assert_meta_error,
    sample,
    say,
    send,
    shape,
)

# ------------------------------------------------------------------------------------------ sends


async def test_a_send_answers_a_wamid_then_posts_signed_sent_delivered_read(
        client: httpx.AsyncClient, receiver: Receiver) -> None:
    inbound = await say(client, body="Does it come in another color?")
    answer = await send(client, {"recipient_type": "individual", "to": "+16505551234", "type": "text",
                                 "text": {"preview_url": False, "body": "It does: blue and green."},
                                 "context": {"message_id": inbound["wamid"]},
                                 "biz_opaque_callback_data": "agent-7:msg-42"})
    assert answer.status_code == 200, answer.text
    wamid = answer.json()["messages"][0]["id"]
    assert answer.json() == {"messaging_product": "whatsapp",
                             "contacts": [{"input": "+16505551234", "wa_id": "16505551234"}],
                             "messages": [{"id": wamid}]}
    assert wamid.startswith("wamid.") and wamid != inbound["wamid"]

    hits = await receiver.statuses(wamid, 3)
    assert all(h.signed for h in hits)
    assert all(h.headers["content-type"] == "application/json" for h in hits)
    statuses = [h.value["statuses"][0] for h in hits]
    assert [s["status"] for s in statuses] == ["sent", "delivered", "read"]
    assert all(s["biz_opaque_callback_data"] == "agent-7:msg-42" for s in statuses)
    assert all(s["recipient_id"] == "16505551234" and s["timestamp"].isdigit() for s in statuses)
    sent, delivered, read = statuses
    # Shaped as Meta's sent example (plus the callback data), a free service reply.
    expected = shape(sample("meta-docs-status-sent-pmp.json"))
    expected["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = "str"
    assert shape(hits[0].body) == expected
    assert sent["pricing"] == {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                               "category": "service"}
    assert sent["conversation"]["origin"] == {"type": "service"}
    assert delivered["conversation"]["id"] == sent["conversation"]["id"]
    assert "expiration_timestamp" not in delivered["conversation"]
    assert "conversation" not in read and "pricing" not in read
    assert hits[0].value["metadata"] == {"display_phone_number": DISPLAY, "phone_number_id": PNID}
    assert hits[0].body["entry"][0]["id"] == WABA

    messages = (await client.get("/sandbox/messages")).json()["data"]
    assert [m["statuses"] for m in messages if m["wamid"] == wamid] == [["sent", "delivered", "read"]]


async def test_free_form_outside_the_window_fails_with_131047_but_templates_go(
        client: httpx.AsyncClient, receiver: Receiver) -> None:
    # Never wrote: the send is accepted, then fails.
    never = await send(client, {"to": "16505550000", "type": "text", "text": {"body": "Hi!"}})
    assert never.status_code == 200, never.text
    never_wamid = never.json()["messages"][0]["id"]
    # Wrote 25 hours ago: the same.
    await say(client, wa_id="16505550001", timestamp=int(time.time()) - 25 * 3600)
    stale = await send(client, {"to": "16505550001", "type": "image", "image": {"link": "https://x.example/a.jpg"}})
    stale_wamid = stale.json()["messages"][0]["id"]
    for wamid in (never_wamid, stale_wamid):
        (hit,) = await receiver.statuses(wamid, 1)
        assert hit.signed
        status = hit.value["statuses"][0]
        assert status["status"] == "failed"
        assert status["errors"][0]["code"] == 131047
        assert status["errors"][0]["title"] == "Re-engagement message"
        assert shape(hit.body) == shape(sample("meta-docs-status-failed-131049.json"))
        assert b"\\/documentation\\/" in hit.raw  # "/" escaped, as Meta serialises
    # A template reaches the same customer, billed as marketing.
    template = await send(client, {"to": "16505550001", "type": "template", "template": {
        "name": "summer_sale", "language": {"code": "en_US"}, "components": [{"type": "body", "parameters": [
            {"type": "text", "parameter_name": "first_name", "text": "Pablo"},
            {"type": "text", "parameter_name": "discount", "text": "25%"},
            {"type": "text", "parameter_name": "discount_code", "text": "WELCOME25"}]}]}})
    assert template.status_code == 200, template.text
    message = template.json()["messages"][0]
    assert message["message_status"] == "accepted"
    hits = await receiver.statuses(message["id"], 3)
    assert [h.value["statuses"][0]["status"] for h in hits] == ["sent", "delivered", "read"]
    assert hits[0].value["statuses"][0]["pricing"]["category"] == "marketing"
    # An inbound message within 24 hours opens the window again.
    await say(client, wa_id="16505550001")
    fresh = await send(client, {"to": "16505550001", "type": "text", "text": {"body": "Thanks!"}})
    hits = await receiver.statuses(fresh.json()["messages"][0]["id"], 3)
    assert [h.value["statuses"][0]["status"] for h in hits] == ["sent", "delivered", "read"]


async def test_templates_must_exist_with_the_right_parameters(client: httpx.AsyncClient) -> None:
    missing = await send(client, {"to": "16505551234", "type": "template",
                                  "template": {"name": "no_such_template", "language": {"code": "en_US"}}})
    error = assert_meta_error(missing, 400, 132001)
    assert error["message"] == "(#132001) Template name does not exist in the translation"
    assert error["error_data"]["details"] == "template name (no_such_template) does not exist in en_US"
    wrong_language = await send(client, {"to": "16505551234", "type": "template",
                                         "template": {"name": "hello_world", "language": {"code": "fr"}}})
    assert_meta_error(wrong_language, 400, 132001)
    too_few = await send(client, {"to": "16505551234", "type": "template", "template": {
        "name": "order_update", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Pablo"}]}]}})
    assert_meta_error(too_few, 400, 132000)
    good = await send(client, {"to": "16505551234", "type": "template", "template": {
        "name": "new_arrivals", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://x.example/h.jpg"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "spring"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "spring"}]},
        ]}})
    assert good.status_code == 200, good.text
    assert good.json()["messages"][0]["message_status"] == "accepted"


async def test_reactions_media_and_read_receipts(client: httpx.AsyncClient, receiver: Receiver) -> None:
    inbound = await say(client, body="Here is my order")
    reaction = await send(client, {"to": "16505551234", "type": "reaction",
                                   "reaction": {"message_id": inbound["wamid"], "emoji": "\U0001f44d"}})
    assert reaction.status_code == 200, reaction.text
    uploaded = await client.post(f"{GRAPH}/{PNID}/media", headers=AUTH,
                                 files={"file": ("label.pdf", b"%PDF-1.4 label", "application/pdf")},
                                 data={"messaging_product": "whatsapp", "type": "application/pdf"})
    assert uploaded.status_code == 200, uploaded.text
    document = await send(client, {"to": "16505551234", "type": "document", "document": {
        "id": uploaded.json()["id"], "caption": "Your label", "filename": "label.pdf"}})
    unknown_media = await send(client, {"to": "16505551234", "type": "image", "image": {"id": "999"}})
    for answer in (reaction, document):
        hits = await receiver.statuses(answer.json()["messages"][0]["id"], 3)
        assert [h.value["statuses"][0]["status"] for h in hits] == ["sent", "delivered", "read"]
    (failed,) = await receiver.statuses(unknown_media.json()["messages"][0]["id"], 1)
    assert failed.value["statuses"][0]["errors"][0]["code"] == 131053

    read = await send(client, {"status": "read", "message_id": inbound["wamid"],
                               "typing_indicator": {"type": "text"}})
    assert read.status_code == 200 and read.json() == {"success": True}
    inbound_log = (await client.get("/sandbox/messages")).json()["inbound"]
    assert [m["read"] for m in inbound_log if m["wamid"] == inbound["wamid"]] == [True]


async def test_sends_to_a_username_adopter_use_the_business_scoped_id(
        client: httpx.AsyncClient, receiver: Receiver) -> None:
    await say(client, bsuid_only=True, user_id="US.13491208655302741918", username="@pablo", country_code="US",
              name="Pablo M.")
    answer = await send(client, {"to": "US.13491208655302741918", "type": "text", "text": {"body": "Hello Pablo"}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["contacts"] == [{"input": "US.13491208655302741918", "wa_id": "",
                                          "user_id": "US.13491208655302741918"}]
    hits = await receiver.statuses(answer.json()["messages"][0]["id"], 2)
    delivered = hits[1]
    assert delivered.value["statuses"][0]["recipient_id"] == ""
    assert delivered.value["statuses"][0]["recipient_user_id"] == "US.13491208655302741918"
    assert delivered.value["contacts"][0]["user_id"] == "US.13491208655302741918"
    expected = shape(sample("meta-docs-bsuid-status-delivered-to_bsuid.json"))
    expected["entry"][0]["changes"][0]["value"]["statuses"][0]["conversation"] = {
        "id": "str", "origin": {"type": "str"}}
    assert shape(delivered.body) == expected
    assert "username" not in hits[0].value["contacts"][0]["profile"]  # left out of sent statuses


# ---------------------------------------------------------------------------------- tokens, faults


async def test_tokens_are_checked_like_meta_does(client: httpx.AsyncClient) -> None:
    text = {"to": "16505551234", "type": "text", "text": {"body": "x"}}
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Basic {TOKEN}"}):
        answer = await send(client, text, headers=headers)
        assert answer.status_code == 401
        error = answer.json()["error"]
        assert error["code"] == 190 and error["type"] == "OAuthException" and error["fbtrace_id"]
        assert "WWW-Authenticate" in answer.headers
    registered = await client.post("/sandbox/numbers", json={
        "phone_number_id": PNID, "display_phone_number": DISPLAY, "waba_id": WABA, "access_token": "store-token"})
    assert registered.status_code == 200, registered.text
    store = {"Authorization": "Bearer store-token"}
    assert (await send(client, text, headers=store)).status_code == 200
    assert (await send(client, text, pnid=OTHER_PNID, headers=store)).status_code == 401
    assert (await send(client, text, pnid=OTHER_PNID)).status_code == 200
    by_query = await client.post(f"{GRAPH}/{PNID}/messages", params={"access_token": TOKEN},
                                 json={"messaging_product": "whatsapp", **text})
    assert by_query.status_code == 200
    unknown_number = await send(client, text, pnid="123456")
    assert unknown_number.status_code == 400
    assert unknown_number.json()["error"]["type"] == "GraphMethodException"
    assert unknown_number.json()["error"]["error_subcode"] == 33


async def test_faults_fail_the_next_sends_of_a_number(client: httpx.AsyncClient, receiver: Receiver) -> None:
    text = {"to": "16505551234", "type": "text", "text": {"body": "x"}}
    await client.post("/sandbox/faults", json={"phone_number_id": PNID, "status": 429, "code": 130429, "count": 2})
    await client.post("/sandbox/faults", json={"phone_number_id": PNID, "status": 500, "code": 131000, "count": 1})
    await client.post("/sandbox/faults", json={"phone_number_id": PNID, "status": 400, "code": 131026, "count": 1,
                                               "details": "Not a WhatsApp number"})
    assert [f["remaining"] for f in (await client.get("/sandbox/faults")).json()["data"]] == [2, 1, 1]
    assert (await send(client, text, pnid=OTHER_PNID)).status_code == 200  # faults are per number
    first = assert_meta_error(await send(client, text), 429, 130429)
    assert first["message"] == "(#130429) Rate limit hit"
    assert_meta_error(await send(client, text), 429, 130429)
    assert_meta_error(await send(client, text), 500, 131000)
    undeliverable = assert_meta_error(await send(client, text), 400, 131026)
    assert undeliverable["error_data"]["details"] == "Not a WhatsApp number"
    assert (await send(client, text)).status_code == 200
    assert (await client.get("/sandbox/faults")).json()["data"] == []
    # A fault delivered the way Meta reports undeliverable messages: accepted, then a failed status.
    await client.post("/sandbox/faults", json={"phone_number_id": PNID, "code": 131026,
                                               "delivery": "status_webhook"})
    accepted = await send(client, {"to": "16505551234", "type": "template",
                                   "template": {"name": "hello_world", "language": {"code": "en_US"}}})
    assert accepted.status_code == 200
    (failed,) = await receiver.statuses(accepted.json()["messages"][0]["id"], 1)
    assert failed.value["statuses"][0]["errors"][0]["code"] == 131026


async def test_status_webhooks_are_retried_until_accepted(client: httpx.AsyncClient, receiver: Receiver) -> None:
    await say(client)
    receiver.answers.extend([503, 500])
    answer = await send(client, {"to": "16505551234", "type": "text", "text": {"body": "x"}})
    wamid = answer.json()["messages"][0]["id"]
    hits = await receiver.statuses(wamid, 5)
    assert [h.value["statuses"][0]["status"] for h in hits] == ["sent", "sent", "sent", "delivered", "read"]
    assert hits[0].raw == hits[2].raw
    log = (await client.get("/sandbox/webhooks", params={"wamid": wamid})).json()["data"]
    assert [(w["status"], w["attempts"], w["status_code"]) for w in log] == [
        ("sent", 3, 200), ("delivered", 1, 200), ("read", 1, 200)]
