"""The team's workflow through the API against the real services: the double-reply guard, mentions in
notes, canned replies and auto-assignment."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from gateway_testkit import (
    TEMPLATE,
    Services,
    make_team,
    ok,
    open_stream,
    team_signed_in,
)

from inbox_gateway.gateway import Gateway


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
