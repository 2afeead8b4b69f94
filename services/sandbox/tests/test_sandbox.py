"""The sandbox over HTTP: a real uvicorn serving it, and a small webhook receiver standing in for ingest.

Both run in the test's event loop on free ports; the receiver checks nothing, it keeps what arrives, so
the tests can check signatures and shapes against Meta's own examples (tests/fixtures/meta-webhooks).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
from litestar import Litestar, Request, Response, post

from inbox_core.runtime import HttpComponent
from inbox_sandbox.http import create_app
from inbox_sandbox.sandbox import Sandbox
from inbox_sandbox.settings import SandboxSettings
from inbox_testkit.paths import META_WEBHOOK_SAMPLES
from inbox_testkit.ports import free_port

SAMPLES = META_WEBHOOK_SAMPLES
SECRET = "test-app-secret"
TOKEN = "test-default-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNID, DISPLAY, WABA = "106540352242922", "15550783881", "102290129340398"
OTHER_PNID = "117650463353033"
GRAPH = "/graph/v24.0"


@dataclass
class Hit:
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def signed(self) -> bool:
        expected = "sha256=" + hmac.new(SECRET.encode(), self.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-hub-signature-256", ""), expected)

    @property
    def value(self) -> dict[str, Any]:
        return self.body["entry"][0]["changes"][0]["value"]  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """Keeps every webhook it is posted; answers 200 unless told otherwise."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def app(self) -> Litestar:
        @post("/hook", status_code=200)
        async def hook(request: Request[Any, Any, Any]) -> Response[str]:
            self.hits.append(Hit({k.lower(): v for k, v in request.headers.items()}, await request.body()))
            return Response("ok", status_code=self.answers.pop(0) if self.answers else 200)

        return Litestar([hook])

    async def wait(self, predicate: Callable[[list[Hit]], bool], within: float = 10.0) -> list[Hit]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate(self.hits):
                return self.hits
            await asyncio.sleep(0.01)
        raise AssertionError(f"webhooks never matched; got {[h.raw[:200] for h in self.hits]}")

    async def statuses(self, wamid: str, count: int) -> list[Hit]:
        def of(hits: list[Hit]) -> list[Hit]:
            return [h for h in hits if any(s["id"] == wamid for s in h.value.get("statuses", []))]

        await self.wait(lambda hits: len(of(hits)) >= count)
        return of(self.hits)


