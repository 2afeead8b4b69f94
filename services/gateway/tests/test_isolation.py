"""The isolation walk against the real services: every endpoint with another workspace's ids answers 404
or 403 and changes nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from gateway_testkit import (
    PNG,
    TEMPLATE,
    Server,
    Services,
    connect,
    login,
    make_team,
    ok,
    open_stream,
)

from inbox_gateway.gateway import Gateway
from inbox_gateway.http import API_HANDLERS

ROUTES_WALKED: set[tuple[str, str]] = set()


async def call(client: httpx.AsyncClient, method: str, template: str, ids: dict[str, str], **kwargs: Any
               ) -> httpx.Response:
    ROUTES_WALKED.add((method, template))
    return await client.request(method, template.format(**ids), **kwargs)


@pytest.mark.timeout(240)
async def test_every_endpoint_isolates_workspaces(gw: Gateway, services: Services) -> None:
    ours, theirs = await make_team(gw, "Ours"), await make_team(gw, "Theirs")
    async with Server(gw) as server:
        their_admin = server.client(await login(server, theirs.admin))
        admin, agent = server.client(await login(server, ours.admin)), server.client(await login(server, ours.agent))
        async with their_admin, admin, agent:
            # Their workspace, with one of everything.
            await connect(their_admin, theirs, services)
            their_conv = await services.inbound(theirs, "34611111111", "theirs")
            await services.templates(theirs, [TEMPLATE])
            their_upload = ok(await their_admin.post("/api/uploads", files={"file": ("t.png", PNG, "image/png")}),
                              201)["upload_id"]
            their_item = ok(await their_admin.post("/api/library", json={
                "workspace_id": theirs.workspace_id, "type": "text", "text": "theirs"}), 201)["item"]["id"]
            their_order = ok(await their_admin.post("/api/orders", json={
                "conversation_id": their_conv, "items": [{"sku": "A", "name": "A", "quantity": 1,
                                                          "unit_price": "1"}]}), 201)["order"]["id"]
            their_customer = ok(await their_admin.get(f"/api/conversations/{their_conv}"))["customer"]["id"]
            their_message = ok(await their_admin.get(f"/api/conversations/{their_conv}/timeline"))["items"][0]["id"]
            their_reply = ok(await their_admin.post("/api/replies", json={
                "workspace_id": theirs.workspace_id, "shortcut": "theirs", "text": "theirs"}), 201)["reply"]["id"]
            their_invitation = ok(await their_admin.post("/api/admin/invitations", json={
                "workspace_id": theirs.workspace_id, "email": "invited@theirs.test"}), 201)["invitation"]["id"]
            # Ours, so that valid requests of ours have something to point at.
            await connect(admin, ours, services)
            our_conv = await services.inbound(ours, "34622222222", "ours")

            ids = {"conv": their_conv, "customer": their_customer, "order": their_order, "media": their_upload,
                   "item": their_item, "ws": theirs.workspace_id, "number": theirs.number, "our_conv": our_conv,
                   "their_agent": theirs.agent.id, "invitation": their_invitation, "reply": their_reply}
            refused = [
                ("GET", "/api/conversations/{conv}", {}),
                ("GET", "/api/conversations/{conv}/timeline", {}),
                ("POST", "/api/conversations/{conv}/messages", {"json": {"type": "text", "text": "x"}}),
                ("POST", "/api/conversations/{conv}/templates", {"json": {"name": "order_update", "language": "en_US",
                                                                          "params": {"body": ["a", "b"]}}}),
                ("POST", "/api/conversations/{conv}/notes", {"json": {"text": "x"}}),
                ("POST", "/api/conversations/{conv}/assign", {"json": {"agent_id": None}}),
                ("POST", "/api/conversations/{conv}/status", {"json": {"status": "resolved"}}),
                ("POST", "/api/conversations/{conv}/read", {}),
                ("POST", "/api/conversations/{conv}/composing", {"json": {"composing": True}}),
                ("POST", "/api/conversations/{conv}/viewing", {"json": {"viewing": True}}),
                ("GET", "/api/conversations/{conv}/panel", {}),
                ("GET", "/api/conversations", {"params": {"number": theirs.number}}),
                ("GET", "/api/templates", {"params": {"number": theirs.number}}),
                ("GET", "/api/library", {"params": {"workspace": theirs.workspace_id}}),
                ("POST", "/api/library", {"json": {"workspace_id": theirs.workspace_id, "type": "text", "text": "x"}}),
                ("DELETE", "/api/library/{item}", {}),
                ("GET", "/api/replies", {"params": {"workspace": theirs.workspace_id}}),
                ("POST", "/api/replies", {"json": {"workspace_id": theirs.workspace_id, "shortcut": "x", "text": "x"}}),
                ("PATCH", "/api/replies/{reply}", {"json": {"text": "changed"}}),
                ("DELETE", "/api/replies/{reply}", {}),
                ("GET", "/api/conversations/{conv}/replies/{reply}", {}),
                ("POST", "/api/uploads", {"params": {"workspace": theirs.workspace_id},
                                          "files": {"file": ("p.png", PNG, "image/png")}}),
                ("GET", "/api/media/{media}", {}),
                ("GET", "/api/customers/{customer}", {}),
                ("PATCH", "/api/customers/{customer}", {"json": {"tags": ["mine-now"]}}),
                ("POST", "/api/orders", {"json": {"conversation_id": their_conv, "items": [
                    {"sku": "A", "name": "A", "quantity": 1, "unit_price": "1"}]}}),
                ("GET", "/api/orders/{order}", {}),
                ("POST", "/api/orders/{order}/stage", {"json": {"stage": "cancelled"}}),
                ("GET", "/api/agents", {"params": {"workspace": theirs.workspace_id}}),
                ("POST", "/api/admin/numbers", {"json": {"workspace_id": theirs.workspace_id, "phone_number_id": "1",
                                                         "display_phone_number": "1", "name": "x", "waba_id": "1"}}),
                ("POST", "/api/admin/invitations", {"json": {"workspace_id": theirs.workspace_id,
                                                             "email": "x@y.test"}}),
                ("GET", "/api/admin/invitations", {"params": {"workspace": theirs.workspace_id}}),
                ("DELETE", "/api/admin/invitations/{invitation}", {}),
                ("DELETE", "/api/admin/workspaces/{ws}/members/{their_agent}", {}),
                ("GET", "/api/admin/workspaces/{ws}", {}),
                ("PATCH", "/api/admin/workspaces/{ws}", {"json": {"auto_assign": "round_robin"}}),
                # Their things used from inside our own workspace:
                ("POST", "/api/conversations/{our_conv}/messages", {"json": {"type": "image",
                                                                             "upload_id": their_upload}}),
                ("POST", "/api/conversations/{our_conv}/messages", {"json": {"type": "text", "text": "x",
                                                                             "reply_to": their_message}}),
                ("POST", "/api/conversations/{our_conv}/assign", {"json": {"agent_id": theirs.agent.id}}),
                ("GET", "/api/conversations/{our_conv}/replies/{reply}", {}),
                ("POST", "/api/library", {"json": {"workspace_id": ours.workspace_id, "type": "image",
                                                   "upload_id": their_upload}}),
                ("POST", "/api/admin/numbers", {"json": {"workspace_id": ours.workspace_id,
                                                         "phone_number_id": theirs.number, "display_phone_number": "1",
                                                         "name": "taken", "waba_id": theirs.waba}}),
            ]
            for client in (admin, agent):
                for method, template, kwargs in refused:
                    response = await call(client, method, template, ids, **kwargs)
                    assert response.status_code in (403, 404), (method, template, response.status_code, response.text)
                    assert response.json()["error"]["code"] in ("not_found", "forbidden")

            # Listings show nothing of theirs.
            listed = [("GET", "/api/me"), ("GET", "/api/numbers"), ("GET", "/api/conversations"),
                      ("GET", "/api/templates"), ("GET", "/api/library"), ("GET", "/api/agents"),
                      ("GET", "/api/replies")]
            for method, template in listed:
                text = (await call(agent, method, template, ids)).text
                for their_id in (theirs.workspace_id, theirs.number, their_conv, their_item, theirs.agent.id,
                                 their_reply):
                    assert their_id not in text, (template, their_id)
            async with open_stream(agent) as stream:
                ROUTES_WALKED.add(("GET", "/api/stream"))
                assert stream.response.status_code == 200  # (the stream's filtering: test_stream.py)
            ROUTES_WALKED.update({("POST", "/api/auth/login"), ("POST", "/api/auth/logout"),  # no ids (test_auth)
                                  ("POST", "/api/me/password")})  # only the caller's own (test_members)

            # Nothing of theirs changed.
            assert ok(await their_admin.get(f"/api/orders/{their_order}"))["stage"] == "new"
            assert ok(await their_admin.get(f"/api/customers/{their_customer}"))["tags"] == []
            their_timeline = ok(await their_admin.get(f"/api/conversations/{their_conv}/timeline"))["items"]
            assert [i["kind"] for i in their_timeline] == ["message"]
            assert ok(await their_admin.get(f"/api/conversations/{their_conv}"))["unread_count"] == 1
            assert their_item in {i["id"] for i in ok(await their_admin.get("/api/library"))["items"]}
            assert [r["text"] for r in ok(await their_admin.get("/api/replies"))["items"]] == ["theirs"]
            assert (await their_admin.get(f"/api/media/{their_upload}")).content == PNG
            their_settings = ok(await their_admin.get(f"/api/admin/workspaces/{theirs.workspace_id}"))["workspace"]
            assert their_settings["auto_assign"] == "off"

    every_route = {(method, handler.paths.copy().pop()) for handler in API_HANDLERS for method in handler.http_methods}
    every_route |= {("POST", "/api/auth/login"), ("POST", "/api/auth/logout")}
    normalised = {(m, p.replace(":str", "")) for m, p in every_route}
    walked = {(m, t.replace("{our_conv}", "{conversation_id}").replace("{conv}", "{conversation_id}")
               .replace("{customer}", "{customer_id}").replace("{order}", "{order_id}")
               .replace("{media}", "{media_id}").replace("{item}", "{item_id}")
               .replace("{invitation}", "{invitation_id}").replace("{ws}", "{workspace_id}")
               .replace("{their_agent}", "{agent_id}").replace("{reply}", "{reply_id}")) for m, t in ROUTES_WALKED}
    assert normalised <= walked, normalised - walked
