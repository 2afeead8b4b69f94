"""Media uploads and downloads, the templates list and its cursors, the record of Graph requests."""

from __future__ import annotations

import base64
import hashlib

import httpx
from sandbox_testkit import (
    AUTH,
    GRAPH,
    OTHER_PNID,
    PNID,
    TOKEN,
    WABA,
    Receiver,
    assert_meta_error,
    say,
    send,
)

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