@dataclass
class Server:
    url: str
    sandbox: Sandbox


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hook")
    component = HttpComponent("receiver", receiver.app(), port, host="127.0.0.1")
    await component.start()
    yield receiver
    await component.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(receiver: Receiver) -> AsyncIterator[Server]:
    settings = SandboxSettings(meta_app_secret=SECRET, access_token=TOKEN, webhook_url=receiver.url,
                               status_delays_ms=(0, 0, 0), webhook_max_attempts=3)
    sandbox = Sandbox(settings)
    port = free_port()
    component = HttpComponent("sandbox", create_app(settings, sandbox=sandbox), port, host="127.0.0.1")
    await component.start()
    yield Server(f"http://127.0.0.1:{port}", sandbox)
    await component.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client(server: Server, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    server.sandbox.reset()
    receiver.hits.clear()
    receiver.answers.clear()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client
    # Let the status webhooks of this test finish, so they do not land in the next test's receiver.
    deadline = time.monotonic() + 10
    while server.sandbox.poster.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def say(client: httpx.AsyncClient, kind: str = "text", **spec: Any) -> dict[str, Any]:
    answer = await client.post(f"/sandbox/simulate/{kind}", json=spec)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result["status_code"] == 200, result
    return result


async def send(client: httpx.AsyncClient, body: dict[str, Any], pnid: str = PNID,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(f"{GRAPH}/{pnid}/messages", json={"messaging_product": "whatsapp", **body},
                             headers=AUTH if headers is None else headers)


def assert_meta_error(answer: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["code"] == code and error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert set(error["error_data"]) == {"messaging_product", "details"}
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    return error


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


# ------------------------------------------------------------------------------------------- media


async def test_media_upload_url_and_download_need_the_token(client: httpx.AsyncClient) -> None:
    png = base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC")
    uploaded = await client.post(f"{GRAPH}/{PNID}/media", headers=AUTH,
                                 files={"file": ("dot.png", png, "image/png")},
                                 data={"messaging_product": "whatsapp", "type": "image/png"})
    assert uploaded.status_code == 200, uploaded.text
    media_id = uploaded.json()["id"]
    assert set(uploaded.json()) == {"id"} and media_id.isdigit()

    info = await client.get(f"{GRAPH}/{media_id}", headers=AUTH, params={"phone_number_id": PNID})
    assert info.status_code == 200, info.text
    body = info.json()
    assert list(body) == ["messaging_product", "url", "mime_type", "sha256", "file_size", "id"]
    assert body["mime_type"] == "image/png" and body["file_size"] == len(png) and body["id"] == media_id
    assert body["sha256"] == hashlib.sha256(png).hexdigest()
    assert body["url"].startswith(f"{client.base_url}/sandbox/media-download/")
    assert (await client.get(f"{GRAPH}/{media_id}")).status_code == 401
    assert (await client.get(f"{GRAPH}/{media_id}", headers=AUTH,
                             params={"phone_number_id": OTHER_PNID})).status_code == 400

    assert (await client.get(body["url"])).status_code == 401
    assert (await client.get(body["url"], headers={"Authorization": "Bearer wrong"})).status_code == 401
    downloaded = await client.get(body["url"], headers=AUTH)
    assert downloaded.status_code == 200
    assert downloaded.content == png and downloaded.headers["content-type"] == "image/png"
    tampered = body["url"].replace("hash=", "hash=x")
    assert (await client.get(tampered, headers=AUTH)).status_code == 404

    recorded = (await client.get("/sandbox/requests", params={"path": "/media", "method": "POST"})).json()["data"]
    assert recorded[-1]["form"] == {"messaging_product": "whatsapp", "type": "image/png",
                                    "file": {"filename": "dot.png", "content_type": "image/png", "size": len(png)}}

    deleted = await client.delete(f"{GRAPH}/{media_id}", headers=AUTH)
    assert deleted.status_code == 200 and deleted.json() == {"success": True}
    gone = await client.get(f"{GRAPH}/{media_id}", headers=AUTH)
    assert gone.status_code == 400 and gone.json()["error"]["error_subcode"] == 33
    assert (await client.get(body["url"], headers=AUTH)).status_code == 404


async def test_uploads_are_checked(client: httpx.AsyncClient) -> None:
    no_product = await client.post(f"{GRAPH}/{PNID}/media", headers=AUTH,
                                   files={"file": ("a.png", b"x", "image/png")})
    assert_meta_error(no_product, 400, 100)
    wrong_type = await client.post(f"{GRAPH}/{PNID}/media", headers=AUTH,
                                   files={"file": ("a.exe", b"MZ", "application/x-msdownload")},
                                   data={"messaging_product": "whatsapp"})
    assert_meta_error(wrong_type, 400, 131053)
    too_big = await client.post(f"{GRAPH}/{PNID}/media", headers=AUTH,
                                files={"file": ("s.webp", b"x" * (500 * 1024 + 1), "image/webp")},
                                data={"messaging_product": "whatsapp"})
    assert_meta_error(too_big, 400, 131053)
    no_token = await client.post(f"{GRAPH}/{PNID}/media", files={"file": ("a.png", b"x", "image/png")},
                                 data={"messaging_product": "whatsapp"})
    assert no_token.status_code == 401


async def test_inbound_media_can_be_fetched_through_the_graph_api(
        client: httpx.AsyncClient, receiver: Receiver) -> None:
    result = await say(client, "image", caption="Taj Mahal")
    (hit,) = await receiver.wait(lambda hits: any(h.value["messages"][0]["id"] == result["wamid"]
                                                  for h in hits if "messages" in h.value))
    image = hit.value["messages"][0]["image"]
    assert image["id"] == result["media_id"] and image["caption"] == "Taj Mahal"
    info = (await client.get(f"{GRAPH}/{image['id']}", headers=AUTH)).json()
    downloaded = await client.get(info["url"], headers=AUTH)
    assert downloaded.status_code == 200 and downloaded.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert base64.b64encode(hashlib.sha256(downloaded.content).digest()).decode() == image["sha256"]
    assert (await client.get(image["url"], headers=AUTH)).content == downloaded.content
    own = base64.b64encode(b"%PDF-1.4 my own file").decode()
    doc = await say(client, "document", content_base64=own, filename="invoice.pdf", mime_type="application/pdf")
    doc_info = (await client.get(f"{GRAPH}/{doc['media_id']}", headers=AUTH)).json()
    assert (await client.get(doc_info["url"], headers=AUTH)).content == b"%PDF-1.4 my own file"


# ---------------------------------------------------------------------------------------- templates


async def test_templates_list_pages_with_cursors(client: httpx.AsyncClient) -> None:
    first = await client.get(f"{GRAPH}/{WABA}/message_templates", headers=AUTH, params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["data"]) == 2 and set(page["paging"]["cursors"]) == {"before", "after"}
    assert set(page["data"][0]) >= {"name", "language", "status", "category", "components", "id"}
    names = [t["name"] for t in page["data"]]
    pages = 1
    while "next" in page["paging"]:
        following = await client.get(page["paging"]["next"], headers=AUTH)
        assert following.status_code == 200, following.text
        page = following.json()
        names += [t["name"] for t in page["data"]]
        pages += 1
    assert pages == 3
    assert names == ["hello_world", "order_update", "order_update", "summer_sale", "new_arrivals", "abandoned_cart"]
    previous = await client.get(page["paging"]["previous"], headers=AUTH)
    assert [t["name"] for t in previous.json()["data"]] == ["order_update", "summer_sale"]

    approved = await client.get(f"{GRAPH}/{WABA}/message_templates", headers=AUTH,
                                params={"status": "APPROVED", "fields": "name,status"})
    assert all(set(t) == {"name", "status", "id"} for t in approved.json()["data"])
    assert "abandoned_cart" not in [t["name"] for t in approved.json()["data"]]
    arrivals = (await client.get(f"{GRAPH}/{WABA}/message_templates", headers=AUTH,
                                 params={"name": "new_arrivals"})).json()["data"][0]
    assert arrivals["components"][0] == {"type": "HEADER", "format": "IMAGE", "example": {
        "header_handle": ["https://scontent.whatsapp.net/v/t61.29466-34/new-arrivals.jpg"]}}
    assert arrivals["components"][3]["buttons"][0]["type"] == "URL"
    assert (await client.get(f"{GRAPH}/{WABA}/message_templates")).status_code == 401
    assert (await client.get(f"{GRAPH}/999/message_templates", headers=AUTH)).status_code == 400
    assert_meta_error(await client.get(f"{GRAPH}/{WABA}/message_templates", headers=AUTH,
                                       params={"after": "bm9wZQ"}), 400, 100)

    added = await client.post("/sandbox/templates", json={"waba_id": WABA, "template": {
        "name": "back_in_stock", "language": "en_US", "category": "MARKETING",
        "components": [{"type": "BODY", "text": "{{1}} is back in stock!"}]}})
    assert added.status_code == 200, added.text
    stock = await send(client, {"to": "16505551234", "type": "template", "template": {
        "name": "back_in_stock", "language": {"code": "en_US"},
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "The blue vase"}]}]}})
    assert stock.status_code == 200, stock.text


