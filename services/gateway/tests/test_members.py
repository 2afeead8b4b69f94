"""Members and invitations: an account belongs to several workspaces without any workspace's admin being
able to set its password, learn whether an email has an account, or take it over; a removed member loses
the workspace at once (its open streams on every replica included); a password change ends the other
sessions."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from faststream.kafka import KafkaBroker
from gateway_testkit import FAST_PASSWORDS, Server, Team, gateway_settings, login, make_team, open_stream

from inbox_core.events import Event
from inbox_core.kafka import publish
from inbox_core.settings import InboxSettings
from inbox_core.topics import CONVERSATIONS
from inbox_gateway.gateway import Gateway

NEW_PASSWORD = "chosen by the invitee"


async def invite(client: httpx.AsyncClient, workspace_id: str, email: str, role: str = "agent") -> httpx.Response:
    return await client.post("/api/admin/invitations", json={"workspace_id": workspace_id, "email": email,
                                                             "role": role})


async def sign_in(client: httpx.AsyncClient, email: str, password: str) -> httpx.Response:
    return await client.post("/api/auth/login", json={"email": email, "password": password})


async def test_an_invitee_sets_its_own_password_and_the_token_works_once(gateway: Gateway) -> None:
    team = await make_team(gateway, "Acme")
    email = f"new-{uuid.uuid4().hex[:6]}@acme.test"
    async with Server(gateway) as server, server.client(await login(server, team.admin)) as admin, \
            server.client() as invitee:
        created = await invite(admin, team.workspace_id, email.upper())
        assert created.status_code == 201 and created.headers["cache-control"] == "no-store"
        token = created.json()["token"]
        assert created.json()["invitation"]["email"] == email and created.json()["invitation"]["role"] == "agent"
        listed = (await admin.get(f"/api/admin/invitations?workspace={team.workspace_id}")).json()["items"]
        assert [i["email"] for i in listed] == [email] and "token" not in listed[0]
        # Only its hash is stored: the database holds no token that works.
        stored = await gateway.accounts.invitations.find_one({"email": email})
        assert stored is not None and token not in str(stored)

        preview = await invitee.get(f"/api/invitations/{token}")
        assert preview.status_code == 200
        assert preview.json()["workspace"] == {"id": team.workspace_id, "name": "Acme"}
        assert preview.json()["account_exists"] is False
        missing = await invitee.post(f"/api/invitations/{token}/accept", json={"name": "Nia"})
        assert missing.status_code == 400  # a new account needs its password
        accepted = await invitee.post(f"/api/invitations/{token}/accept",
                                      json={"name": "Nia", "password": NEW_PASSWORD})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["workspace"]["id"] == team.workspace_id
        assert accepted.json()["agent"]["email"] == email
        # Used up: a second acceptance, or a look, is as if the token never existed.
        again = await invitee.post(f"/api/invitations/{token}/accept", json={"name": "X", "password": NEW_PASSWORD})
        assert again.status_code == 404 and (await invitee.get(f"/api/invitations/{token}")).status_code == 404
        assert (await admin.get(f"/api/admin/invitations?workspace={team.workspace_id}")).json()["items"] == []

        signed_in = await sign_in(invitee, email, NEW_PASSWORD)
        assert signed_in.status_code == 200
        me = (await invitee.get("/api/me", headers={"Authorization": f"Bearer {signed_in.json()['token']}"})).json()
        assert [(w["id"], w["role"]) for w in me["workspaces"]] == [(team.workspace_id, "agent")]


async def test_expired_revoked_and_unknown_tokens_answer_alike(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server, server.client(await login(server, team.admin)) as admin, \
            server.client() as anyone:
        expired = (await invite(admin, team.workspace_id, "late@acme.test")).json()
        await gateway.accounts.invitations.update_one(
            {"_id": expired["invitation"]["id"]}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
        revoked = (await invite(admin, team.workspace_id, "gone@acme.test")).json()
        assert (await admin.delete(f"/api/admin/invitations/{revoked['invitation']['id']}")).status_code == 204
        assert (await admin.delete(f"/api/admin/invitations/{revoked['invitation']['id']}")).status_code == 409
        answers = []
        for token in (expired["token"], revoked["token"], "x" * 43):
            looked = await anyone.get(f"/api/invitations/{token}")
            tried = await anyone.post(f"/api/invitations/{token}/accept", json={"name": "A", "password": NEW_PASSWORD})
            answers.append((looked.status_code, looked.json()["error"]["message"], tried.status_code,
                            tried.json()["error"]["message"]))
        assert len(set(answers)) == 1 and answers[0][0] == answers[0][2] == 404


async def test_concurrent_acceptances_of_one_token_let_exactly_one_in(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server, server.client(await login(server, team.admin)) as admin:
        token = (await invite(admin, team.workspace_id, f"race-{uuid.uuid4().hex[:6]}@acme.test")).json()["token"]
        clients = [server.client() for _ in range(8)]
        try:
            answers = await asyncio.gather(*(c.post(f"/api/invitations/{token}/accept",
                                                    json={"name": f"R{n}", "password": NEW_PASSWORD})
                                             for n, c in enumerate(clients)))
        finally:
            for c in clients:
                await c.aclose()
        statuses = sorted(a.status_code for a in answers)
        # The others find the token used (404), or the account made by the winner (403: sign in first).
        assert statuses.count(200) == 1 and set(statuses) <= {200, 403, 404, 409}, statuses
        winner = next(a for a in answers if a.status_code == 200).json()["agent"]
        assert await gateway.accounts.role_in(team.workspace_id, winner["id"]) == "agent"


async def test_the_answer_to_an_invitation_does_not_tell_whether_the_email_has_an_account(gateway: Gateway) -> None:
    a, b = await make_team(gateway, "Alpha"), await make_team(gateway, "Beta")
    async with Server(gateway) as server, server.client(await login(server, a.admin)) as admin:
        answers = [await invite(admin, a.workspace_id, email) for email in (b.agent.email, "nobody@beta.test")]
        assert [r.status_code for r in answers] == [201, 201]
        shapes = [{k: sorted(v) if isinstance(v, dict) else type(v).__name__ for k, v in r.json().items()}
                  for r in answers]
        assert shapes[0] == shapes[1]
        assert set(answers[0].json()["invitation"]) == {"id", "email", "role", "workspace_id", "expires_at",
                                                        "created_at"}


async def test_no_admin_can_take_over_another_workspaces_account(gateway: Gateway) -> None:
    """The attack of the old POST /api/admin/agents: A's admin pre-registers B's person with a password of its
    choosing, B later adds that email, and A's admin signs in to B. Now an admin sets no password, an existing
    account joins only when signed in as itself, and the old endpoint is gone."""
    a, b = await make_team(gateway, "Alpha"), await make_team(gateway, "Beta")
    victim = f"someone-{uuid.uuid4().hex[:6]}@b-shop.test"
    async with Server(gateway) as server, server.client(await login(server, a.admin)) as admin_a, \
            server.client(await login(server, b.admin)) as admin_b, server.client() as attacker:
        old = await admin_a.post("/api/admin/agents", json={"workspace_id": a.workspace_id, "email": victim,
                                                            "name": "Squat", "password": "chosen-by-a-1"})
        assert old.status_code == 404
        # A's admin squats the email through an invitation of its own workspace, with a password it knows.
        token_a = (await invite(admin_a, a.workspace_id, victim)).json()["token"]
        squatted = await attacker.post(f"/api/invitations/{token_a}/accept",
                                       json={"name": "Squat", "password": "chosen-by-a-1"})
        assert squatted.status_code == 200
        # B invites the same email: its invitation cannot be accepted by creating (or resetting) the account...
        token_b = (await invite(admin_b, b.workspace_id, victim)).json()["token"]
        assert (await attacker.get(f"/api/invitations/{token_b}")).json()["account_exists"] is True
        reset = await attacker.post(f"/api/invitations/{token_b}/accept",
                                    json={"name": "Squat", "password": "chosen-by-a-2"})
        assert reset.status_code == 403
        # ...nor by another signed-in account (A's admin itself)...
        by_other = await admin_a.post(f"/api/invitations/{token_b}/accept", json={})
        assert by_other.status_code == 403
        # ...and the squatted account, signed in, sees only A: B is never reached without B's token.
        session = (await sign_in(attacker, victim, "chosen-by-a-1")).json()["token"]
        me = (await attacker.get("/api/me", headers={"Authorization": f"Bearer {session}"})).json()
        assert [w["id"] for w in me["workspaces"]] == [a.workspace_id]
        numbers = await attacker.get(f"/api/agents?workspace={b.workspace_id}",
                                     headers={"Authorization": f"Bearer {session}"})
        assert numbers.status_code == 404


async def test_an_existing_account_accepts_while_signed_in_as_itself(gateway: Gateway) -> None:
    a, b = await make_team(gateway, "Alpha"), await make_team(gateway, "Beta")
    async with Server(gateway) as server, server.client(await login(server, b.admin)) as admin_b, \
            server.client(await login(server, a.agent)) as agent_a, server.client() as anonymous:
        token = (await invite(admin_b, b.workspace_id, a.agent.email, role="admin")).json()["token"]
        assert (await anonymous.post(f"/api/invitations/{token}/accept", json={})).status_code == 403
        accepted = await agent_a.post(f"/api/invitations/{token}/accept", json={})
        assert accepted.status_code == 200 and accepted.json()["workspace"]["role"] == "admin"
        me = (await agent_a.get("/api/me")).json()
        assert {w["id"]: w["role"] for w in me["workspaces"]} == {a.workspace_id: "agent", b.workspace_id: "admin"}
        # Its password stayed its own.
        assert (await sign_in(anonymous, a.agent.email, a.agent.password)).status_code == 200


async def test_a_removed_member_loses_the_workspace_at_once(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server, server.client(await login(server, team.admin)) as admin, \
            server.client(await login(server, team.agent)) as agent:
        assert (await agent.get(f"/api/agents?workspace={team.workspace_id}")).status_code != 404
        itself = await admin.delete(f"/api/admin/workspaces/{team.workspace_id}/members/{team.admin.id}")
        assert itself.status_code == 403
        removed = await admin.delete(f"/api/admin/workspaces/{team.workspace_id}/members/{team.agent.id}")
        assert removed.status_code == 204
        # The same session, the very next request: the workspace is gone.
        assert (await agent.get(f"/api/agents?workspace={team.workspace_id}")).status_code == 404
        assert (await agent.get("/api/me")).json()["workspaces"] == []
        again = await admin.delete(f"/api/admin/workspaces/{team.workspace_id}/members/{team.agent.id}")
        assert again.status_code == 404


async def test_a_removed_members_open_stream_on_another_replica_loses_the_workspace(
        inbox_settings: InboxSettings, mongo_client: Any, broker: KafkaBroker) -> None:
    """The agency agent of two workspaces has a stream open on replica 1; A's admin removes it through replica
    2. Within a second replica 1's stream stops carrying A's events and keeps carrying B's."""
    replica_1 = Gateway(gateway_settings(inbox_settings), client=mongo_client, passwords=FAST_PASSWORDS)
    replica_2 = Gateway(gateway_settings(inbox_settings), client=mongo_client, passwords=FAST_PASSWORDS,
                        stream=False)
    a, b = await make_team(replica_1, "Alpha"), await make_team(replica_1, "Beta")
    await replica_1.accounts.set_membership(b.workspace_id, a.agent.id, "agent")
    async with Server(replica_1) as one, Server(replica_2) as two:
        assert replica_1.feed is not None
        await asyncio.wait_for(replica_1.feed.ready.wait(), 60)
        async with one.client(await login(one, a.agent)) as agent, open_stream(agent) as stream, \
                two.client(await login(two, a.admin)) as admin:
            assert (await admin.delete(f"/api/admin/workspaces/{a.workspace_id}/members/{a.agent.id}")).status_code \
                == 204
            started = time.monotonic()
            while any(a.workspace_id in s.workspaces for s in replica_1.streams):
                assert time.monotonic() - started < 5, "replica 1's stream still has the workspace"
                await asyncio.sleep(0.05)
            print(f"\nremoval reached the other replica's stream in {time.monotonic() - started:.2f} s")
            of_a = Event(type="test.custom", workspace_id=a.workspace_id, data={"of": "a"})
            of_b = Event(type="test.custom", workspace_id=b.workspace_id, data={"of": "b"})
            await publish(broker, CONVERSATIONS, "same-key", of_a)
            await publish(broker, CONVERSATIONS, "same-key", of_b)  # after A's, in order
            told = await stream.until(lambda e: e.event == "workspaces")
            assert told.data == {"workspaces": [b.workspace_id]}  # the page learns it at once
            seen = await stream.until(lambda e: e.id == of_b.id)
            assert seen.data == {"of": "b"}
            assert not any(e.id == of_a.id for e in stream.events)


async def test_a_password_change_ends_the_other_sessions(gateway: Gateway) -> None:
    team: Team = await make_team(gateway)
    async with Server(gateway) as server:
        laptop, phone = await login(server, team.agent), await login(server, team.agent)
        async with server.client(laptop) as on_laptop, server.client(phone) as on_phone:
            wrong = await on_laptop.post("/api/me/password", json={"current_password": "not-it",
                                                                   "new_password": NEW_PASSWORD})
            assert wrong.status_code == 403
            short = await on_laptop.post("/api/me/password", json={"current_password": team.agent.password,
                                                                   "new_password": "short"})
            assert short.status_code == 400
            changed = await on_laptop.post("/api/me/password", json={"current_password": team.agent.password,
                                                                     "new_password": NEW_PASSWORD})
            assert changed.status_code == 204
            assert (await on_laptop.get("/api/me")).status_code == 200  # the session that changed it stays
            assert (await on_phone.get("/api/me")).status_code == 401
            async with server.client() as anonymous:
                assert (await sign_in(anonymous, team.agent.email, team.agent.password)).status_code == 401
                assert (await sign_in(anonymous, team.agent.email, NEW_PASSWORD)).status_code == 200
