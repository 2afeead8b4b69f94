"""Every endpoint against the real services (their gRPC servers in-process on free ports, the real test
database and Kafka): the three columns for one workspace, what colleagues see on the stream, resolving and
snoozing, and free-form JSON a struct cannot carry. The team's workflow is test_team_workflow_api.py's, the
isolation walk test_isolation.py's."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

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
    team_signed_in,
)

from inbox_gateway.gateway import Gateway


@pytest.mark.timeout(240)
async def test_the_three_columns_and_the_stream(gw: Gateway, services: Services) -> None:
    team = await make_team(gw)
    async with Server(gw) as server:
        assert gw.feed is not None
        await asyncio.wait_for(gw.feed.ready.wait(), 60)
        admin, agent = server.client(await login(server, team.admin)), server.client(await login(server, team.agent))
        async with admin, agent, open_stream(admin) as colleague:
            await connect(admin, team, services)
            conv = await services.inbound(team, "34600111222", "Is my order shipped?", name="Ada Lovelace")
            numbers = ok(await agent.get("/api/numbers"))["items"]
            assert [(n["id"], n["unread_conversations"], n["workspace_id"]) for n in numbers] == [
                (team.number, 1, team.workspace_id)]

            # Left column.
            page = ok(await agent.get("/api/conversations"))
            assert [c["id"] for c in page["items"]] == [conv] and page["next_cursor"] is None
            row = page["items"][0]
            assert row["unread_count"] == 1 and row["awaiting_reply"] is True and row["window"]["open"] is True
            assert row["customer"]["name"] == "Ada Lovelace" and row["last_message"]["direction"] == "in"
            assert row["composing"] == []
            for params in ({"number": team.number}, {"filter": "unread"}, {"filter": "no_reply"}, {"q": "ada"},
                           {"q": "600111"}):
                assert [c["id"] for c in ok(await agent.get("/api/conversations", params=params))["items"]] == [conv]
            assert ok(await agent.get("/api/conversations", params={"filter": "mine"}))["items"] == []
            assert ok(await agent.get(f"/api/conversations/{conv}"))["id"] == conv

            # Center column.
            timeline = ok(await agent.get(f"/api/conversations/{conv}/timeline"))
            assert [(i["kind"], i.get("text")) for i in timeline["items"]] == [("message", "Is my order shipped?")]
            sent = ok(await agent.post(f"/api/conversations/{conv}/messages", json={"type": "text", "text": "Yes!"},
                                       headers={"Idempotency-Key": "k-1"}), 202)["message"]
            assert sent["status"] == "pending" and sent["sent_by"]["id"] == team.agent.id
            again = ok(await agent.post(f"/api/conversations/{conv}/messages", json={"type": "text", "text": "Yes!"},
                                        headers={"Idempotency-Key": "k-1"}), 202)["message"]
            assert again["id"] == sent["id"]
            note = ok(await agent.post(f"/api/conversations/{conv}/notes", json={"text": "VIP customer"}), 201)["note"]
            assert note["author"]["id"] == team.agent.id
            assigned = ok(await agent.post(f"/api/conversations/{conv}/assign", json={"agent_id": team.agent.id}))
            assert assigned["conversation"]["assignee"] == {"id": team.agent.id, "name": team.agent.name}
            assert [c["id"] for c in ok(await agent.get("/api/conversations", params={"filter": "mine"}))["items"]] \
                == [conv]
            read = ok(await agent.post(f"/api/conversations/{conv}/read"))["conversation"]
            assert read["unread_count"] == 0
            assert (await agent.post(f"/api/conversations/{conv}/composing", json={"composing": True})).status_code \
                == 204
            seen_by_admin = ok(await admin.get(f"/api/conversations/{conv}"))
            assert seen_by_admin["composing"] == [{"agent_id": team.agent.id, "name": team.agent.name}]
            assert ok(await agent.get(f"/api/conversations/{conv}"))["composing"] == []  # not oneself
            assert (await agent.post(f"/api/conversations/{conv}/viewing", json={"viewing": True})).status_code == 204
            viewers = [{"agent_id": team.agent.id, "name": team.agent.name}]
            assert ok(await admin.get(f"/api/conversations/{conv}"))["viewing"] == viewers
            assert [c["viewing"] for c in ok(await admin.get("/api/conversations"))["items"]] == [viewers]
            assert ok(await agent.get(f"/api/conversations/{conv}"))["viewing"] == []  # not oneself
            assert (await agent.post(f"/api/conversations/{conv}/viewing", json={"viewing": False})).status_code \
                == 204
            assert ok(await admin.get(f"/api/conversations/{conv}"))["viewing"] == []

            # Templates and the library.
            await services.templates(team, [TEMPLATE])
            templates = ok(await agent.get("/api/templates", params={"number": team.number}))["items"]
            assert [(t["name"], t["status"]) for t in templates] == [("order_update", "APPROVED")]
            bad = await agent.post(f"/api/conversations/{conv}/templates",
                                   json={"name": "order_update", "language": "en_US", "params": {"body": ["Ada"]}})
            assert bad.status_code == 422 and bad.json()["error"]["code"] == "validation_failed"
            templated = ok(await agent.post(f"/api/conversations/{conv}/templates", json={
                "name": "order_update", "language": "en_US", "params": {"body": ["Ada", "#12"]}}), 202)["message"]
            assert templated["type"] == "template" and templated["template"]["params"] == {"body": ["Ada", "#12"]}
            snippet = ok(await admin.post("/api/library", json={"workspace_id": team.workspace_id, "type": "text",
                                                                "title": "Hi", "text": "Hello there"}), 201)["item"]
            upload = ok(await agent.post("/api/uploads", files={"file": ("p.png", PNG, "image/png")}), 201)
            image = ok(await admin.post("/api/library", json={"workspace_id": team.workspace_id, "type": "image",
                                                              "upload_id": upload["upload_id"]}), 201)["item"]
            library = ok(await agent.get("/api/library", params={"workspace": team.workspace_id}))["items"]
            assert {i["id"] for i in library} == {snippet["id"], image["id"]}
            kept = await services.media.info(upload["upload_id"])
            assert kept is not None and "kept_at" in kept.metadata, "a library item's file is never purged as unsent"
            photo = ok(await agent.post(f"/api/conversations/{conv}/messages", json={
                "type": "image", "upload_id": upload["upload_id"], "caption": "here"}), 202)["message"]
            assert photo["media"]["id"] == upload["upload_id"]
            from_library = ok(await agent.post(f"/api/conversations/{conv}/messages", json={
                "type": "image", "library_item_id": image["id"]}), 202)["message"]
            assert from_library["media"]["id"] == upload["upload_id"]
            wrong_kind = await agent.post(f"/api/conversations/{conv}/messages", json={
                "type": "video", "upload_id": upload["upload_id"]})
            assert wrong_kind.status_code == 422
            assert (await agent.delete(f"/api/library/{snippet['id']}")).status_code == 403  # agents do not
            assert (await admin.delete(f"/api/library/{snippet['id']}")).status_code == 204
            assert (await admin.delete(f"/api/library/{snippet['id']}")).status_code == 404

            # Right column.
            panel = ok(await agent.get(f"/api/conversations/{conv}/panel"))
            customer_id = panel["customer"]["id"]
            assert panel["customer"]["name"] == "Ada Lovelace" and panel["orders"] == []
            assert panel["stats"]["revenue"]["currency"] == "EUR" and panel["current_order"] is None
            order_body = {"conversation_id": conv, "items": [{"sku": "MUG", "name": "Mug", "quantity": 2,
                                                              "unit_price": "12.50"}],
                          "shipping": {"name": "Ada", "line1": "1 Main St", "city": "London", "country": "gb"}}
            order = ok(await agent.post("/api/orders", json=order_body, headers={"Idempotency-Key": "form-1"}),
                       201)["order"]
            assert order["total"] == {"amount": "25.00", "currency": "EUR"}
            assert order["created_by"]["id"] == team.agent.id and order["customer_id"] == customer_id
            assert order["shipping"]["country"] == "GB" and order["stage"] == "new"
            twice = ok(await agent.post("/api/orders", json=order_body, headers={"Idempotency-Key": "form-1"}), 201)
            assert twice["order"]["id"] == order["id"]
            assert ok(await agent.get(f"/api/orders/{order['id']}"))["number"] == order["number"]
            moved = ok(await agent.post(f"/api/orders/{order['id']}/stage", json={"stage": "confirmed"}))["order"]
            assert [h["stage"] for h in moved["stage_history"]] == ["new", "confirmed"]
            impossible = await agent.post(f"/api/orders/{order['id']}/stage", json={"stage": "returned"})
            assert impossible.status_code == 409 and impossible.json()["error"]["code"] == "conflict"
            panel = ok(await agent.get(f"/api/conversations/{conv}/panel"))
            assert [o["id"] for o in panel["orders"]] == [order["id"]] and panel["current_order"]["id"] == order["id"]
            patched = ok(await agent.patch(f"/api/customers/{customer_id}",
                                           json={"tags": ["vip", "vip", "b2b"], "attributes": {"size": "M"}}))
            assert patched["tags"] == ["vip", "b2b"] and patched["attributes"] == {"size": "M"}
            assert ok(await agent.get(f"/api/customers/{customer_id}"))["tags"] == ["vip", "b2b"]

            # The team: the admin has a stream open, so presence shows it online.
            members = {m["id"]: m for m in ok(await agent.get("/api/agents"))["items"]}
            assert set(members) == {team.admin.id, team.agent.id}
            assert members[team.admin.id]["online"] is True and members[team.admin.id]["role"] == "admin"

            # The window: a customer who last wrote 25 hours ago can only get a template.
            old = await services.inbound(team, "34600999888", "old", at=datetime.now(UTC) - timedelta(hours=25))
            closed = await agent.post(f"/api/conversations/{old}/messages", json={"type": "text", "text": "hi"})
            assert closed.status_code == 409 and closed.json()["error"]["code"] == "window_closed"
            ok(await agent.post(f"/api/conversations/{old}/templates", json={
                "name": "order_update", "language": "en_US", "params": {"body": ["Ada", "#13"]}}), 202)

            # What the colleague (the admin) saw on the stream, from the services' events.
            wanted = {"note.created", "activity.created", "conversation.updated", "message.created",
                      "order.updated", "customer.updated", "composing", "viewing"}
            names: set[str] = set()
            while not wanted <= names:
                names.add((await colleague.next(30)).event)
            notes = [e for e in colleague.events if e.event == "note.created"]
            assert notes[0].data["note"]["id"] == note["id"]


@pytest.mark.timeout(240)
async def test_resolve_snooze_and_reopen(gw: Gateway, services: Services) -> None:
    """The status endpoint and the list's views: resolve, snooze and reopen with their activity lines, bad
    requests refused, a customer message reopening a resolved conversation, and a colleague's stream."""
    async with team_signed_in(gw, services) as (team, admin, agent), open_stream(admin) as colleague:
        conv = await services.inbound(team, "34600555111", "Where is my parcel?", name="Ada Lovelace")
        other = await services.inbound(team, "34600555222", "Hello", name="Grace Hopper")

        def ids(page: Any) -> set[str]:
            return {c["id"] for c in page["items"]}

        row = ok(await agent.get(f"/api/conversations/{conv}"))
        assert row["status"] == "open" and row["snoozed_until"] is None and row["last_seq"] >= 1
        assert ids(ok(await agent.get("/api/conversations"))) == {conv, other}

        resolved = ok(await agent.post(f"/api/conversations/{conv}/status", json={"status": "resolved"}))
        assert resolved["conversation"]["status"] == "resolved"
        assert ids(ok(await agent.get("/api/conversations"))) == {other}  # open, the default view
        assert ids(ok(await agent.get("/api/conversations", params={"status": "resolved"}))) == {conv}
        assert ids(ok(await agent.get("/api/conversations", params={"status": "any"}))) == {conv, other}

        until = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
        snoozed = ok(await agent.post(f"/api/conversations/{other}/status",
                                      json={"status": "snoozed", "until": until.isoformat()}))["conversation"]
        assert snoozed["status"] == "snoozed"
        assert datetime.fromisoformat(snoozed["snoozed_until"]) == until
        assert ids(ok(await agent.get("/api/conversations", params={"status": "snoozed"}))) == {other}
        assert ids(ok(await agent.get("/api/conversations"))) == set()

        for body in ({"status": "snoozed"}, {"status": "snoozed", "until": "2020-01-01T00:00:00Z"},
                     {"status": "resolved", "until": until.isoformat()}):
            refused = await agent.post(f"/api/conversations/{conv}/status", json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["error"]["code"] == "invalid_request"
        for body in ({"status": "closed"}, {}, {"status": "open", "extra": 1}):
            assert (await agent.post(f"/api/conversations/{conv}/status", json=body)).status_code == 400, body

        # The customer writes again: the resolved conversation is open, automatically.
        await services.inbound(team, "34600555111", "Still waiting", name="Ada Lovelace")
        reopened = ok(await agent.get(f"/api/conversations/{conv}"))
        assert reopened["status"] == "open" and reopened["last_seq"] > row["last_seq"]
        ok(await agent.post(f"/api/conversations/{other}/status", json={"status": "open"}))

        actions = [(i["action"], (i["actor"] or {}).get("id"), i["details"].get("reason"))
                   for i in ok(await agent.get(f"/api/conversations/{conv}/timeline"))["items"]
                   if i["kind"] == "activity"]
        assert actions == [("resolved", team.agent.id, None), ("reopened", None, "customer_message")]
        other_actions = [i["action"] for i in ok(await agent.get(f"/api/conversations/{other}/timeline"))["items"]
                         if i["kind"] == "activity"]
        assert other_actions == ["snoozed", "reopened"]
        items = ok(await agent.get(f"/api/conversations/{conv}/timeline"))["items"]
        assert [i["seq"] for i in items] == sorted(i["seq"] for i in items)

        # The colleague saw the conversation change status on the stream.
        statuses: list[str] = []
        while "resolved" not in statuses or "snoozed" not in statuses:
            event = await colleague.next(30)
            if event.event == "conversation.updated":
                statuses.append(event.data["status"])


async def test_free_form_json_a_struct_cannot_carry_is_a_400_not_a_5xx(gw: Gateway, services: Services) -> None:
    team = await make_team(gw)
    async with Server(gw) as server, server.client(await login(server, team.admin)) as admin:
        await connect(admin, team, services)
        conversation = await services.inbound(team, "34633333333", "hi")
        customer = ok(await admin.get(f"/api/conversations/{conversation}"))["customer"]["id"]
        deep: Any = "leaf"
        for _ in range(300):
            deep = {"d": deep}
        for attributes in ({"huge": 10**400}, {"nested": deep}, {"list": [[[[[[[[[[[[1]]]]]]]]]]]]}):
            answer = await admin.patch(f"/api/customers/{customer}", content=json.dumps({"attributes": attributes}),
                                       headers={"Content-Type": "application/json"})
            assert answer.status_code == 400, (answer.status_code, answer.text[:300])
            assert answer.json()["error"]["code"] == "invalid_request"
        fine = await admin.patch(f"/api/customers/{customer}", json={"attributes": {"tier": "gold", "visits": 3}})
        assert fine.status_code == 200 and fine.json()["attributes"] == {"tier": "gold", "visits": 3}
