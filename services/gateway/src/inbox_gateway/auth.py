"""Agents' authentication: argon2 password hashes, signed session tokens, revocable sessions, login limits.

A login creates a session (in the database) and returns a JWT (HS256, ``GATEWAY_JWT_SECRET``) naming the
agent (``sub``) and the session (``sid``), with ``exp``; the same token is set as an HttpOnly, SameSite=Lax
cookie for the web UI. A request authenticates with ``Authorization: Bearer <token>`` or the cookie; the
token must verify, and its session must still be active (logout revokes it on every replica at once).
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlsplit

import grpc
import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar import Request

from inbox_core.errors import Forbidden, InboxError, RateLimited
from inbox_gateway.accounts import Accounts, Agent, Principal, normalise_email
from inbox_gateway.settings import GatewaySettings

T = TypeVar("T")
ALGORITHM = "HS256"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Unauthenticated(InboxError):
    code = "unauthenticated"
    grpc_status = grpc.StatusCode.UNAUTHENTICATED
    http_status = 401


class LoginThrottled(RateLimited):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too many login attempts, try again later", {"retry_after": retry_after})
        self.retry_after = retry_after


class Passwords:
    """argon2id hashing (argon2-cffi's defaults) on a small executor of its own: each hash takes tens of
    milliseconds and 64 MiB, so ``workers`` bounds the memory that parallel logins can take (on the default
    thread pool fifty of them exceeded the pod's limit); the rest wait their turn in the queue."""

    def __init__(self, hasher: PasswordHasher | None = None, workers: int = 2) -> None:
        self.hasher = hasher or PasswordHasher()
        self.workers = workers
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        # Verified against when the email is unknown, so an unknown email takes as long as a wrong password.
        self._dummy = self.hasher.hash("not-a-password-of-anyone")

    async def _run(self, work: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self.hasher.hash(password))

    async def verify(self, password_hash: str | None, password: str) -> bool:
        target = password_hash or self._dummy

        def check() -> bool:
            try:
                return self.hasher.verify(target, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

        ok = await self._run(check)
        return ok and bool(password_hash)


class Tokens:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def issue(self, agent_id: str, session_id: str, expires_at: datetime) -> str:
        now = datetime.now(UTC)
        claims = {"sub": agent_id, "sid": session_id, "iat": int(now.timestamp()),
                  "exp": int(expires_at.timestamp())}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def read(self, token: str) -> tuple[str, str] | None:
        """(agent id, session id) of a valid, unexpired token; None for anything else."""
        try:
            claims: dict[str, Any] = jwt.decode(token, self._secret, algorithms=[ALGORITHM],
                                                options={"require": ["exp", "sub", "sid"]})
        except jwt.PyJWTError:
            return None
        agent_id, session_id = claims.get("sub"), claims.get("sid")
        if not isinstance(agent_id, str) or not isinstance(session_id, str):
            return None
        return agent_id, session_id


def client_ip(request: Request[Any, Any, Any], trusted_proxy_hops: int) -> str:
    """The client's address: the peer's, or (behind N trusted proxies) the Nth address from the right of
    X-Forwarded-For, which a client cannot forge past the proxies that append to it."""
    peer = request.client.host if request.client else "unknown"
    if trusted_proxy_hops <= 0:
        return peer
    hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",") if h.strip()]
    if len(hops) < trusted_proxy_hops:
        return peer
    candidate = hops[-trusted_proxy_hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return peer


# Principals kept by :class:`Auth` at most (least recently stored dropped first).
PRINCIPAL_CACHE_MAX = 10_000


class Auth:
    """Sign-in, sign-out and the principal of each request.

    A request's principal (its session active, the agent, its roles: three reads) is kept for
    ``principal_cache_s`` per session, bounded. It is forgotten at once on this replica by every change
    made through :class:`Accounts` (logout, password change, membership added, changed or removed), and
    on every other replica when the gateway's watch sees the memberships or sessions version move (it
    polls once a second: gateway.MEMBERSHIP_POLL_S); the TTL bounds what nothing bumps (an agent's name).
    """

    def __init__(self, settings: GatewaySettings, accounts: Accounts, passwords: Passwords | None = None) -> None:
        self.settings = settings
        self.accounts = accounts
        self.passwords = passwords or Passwords(workers=settings.password_hash_workers)
        self.tokens = Tokens(settings.jwt_secret.get_secret_value())
        self._principals: OrderedDict[tuple[str, str], tuple[float, Principal]] = OrderedDict()
        self._generation = 0  # moved by every forget: a read that began before one is not stored
        accounts.on_change.append(self.forget_principals)

    def forget_principals(self) -> None:
        self._principals.clear()
        self._generation += 1

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.token_ttl_s)

    # --- login and logout ---------------------------------------------------------------------------------

    def email_delay(self, failures: int) -> float:
        """Seconds an email's next attempt waits after ``failures`` failures: none for the first few, then
        doubling up to the cap."""
        free = self.settings.login_email_free_failures
        if failures < free:
            return 0.0
        return float(min(self.settings.login_email_backoff_max_s, 2 ** (failures - free)))

    async def login(self, email: str, password: str, ip: str) -> tuple[str, datetime, Agent]:
        """A new session for valid credentials; :class:`LoginThrottled` past the limits, else
        :class:`Unauthenticated` (the same answer for an unknown email and a wrong password).

        Three limits, all shared by replicas through the database. Per (email, client address) and per
        client address: failures in a fixed window (each attempt is counted before the password is checked,
        so guesses are bounded even while being checked, and a success is taken back). Per email, from any
        address: after a few failures a growing delay between attempts (see :meth:`email_delay`), which
        slows guessing from many addresses without locking the owner out: someone else's guesses cost the
        owner a few seconds, and the owner's own address has its own count.
        """
        email = normalise_email(email)
        window = self.settings.login_window_s
        (by_pair, wait_pair, pair_counter), (by_ip, wait_ip, ip_counter) = await asyncio.gather(
            self.accounts.count_attempt(f"pair:{email}|{ip}", window),
            self.accounts.count_attempt(f"ip:{ip}", window))
        over = [wait for count, limit, wait in ((by_pair, self.settings.login_max_per_email_ip, wait_pair),
                                                (by_ip, self.settings.login_max_per_ip, wait_ip)) if count > limit]
        wait = max(over) if over else await self.accounts.claim_email_slot(email, self.email_delay, window)
        if wait is not None:
            # Refused unchecked, so not a guess: only failures count.
            await asyncio.gather(self.accounts.uncount_attempt(pair_counter), self.accounts.uncount_attempt(ip_counter))
            raise LoginThrottled(wait)
        agent = await self.accounts.find_agent(email)
        if not await self.passwords.verify(agent.password_hash if agent else None, password) or agent is None:
            await self.accounts.email_failed(email, self.email_delay, window)
            raise Unauthenticated("wrong email or password")
        session_id, expires_at = await self.accounts.create_session(agent.id, self.ttl)
        await asyncio.gather(self.accounts.uncount_attempt(pair_counter), self.accounts.uncount_attempt(ip_counter),
                             self.accounts.email_succeeded(email))
        return self.tokens.issue(agent.id, session_id, expires_at), expires_at, agent

    async def change_password(self, principal: Principal, current: str, new: str) -> None:
        """The caller's new password, after checking its current one; every other session of it ends."""
        agent = await self.accounts.get_agent(principal.agent_id)
        if agent is None or not await self.passwords.verify(agent.password_hash, current):
            raise Forbidden("the current password is wrong")
        await self.accounts.set_password(agent.id, await self.passwords.hash(new))
        await self.accounts.revoke_sessions_of(agent.id, keep=principal.session_id)

    async def logout(self, principal: Principal) -> None:
        await self.accounts.revoke_session(principal.session_id)

    # --- requests -----------------------------------------------------------------------------------------

    def token_of(self, request: Request[Any, Any, Any]) -> tuple[str, bool] | None:
        """The request's token and whether it came from the cookie."""
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip(), False
        cookie = request.cookies.get(self.settings.cookie_name)
        return (cookie, True) if cookie else None

    async def principal(self, request: Request[Any, Any, Any]) -> Principal:
        found = self.token_of(request)
        if found is None:
            raise Unauthenticated("sign in first: no session token")
        token, from_cookie = found
        claims = self.tokens.read(token)
        if claims is None:
            raise Unauthenticated("the session token is invalid or expired")
        if from_cookie and request.method not in SAFE_METHODS:
            _check_same_origin(request)
        key = claims
        cached = self._principals.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        agent_id, session_id = claims
        generation = self._generation
        active, agent, roles = await asyncio.gather(
            self.accounts.session_active(session_id, agent_id), self.accounts.get_agent(agent_id),
            self.accounts.roles_of(agent_id))
        if not active or agent is None:
            raise Unauthenticated("the session has ended; sign in again")
        principal = Principal(agent_id=agent.id, name=agent.name, email=agent.email, roles=roles,
                              session_id=session_id)
        if self.settings.principal_cache_s > 0 and generation == self._generation:
            self._principals[key] = (time.monotonic() + self.settings.principal_cache_s, principal)
            self._principals.move_to_end(key)
            while len(self._principals) > PRINCIPAL_CACHE_MAX:
                self._principals.popitem(last=False)
        return principal


def _check_same_origin(request: Request[Any, Any, Any]) -> None:
    """A cookie-authenticated change must come from a page of this origin (SameSite=Lax covers most
    cross-site requests; this covers the rest, e.g. same-site subdomains)."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-origin request
        return
    if origin == "null" or urlsplit(origin).netloc.lower() != request.headers.get("host", "").lower():
        raise Forbidden("cross-origin request refused")
