"""Every endpoint against the real services (their gRPC servers in-process on free ports, the real test
database and Kafka): the three columns for one workspace, what colleagues see on the stream, and the
isolation walk: every endpoint with another workspace's ids answers 404 or 403 and changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from gateway_testkit import (
    FAST_PASSWORDS,
    Server,
    Services,
    Team,
    gateway_settings,
    login,
    make_team,
    open_stream,
)

from inbox_conversations.outbox import Topics
from inbox_core.settings import InboxSettings
from inbox_gateway.gateway import Gateway
from inbox_gateway.http import API_HANDLERS

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 200
TEMPLATE = {"name": "order_update", "language": "en_US", "status": "APPROVED", "category": "UTILITY",
            "components": [{"type": "BODY", "text": "Hi {{1}}, your order {{2}} shipped"}]}


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)
    return response.json() if response.content else None


@pytest.fixture
async def gw(inbox_settings: InboxSettings, mongo_client: Any, services: Services, test_topics: Topics) -> Gateway:
    topics = [test_topics.conversations, test_topics.customers, test_topics.orders, f"{test_topics.conversations}.p"]
    return Gateway(gateway_settings(inbox_settings, stream_heartbeat_s=0.5, **services.targets()),
                   client=mongo_client, passwords=FAST_PASSWORDS, stream_topics=topics)


async def connect(admin: httpx.AsyncClient, team: Team, services: Services) -> None:
    services.own_number(team.number, team.waba, "EAAG-secret-token")
    body = {"workspace_id": team.workspace_id, "phone_number_id": team.number, "display_phone_number": "15550001111",
            "name": "Shop", "waba_id": team.waba, "access_token": "EAAG-secret-token"}
    number = ok(await admin.post("/api/admin/numbers", json=body), 201)["number"]
    assert number["has_access_token"] is True and "EAAG-secret-token" not in str(number)


@asynccontextmanager
async def team_signed_in(gw: Gateway, services: Services) -> AsyncIterator[tuple[Team, httpx.AsyncClient,
                                                                                 httpx.AsyncClient]]:
    """A new team on a running gateway (its stream feed ready), its number connected, its admin and its
    agent signed in."""
    team = await make_team(gw)
    async with Server(gw) as server:
        assert gw.feed is not None
        await asyncio.wait_for(gw.feed.ready.wait(), 60)
        admin, agent = server.client(await login(server, team.admin)), server.client(await login(server, team.agent))
        async with admin, agent:
            await connect(admin, team, services)
            yield team, admin, agent


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


@pytest.mark.timeout(240)
async def test_the_double_reply_guard(gw: Gateway, services: Services) -> None:
    """A reply after what the agent had seen, by a colleague, refuses the send (409 conflict, who and when)
    unless forced; the agent's own reply, or a send without after_seq, goes through."""
    async with team_signed_in(gw, services) as (team, admin, agent):
        conv = await services.inbound(team, "34600777111", "Is the blue one back?", name="Ada Lovelace")
        await services.templates(team, [TEMPLATE])
        seen = max(i["seq"] for i in ok(await agent.get(f"/api/conversations/{conv}/timeline"))["items"])
        mine = ok(await agent.post(f"/api/conversations/{conv}/messages",
                                   json={"type": "text", "text": "Checking", "after_seq": seen}), 202)["message"]
        # Its own reply is no conflict.
        moment = ok(await agent.post(f"/api/conversations/{conv}/messages",
                                     json={"type": "text", "text": "One moment", "after_seq": seen}),
                    202)["message"]
        # The colleague had seen only the first reply: refused; having seen both, sent.
        late = await admin.post(f"/api/conversations/{conv}/messages",
                                json={"type": "text", "text": "Yes, it is!", "after_seq": mine["seq"]})
        assert late.status_code == 409 and late.json()["error"]["details"]["seq"] == moment["seq"]
        theirs = ok(await admin.post(f"/api/conversations/{conv}/messages",
                                     json={"type": "text", "text": "Yes, it is!", "after_seq": moment["seq"]}),
                    202)["message"]
        before = len(ok(await agent.get(f"/api/conversations/{conv}/timeline"))["items"])
        for path, body in ((f"/api/conversations/{conv}/messages", {"type": "text", "text": "Yes, it is"}),
                           (f"/api/conversations/{conv}/templates", {
                               "name": "order_update", "language": "en_US", "params": {"body": ["Ada", "#1"]}})):
            refused = await agent.post(path, json={**body, "after_seq": mine["seq"]})
            assert refused.status_code == 409, refused.text
            error = refused.json()["error"]
            assert error["code"] == "conflict"
            assert error["details"]["replied_by"] == {"id": team.admin.id, "name": team.admin.name}
            assert error["details"]["seq"] == theirs["seq"] and error["details"]["at"]
        assert len(ok(await agent.get(f"/api/conversations/{conv}/timeline"))["items"]) == before  # none sent
        forced = ok(await agent.post(f"/api/conversations/{conv}/messages", json={
            "type": "text", "text": "Yes, it is", "after_seq": mine["seq"], "force": True}), 202)["message"]
        assert forced["seq"] > theirs["seq"]
        ok(await agent.post(f"/api/conversations/{conv}/messages", json={"type": "text", "text": "No guard"}), 202)
        assert (await agent.post(f"/api/conversations/{conv}/messages", json={
            "type": "text", "text": "x", "after_seq": -1})).status_code == 400


