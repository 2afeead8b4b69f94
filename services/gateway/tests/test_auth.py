"""Agents' authentication: argon2 hashes, signed tokens that expire, sessions that logout really ends,
the cookie, roles, and the login rate limit shared by replicas through the database."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from argon2 import PasswordHasher
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


async def test_an_expired_session_is_refused(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    # The stored session is read on every request here (no principal cache): this is about that check.
    # With the cache, a session ends at its token's own exp (the same instant), checked on every request.
    gateway = Gateway(gateway_settings(inbox_settings, principal_cache_s=0), client=mongo_client,
                      passwords=FAST_PASSWORDS, stream=False)
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


def from_address(address: str) -> dict[str, str]:
    """A client address as the one trusted proxy in front of the gateway reports it."""
    return {"X-Forwarded-For": address}


async def test_failed_logins_are_limited_per_email_and_address_and_per_address_across_replicas(
        inbox_settings: InboxSettings, mongo_client: Any) -> None:
    settings = gateway_settings(inbox_settings, login_max_per_email_ip=3, login_max_per_ip=5, login_window_s=600,
                                login_email_free_failures=100, trusted_proxy_hops=1)
    replica_a = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    replica_b = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(replica_a)
    guesser = from_address("203.0.113.7")
    async with Server(replica_a) as a, Server(replica_b) as b, a.client() as ca, b.client() as cb:
        wrong = {"email": team.agent.email, "password": "wrong-password"}
        statuses = [(await client.post("/api/auth/login", json=wrong, headers=guesser)).status_code
                    for client in (ca, cb, ca)]
        assert statuses == [401, 401, 401]
        # The fourth attempt for this email from this address, on either replica, is refused unchecked.
        right = {"email": team.agent.email, "password": team.agent.password}
        limited = await cb.post("/api/auth/login", json=right, headers=guesser)
        assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
        assert 0 < int(limited.headers["retry-after"]) <= 600
        # The owner, from its own address, is not locked out by someone else's guesses.
        assert (await ca.post("/api/auth/login", json=right, headers=from_address("198.51.100.20"))).status_code == 200
        # The guessing address has 2 failures left in all (5 per window): on another email, then refused.
        other_wrong = {"email": team.admin.email, "password": "wrong-password"}
        assert [(await cb.post("/api/auth/login", json=other_wrong, headers=guesser)).status_code
                for _ in range(2)] == [401, 401]
        other = {"email": team.admin.email, "password": team.admin.password}
        assert (await ca.post("/api/auth/login", json=other, headers=guesser)).status_code == 429


async def test_guesses_from_many_addresses_slow_down_but_never_lock_the_owner_out(
        inbox_settings: InboxSettings, mongo_client: Any) -> None:
    settings = gateway_settings(inbox_settings, login_email_free_failures=3, login_email_backoff_max_s=2,
                                trusted_proxy_hops=1)
    gw = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(gw)
    wrong = {"email": team.agent.email, "password": "wrong-password"}
    async with Server(gw) as server, server.client() as client:
        # Three free failures, each from a new address (no per-address count builds up)...
        assert [(await client.post("/api/auth/login", json=wrong, headers=from_address(f"192.0.2.{n}"))).status_code
                for n in range(3)] == [401, 401, 401]
        # ...then each attempt on this email waits after the previous one, whoever makes it.
        statuses = []
        for n in range(3, 8):
            response = await client.post("/api/auth/login", json=wrong, headers=from_address(f"192.0.2.{n}"))
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert 1 <= int(response.headers["retry-after"]) <= 3
        # The first follows the third failure at once: it waits (and so does most of the rest, made in
        # well under the delays).
        assert statuses[0] == 429 and statuses.count(429) >= 3, statuses
        # The owner, waiting what Retry-After says (seconds at most), signs in: slowed, never locked out.
        right = {"email": team.agent.email, "password": team.agent.password}
        owner = from_address("198.51.100.20")
        first = await client.post("/api/auth/login", json=right, headers=owner)
        if first.status_code == 429:
            await asyncio.sleep(int(first.headers["retry-after"]))
            first = await client.post("/api/auth/login", json=right, headers=owner)
        assert first.status_code == 200
        # A success clears the backoff: the next failures are free again.
        assert (await client.post("/api/auth/login", json=wrong, headers=from_address("192.0.2.99"))).status_code == 401
        assert (await client.post("/api/auth/login", json=wrong, headers=from_address("192.0.2.98"))).status_code == 401


async def test_only_failed_logins_count_against_the_limits(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    """An agent signing in on several devices, or a team behind one office address, does not use up the
    limit; guesses still do."""
    settings = gateway_settings(inbox_settings, login_max_per_email_ip=3, login_max_per_ip=4, login_window_s=600)
    gw = Gateway(settings, client=mongo_client, passwords=FAST_PASSWORDS, stream=False)
    team = await make_team(gw)
    async with Server(gw) as server, server.client() as client:
        right = {"email": team.agent.email, "password": team.agent.password}
        assert [(await client.post("/api/auth/login", json=right)).status_code for _ in range(6)] == [200] * 6
        wrong = {"email": team.agent.email, "password": "wrong-password"}
        statuses = [(await client.post("/api/auth/login", json=wrong)).status_code for _ in range(4)]
        assert statuses == [401, 401, 401, 429]
        # The address has had 3 failures, one left: another email's wrong password uses it, then even the
        # right one is refused from this address.
        assert (await client.post("/api/auth/login", json={"email": team.admin.email,
                                                          "password": "wrong"})).status_code == 401
        other = {"email": team.admin.email, "password": team.admin.password}
        assert (await client.post("/api/auth/login", json=other)).status_code == 429


async def test_parallel_logins_hash_on_a_bounded_executor() -> None:
    """Each argon2 hash takes 64 MiB: however many logins arrive at once, at most ``workers`` hash together
    (on the default thread pool fifty parallel logins exceeded the gateway pod's memory)."""
    running = 0
    most = 0
    lock = threading.Lock()

    class CountingHasher(PasswordHasher):
        def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
            nonlocal running, most
            with lock:
                running += 1
                most = max(most, running)
            try:
                time.sleep(0.01)
                return super().verify(hash, password)
            finally:
                with lock:
                    running -= 1

    passwords = Passwords(CountingHasher(time_cost=1, memory_cost=1024, parallelism=1), workers=2)
    hashed = await passwords.hash("s3cret-enough")
    results = await asyncio.gather(*(passwords.verify(hashed, "s3cret-enough") for _ in range(40)))
    assert all(results) and most == 2
async def test_roles_admin_endpoints_are_for_admins(gateway: Gateway) -> None:
    team = await make_team(gateway)
    async with Server(gateway) as server:
        await login(server, team.agent)
        await login(server, team.admin)
        invite = {"workspace_id": team.workspace_id, "email": "new@acme.test", "role": "agent"}
        async with server.client(team.agent.token) as agent:
            for method, path, kwargs in (
                    ("POST", "/api/admin/invitations", {"json": invite}),
                    ("GET", f"/api/admin/invitations?workspace={team.workspace_id}", {}),
                    ("DELETE", f"/api/admin/workspaces/{team.workspace_id}/members/{team.admin.id}", {})):
                refused = await agent.request(method, path, **kwargs)
                assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden", path
        async with server.client(team.admin.token) as admin:
            assert (await admin.post("/api/admin/invitations", json=invite)).status_code == 201
            # Adding agents with a password chosen by an admin is gone.
            assert (await admin.post("/api/admin/agents", json={**invite, "name": "New",
                                                                "password": "long-enough-1"})).status_code == 404


async def test_principals_are_reused_and_forgotten_on_every_replica_when_sessions_or_roles_change(
        inbox_settings: InboxSettings, mongo_client: Any) -> None:
    """A request's principal is read once per principal_cache_s; a logout or a membership change made on
    one replica is seen there at once and on another as soon as its watch sees the change (bounded
    here by waiting on the answer, not on a sleep)."""
    replicas = [Gateway(gateway_settings(inbox_settings, principal_cache_s=3600), client=mongo_client,
                        passwords=FAST_PASSWORDS, stream=False) for _ in range(2)]
    team = await make_team(replicas[0])
    for gw in replicas:
        await gw.start()
    try:
        async with Server(replicas[0]) as one, Server(replicas[1]) as other:
            token = await login(one, team.agent)
            async with one.client(token) as here, other.client(token) as there:
                assert (await there.get("/api/me")).status_code == 200
                reads = 0
                real_roles_of = replicas[1].accounts.roles_of

                async def counted_roles_of(agent_id: str) -> dict[str, str]:
                    nonlocal reads
                    reads += 1
                    return await real_roles_of(agent_id)

                replicas[1].accounts.roles_of = counted_roles_of  # type: ignore[method-assign]
                for _ in range(5):
                    assert (await there.get("/api/me")).status_code == 200
                assert reads == 0  # reused

                # A membership removed on the first replica: gone there at once, on the second soon.
                assert await replicas[0].accounts.remove_membership(team.workspace_id, team.agent.id)
                assert (await here.get("/api/me")).json()["workspaces"] == []
                assert await eventually(lambda: there.get("/api/me"), lambda r: r.json()["workspaces"] == [])

                # A logout on the first replica: refused there at once, on the second soon.
                assert (await here.post("/api/auth/logout")).status_code == 204
                assert (await here.get("/api/me")).status_code == 401
                assert await eventually(lambda: there.get("/api/me"), lambda r: r.status_code == 401)
    finally:
        for gw in replicas:
            await gw.stop()


async def eventually(call: Any, ok: Any, within_s: float = 30.0) -> bool:
    deadline = time.monotonic() + within_s
    while True:
        if ok(await call()):
            return True
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.1)