# ---------------------------------------------------------------------------------------- recording


async def test_every_graph_request_is_recorded(client: httpx.AsyncClient) -> None:
    body = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234", "type": "text",
            "text": {"body": "exact JSON, ünïcode"}}
    answer = await client.post(f"{GRAPH}/{PNID}/messages", json=body, headers=AUTH)
    await client.get(f"{GRAPH}/{WABA}/message_templates", headers=AUTH, params={"limit": 1})
    recorded = (await client.get("/sandbox/requests")).json()["data"]
    assert [(r["method"], r["path"]) for r in recorded] == [
        ("POST", f"{GRAPH}/{PNID}/messages"), ("GET", f"{GRAPH}/{WABA}/message_templates")]
    assert recorded[0]["body"] == body
    assert recorded[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert recorded[0]["status_code"] == 200 and recorded[0]["response"] == answer.json()
    assert recorded[1]["query"] == {"limit": "1"}
    only_sends = (await client.get("/sandbox/requests", params={"path": "/messages"})).json()["data"]
    assert len(only_sends) == 1
    since = (await client.get("/sandbox/requests", params={"since": recorded[0]["id"]})).json()["data"]
    assert [r["id"] for r in since] == [recorded[1]["id"]]
    assert (await client.delete("/sandbox/requests")).status_code == 200
    assert (await client.get("/sandbox/requests")).json()["data"] == []


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
