"""Agents' authentication: argon2 hashes, signed tokens that expire, sessions that logout really ends,
the cookie, roles, and the login rate limit shared by replicas through the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway_testkit import FAST_PASSWORDS, JWT_SECRET, Server, gateway_settings, login, make_team

from inbox_core.settings import InboxSettings
from inbox_gateway.auth import Passwords, Tokens
from inbox_gateway.gateway import Gateway


async def test_passwords_are_argon2id_hashes_that_verify_only_the_right_password() -> None:
    passwords = Passwords()  # production parameters
    hashed = await passwords.hash("s3cret-enough")
    assert hashed.startswith("$argon2id$") and "s3cret-enough" not in hashed
    assert await passwords.verify(hashed, "s3cret-enough")
    assert not await passwords.verify(hashed, "s3cret-enougH")
    assert not await passwords.verify(None, "s3cret-enough")  # unknown email: still False
    assert not await passwords.verify("not-a-hash", "s3cret-enough")
    assert await passwords.hash("s3cret-enough") != hashed  # salted


def test_tokens_are_signed_and_expire() -> None:
    tokens = Tokens(JWT_SECRET)
    later = datetime.now(UTC) + timedelta(hours=1)
    token = tokens.issue("agt_1", "sid_1", later)
    assert tokens.read(token) == ("agt_1", "sid_1")
    assert tokens.read(tokens.issue("agt_1", "sid_1", datetime.now(UTC) - timedelta(seconds=1))) is None
    assert Tokens("another-secret-0123456789abcdefgh").read(token) is None
    header, payload, signature = token.split(".")
    assert tokens.read(f"{header}.{payload}.{signature[:-2]}xx") is None
    assert tokens.read("garbage") is None


async def test_login_me_logout(gateway: Gateway) -> None:
    team = await make_team(gateway, "Acme")
    async with Server(gateway) as server, server.client() as anonymous:
        assert (await anonymous.get("/api/me")).status_code == 401
        body = (await anonymous.get("/api/me")).json()
        assert body["error"]["code"] == "unauthenticated"

        wrong = await anonymous.post("/api/auth/login", json={"email": team.admin.email, "password": "nope-nope"})
        unknown = await anonymous.post("/api/auth/login", json={"email": "who@nowhere.test", "password": "x"})
        assert wrong.status_code == unknown.status_code == 401
        assert wrong.json()["error"]["code"] == unknown.json()["error"]["code"] == "unauthenticated"

        response = await anonymous.post("/api/auth/login",
                                        json={"email": team.admin.email.upper(), "password": team.admin.password})
        assert response.status_code == 200
        token = response.json()["token"]
        assert response.json()["agent"] == {"id": team.admin.id, "name": team.admin.name, "email": team.admin.email,
                                            "role": "admin"}
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "inbox_session=" in cookie

        async with server.client(token) as admin:
            me = (await admin.get("/api/me")).json()
            assert me["agent"]["id"] == team.admin.id
            assert me["workspaces"] == [{"id": team.workspace_id, "name": "Acme", "role": "admin", "currency": "EUR"}]
            assert (await admin.post("/api/auth/logout")).status_code == 204
            # The same, still unexpired, token is refused once its session ended.
            after = await admin.get("/api/me")
            assert after.status_code == 401 and after.json()["error"]["code"] == "unauthenticated"


async def test_the_cookie_authenticates_and_cross_origin_changes_are_refused(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server, server.client() as browser:
        response = await browser.post("/api/auth/login", json={"email": team.agent.email,
                                                              "password": team.agent.password})
        assert response.status_code == 200
        assert (await browser.get("/api/me")).json()["agent"]["role"] == "agent"  # the cookie jar sent it
        evil = await browser.post("/api/conversations/cnv_x/read", headers={"Origin": "https://evil.example"})
        assert evil.status_code == 403
        assert (await browser.post("/api/auth/logout")).status_code == 204
        assert (await browser.get("/api/me")).status_code == 401


async def test_an_expired_session_is_refused(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server:
        token = await login(server, team.agent)
        agent_id, session_id = gateway.auth.tokens.read(token) or ("", "")
        async with server.client(token) as client:
            assert (await client.get("/api/me")).status_code == 200
            # The token itself is still valid for hours; its session is not.
            await gateway.accounts.sessions.update_one(
                {"_id": session_id}, {"$set": {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}})
            assert (await client.get("/api/me")).status_code == 401
        expired = gateway.auth.tokens.issue(agent_id, session_id, datetime.now(UTC) - timedelta(seconds=5))
        async with server.client(expired) as client:
            assert (await client.get("/api/me")).status_code == 401


async def test_tokens_expire_after_the_configured_ttl(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    gw = Gateway(gateway_settings(inbox_settings, token_ttl_s=3600), client=mongo_client, passwords=FAST_PASSWORDS,
                 stream=False)
    team = await make_team(gw)
    async with Server(gw) as server, server.client() as client:
        response = await client.post("/api/auth/login", json={"email": team.agent.email,
                                                             "password": team.agent.password})
        expires_at = datetime.fromisoformat(response.json()["expires_at"])
        assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
        assert "max-age=3600" in response.headers["set-cookie"].lower()


async def test_login_attempts_are_limited_per_email_and_per_address_across_replicas(
        inbox_settings: InboxSettings, mongo_client: Any) -> None:
    settings = gateway_settings(inbox_settings, login_max_per_email=3, login_max_per_ip=5, login_window_s=600)
    replica_a = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    replica_b = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(replica_a)
    async with Server(replica_a) as a, Server(replica_b) as b, a.client() as ca, b.client() as cb:
        wrong = {"email": team.agent.email, "password": "wrong-password"}
        statuses = [(await client.post("/api/auth/login", json=wrong)).status_code for client in (ca, cb, ca)]
        assert statuses == [401, 401, 401]
        # The fourth attempt for this email, on either replica, is refused even with the right password.
        limited = await cb.post("/api/auth/login", json={"email": team.agent.email, "password": team.agent.password})
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 0 < int(limited.headers["retry-after"]) <= 600
        # Another email from the same address: its sign-in succeeds (and so does not count); the address
        # has one failure left (5 per window), then even the right password is refused.
        other = {"email": team.admin.email, "password": team.admin.password}
        assert (await ca.post("/api/auth/login", json=other)).status_code == 200
        other_wrong = {"email": team.admin.email, "password": "wrong-password"}
        assert (await cb.post("/api/auth/login", json=other_wrong)).status_code == 401
        assert (await ca.post("/api/auth/login", json=other)).status_code == 429


async def test_only_failed_logins_count_against_the_limits(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    """An agent signing in on several devices, or a team behind one office address, does not use up the
    limit; guesses still do."""
    settings = gateway_settings(inbox_settings, login_max_per_email=3, login_max_per_ip=4, login_window_s=600)
    gw = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(gw)
    async with Server(gw) as server, server.client() as client:
        right = {"email": team.agent.email, "password": team.agent.password}
        assert [(await client.post("/api/auth/login", json=right)).status_code for _ in range(6)] == [200] * 6
        wrong = {"email": team.agent.email, "password": "wrong-password"}
        statuses = [(await client.post("/api/auth/login", json=wrong)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        # The address has had 4 failures (its limit): the next attempt from it, for anyone, is refused.
        other = {"email": team.admin.email, "password": team.admin.password}
        assert (await client.post("/api/auth/login", json=other)).status_code == 429


async def test_roles_admin_endpoints_are_for_admins(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server:
        await login(server, team.agent)
        await login(server, team.admin)
        new = {"workspace_id": team.workspace_id, "email": "new@acme.test", "name": "New", "password": "long-enough-1",
               "role": "agent"}
        async with server.client(team.agent.token) as agent:
            refused = await agent.post("/api/admin/agents", json=new)
            assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        async with server.client(team.admin.token) as admin:
            created = await admin.post("/api/admin/agents", json=new)
            assert created.status_code == 201 and created.json()["created"] is True
            again = await admin.post("/api/admin/agents", json={**new, "role": "admin", "password": None})
            assert again.status_code == 201 and again.json()["created"] is False and again.json()["role"] == "admin"
        async with server.client() as anonymous:
            response = await anonymous.post("/api/auth/login", json={"email": "new@acme.test",
                                                                    "password": "long-enough-1"})
            assert response.status_code == 200 and response.json()["agent"]["role"] == "admin"