@pytest.mark.timeout(180)
async def test_mentions_in_notes(gw: Gateway, services: Services) -> None:
    """A note mentions agents of its workspace (others are a 400): the note carries them, each mentioned agent
    (and only it) gets a `mention` on its stream, sees unseen_mentions and the mentions filter list it, and
    reading the conversation clears its own mentions only."""
    other = await make_team(gw, "Elsewhere")
    async with team_signed_in(gw, services) as (team, admin, agent), open_stream(agent) as agent_stream, \
            open_stream(admin) as admin_stream:
        conv = await services.inbound(team, "34600888111", "Can I pay by invoice?", name="Ada Lovelace")
        quiet = await services.inbound(team, "34600888222", "Hi", name="Grace Hopper")
        path = f"/api/conversations/{conv}/notes"
        for strangers in (["agt_nobody"], [other.agent.id], [team.agent.id, other.admin.id]):
            refused = await admin.post(path, json={"text": "who?", "mentions": strangers})
            assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_request", refused.text
        assert [i for i in ok(await admin.get(f"/api/conversations/{conv}/timeline"))["items"]
                if i["kind"] == "note"] == []  # nothing was saved

        note = ok(await admin.post(path, json={"text": "@Acme agent can you check invoices?",
                                               "mentions": [team.agent.id, team.agent.id, team.admin.id]}),
                  201)["note"]
        assert note["mentions"] == [{"id": team.agent.id, "name": team.agent.name},
                                    {"id": team.admin.id, "name": team.admin.name}]
        told = await agent_stream.until(lambda e: e.event == "mention")
        assert told.data["conversation_id"] == conv and told.data["note"]["id"] == note["id"]
        assert told.data["by"] == {"id": team.admin.id, "name": team.admin.name}
        # The author mentioned itself: the note is there, no mention event for it.
        await admin_stream.until(lambda e: e.event == "note.created" and e.data["note"]["id"] == note["id"])
        timeline = ok(await agent.get(f"/api/conversations/{conv}/timeline"))["items"]
        assert [i["mentions"] for i in timeline if i["kind"] == "note"] == [note["mentions"]]

        assert ok(await agent.get(f"/api/conversations/{conv}"))["unseen_mentions"] == 1
        assert ok(await admin.get(f"/api/conversations/{conv}"))["unseen_mentions"] == 0  # its own note
        listed = ok(await agent.get("/api/conversations", params={"filter": "mentions"}))["items"]
        assert [(c["id"], c["unseen_mentions"]) for c in listed] == [(conv, 1)]
        assert ok(await admin.get("/api/conversations", params={"filter": "mentions"}))["items"] == []
        assert {c["id"]: c["unseen_mentions"] for c in ok(await agent.get("/api/conversations"))["items"]} == {
            conv: 1, quiet: 0}
        assert ok(await agent.get("/api/conversations", params={"filter": "mentions", "q": "ada"}))["items"][0][
            "id"] == conv
        assert ok(await agent.get("/api/conversations", params={"filter": "mentions", "q": "grace"}))["items"] == []

        ok(await admin.post(path, json={"text": "and the VAT number?", "mentions": [team.agent.id]}), 201)
        await agent_stream.until(lambda e: e.event == "mention")
        assert ok(await agent.get(f"/api/conversations/{conv}"))["unseen_mentions"] == 2
        ok(await admin.post(f"/api/conversations/{quiet}/notes", json={"text": "no one"}), 201)

        read = ok(await agent.post(f"/api/conversations/{conv}/read"))
        assert read["conversation"]["unseen_mentions"] == 0
        assert ok(await agent.get(f"/api/conversations/{conv}"))["unseen_mentions"] == 0
        assert ok(await agent.get("/api/conversations", params={"filter": "mentions"}))["items"] == []
        # A mention of two: the read of one leaves the other's.
        ok(await agent.post(path, json={"text": "both of us", "mentions": [team.admin.id, team.agent.id]}), 201)
        await admin_stream.until(lambda e: e.event == "mention")
        ok(await admin.post(f"/api/conversations/{conv}/read"))
        assert ok(await admin.get(f"/api/conversations/{conv}"))["unseen_mentions"] == 0
        assert ok(await agent.get(f"/api/conversations/{conv}"))["unseen_mentions"] == 0  # its own note
        too_many = await admin.post(path, json={"text": "x", "mentions": [f"agt_{i}" for i in range(21)]})
        assert too_many.status_code == 400
        streamed = [e for e in agent_stream.events if e.event == "conversation.updated"]
        assert all("unseen_mentions" not in e.data for e in streamed)
        # Each mention went to the agent mentioned, and to no one else.
        assert len([e for e in agent_stream.events if e.event == "mention"]) == 2
        assert [e.data["by"]["id"] for e in admin_stream.events if e.event == "mention"] == [team.agent.id]


@pytest.mark.timeout(180)
async def test_canned_replies(gw: Gateway, services: Services) -> None:
    """Admins manage a workspace's canned replies (shortcut unique, bad input a 400); any member lists them by
    prefix and renders one for a conversation, its placeholders filled and unknown ones left empty."""
    async with team_signed_in(gw, services) as (team, admin, agent):
        conv = await services.inbound(team, "34600777111", "Do you ship to Spain?", name="Ada Lovelace")
        ws = team.workspace_id
        body = {"workspace_id": ws, "shortcut": "thanks", "title": "Thank you",
                "text": "Hi {{customer.first_name}}, thanks for writing! {{ agent.name }} ({{customer.name}}){{x.y}}"}
        thanks = ok(await admin.post("/api/replies", json=body), 201)["reply"]
        assert {k: thanks[k] for k in ("shortcut", "title", "workspace_id")} == {
            "shortcut": "thanks", "title": "Thank you", "workspace_id": ws}
        shipping = ok(await admin.post("/api/replies", json={"workspace_id": ws, "shortcut": "/ship",
                                                              "text": "We ship everywhere in the EU."}), 201)["reply"]
        assert shipping["shortcut"] == "ship" and shipping["title"] == "ship"  # the '/' is not part of it

        taken = await admin.post("/api/replies", json={**body, "shortcut": "Thanks"})
        assert taken.status_code == 409 and taken.json()["error"]["code"] == "conflict"
        assert (await agent.post("/api/replies", json={**body, "shortcut": "other"})).status_code == 403
        for bad in ({"shortcut": "two words"}, {"shortcut": ""}, {"text": ""}, {"text": "   "},
                    {"shortcut": "x" * 40}, {"title": "t" * 101}, {"surprise": 1}):
            answer = await admin.post("/api/replies", json={**body, "shortcut": "fine", **bad})
            assert answer.status_code == 400, (bad, answer.text)
            assert answer.json()["error"]["code"] == "invalid_request"

        def shortcuts(page: Any) -> list[str]:
            return [r["shortcut"] for r in page["items"]]

        assert shortcuts(ok(await agent.get("/api/replies", params={"workspace": ws}))) == ["ship", "thanks"]
        assert shortcuts(ok(await agent.get("/api/replies", params={"q": "TH"}))) == ["thanks"]
        assert shortcuts(ok(await agent.get("/api/replies", params={"q": "thank y"}))) == ["thanks"]  # the title
        assert shortcuts(ok(await agent.get("/api/replies", params={"q": "nothing"}))) == []

        rendered = ok(await agent.get(f"/api/conversations/{conv}/replies/{thanks['id']}"))["text"]
        assert rendered == f"Hi Ada, thanks for writing! {team.agent.name} (Ada Lovelace)"
        nameless = await services.inbound(team, "34600777222", "hola", name="")
        assert ok(await agent.get(f"/api/conversations/{nameless}/replies/{thanks['id']}"))["text"] == (
            f"Hi , thanks for writing! {team.agent.name} ()")
        assert (await agent.get(f"/api/conversations/{conv}/replies/reply_nope")).status_code == 404

        changed = ok(await admin.patch(f"/api/replies/{thanks['id']}", json={"text": "Thanks, {{customer.name}}!"}))
        assert changed["reply"]["shortcut"] == "thanks" and changed["reply"]["title"] == "Thank you"
        assert ok(await agent.get(f"/api/conversations/{conv}/replies/{thanks['id']}"))["text"] == (
            "Thanks, Ada Lovelace!")
        clash = await admin.patch(f"/api/replies/{thanks['id']}", json={"shortcut": "SHIP"})
        assert clash.status_code == 409 and clash.json()["error"]["code"] == "conflict"
        assert ok(await admin.patch(f"/api/replies/{thanks['id']}", json={"shortcut": "ty"}))["reply"]["shortcut"] == (
            "ty")
        assert (await admin.patch(f"/api/replies/{thanks['id']}", json={"text": ""})).status_code == 400
        assert (await agent.patch(f"/api/replies/{thanks['id']}", json={"title": "mine"})).status_code == 403
        assert (await agent.delete(f"/api/replies/{thanks['id']}")).status_code == 403
        assert (await admin.delete(f"/api/replies/{thanks['id']}")).status_code == 204
        assert (await admin.delete(f"/api/replies/{thanks['id']}")).status_code == 404
        assert (await admin.patch(f"/api/replies/{thanks['id']}", json={"title": "gone"})).status_code == 404
        assert shortcuts(ok(await agent.get("/api/replies"))) == ["ship"]
        # The shortcut is free again once its reply is gone.
        assert ok(await admin.post("/api/replies", json=body), 201)["reply"]["shortcut"] == "thanks"


async def wait_online(client: httpx.AsyncClient, agent_id: str) -> None:
    """Until presence has the agent's stream heartbeat (the gateway sends it as the stream opens)."""
    deadline = asyncio.get_running_loop().time() + 20
    while not {m["id"]: m for m in ok(await client.get("/api/agents"))["items"]}[agent_id]["online"]:
        assert asyncio.get_running_loop().time() < deadline, "never online"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(180)
async def test_auto_assignment(gw: Gateway, services: Services) -> None:
    """Off by default; only admins read or change it; round robin gives a customer message's open,
    unassigned conversation to the online agent with the fewest open assigned conversations."""
    async with team_signed_in(gw, services) as (team, admin, agent), open_stream(admin):
        ws = team.workspace_id
        settings = ok(await admin.get(f"/api/admin/workspaces/{ws}"))["workspace"]
        assert settings == {"id": ws, "name": "Acme", "auto_assign": "off"}
        assert (await agent.get(f"/api/admin/workspaces/{ws}")).status_code == 403
        refused = await agent.patch(f"/api/admin/workspaces/{ws}", json={"auto_assign": "round_robin"})
        assert refused.status_code == 403
        for bad in ({"auto_assign": "random"}, {"auto_assign": 1}, {"surprise": True}, []):
            answer = await admin.patch(f"/api/admin/workspaces/{ws}", json=bad)
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_request", (bad, answer.text)
        other = await make_team(gw, "Other")
        assert (await admin.get(f"/api/admin/workspaces/{other.workspace_id}")).status_code == 404
        assert (await admin.patch(f"/api/admin/workspaces/{other.workspace_id}",
                                  json={"auto_assign": "round_robin"})).status_code == 404
        assert ok(await admin.patch(f"/api/admin/workspaces/{ws}", json={}))["workspace"]["auto_assign"] == "off"

        await wait_online(admin, team.admin.id)
        unrouted = await services.inbound(team, "34600555001", "Hello?")
        assert ok(await agent.get(f"/api/conversations/{unrouted}"))["assignee"] is None  # off

        changed = ok(await admin.patch(f"/api/admin/workspaces/{ws}", json={"auto_assign": "round_robin"}))
        assert changed["workspace"]["auto_assign"] == "round_robin"
        assert ok(await admin.get(f"/api/admin/workspaces/{ws}"))["workspace"]["auto_assign"] == "round_robin"
        # Only the admin is online: the agent (offline) gets nothing.
        first = await services.inbound(team, "34600555002", "Where is my parcel?")
        assert ok(await agent.get(f"/api/conversations/{first}"))["assignee"]["id"] == team.admin.id
        activity = [i for i in ok(await agent.get(f"/api/conversations/{first}/timeline"))["items"]
                    if i["kind"] == "activity"]
        assert [(a["action"], a["actor"], a["details"]["assignee"]["id"]) for a in activity] == [
            ("assigned", None, team.admin.id)]
        async with open_stream(agent):
            await wait_online(admin, team.agent.id)
            second = await services.inbound(team, "34600555003", "Can I return shoes?")
            assert ok(await agent.get(f"/api/conversations/{second}"))["assignee"]["id"] == team.agent.id  # 0 < 1
            mine = ok(await agent.get("/api/conversations", params={"filter": "mine"}))["items"]
            assert [c["id"] for c in mine] == [second]
        ok(await admin.patch(f"/api/admin/workspaces/{ws}", json={"auto_assign": "off"}))
        last = await services.inbound(team, "34600555004", "Thanks")
        assert ok(await agent.get(f"/api/conversations/{last}"))["assignee"] is None


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

