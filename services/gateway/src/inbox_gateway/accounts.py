"""The gateway's own data (its MongoDB database): workspaces, agents, memberships, sessions, login counts.

- ``workspaces``: ``{_id, name, currency, created_at}``.
- ``agents``: ``{_id, email (lower case, unique), name, password_hash, created_at}``.
- ``memberships``: one per agent and workspace, ``{_id: "<workspace>:<agent>", workspace_id, agent_id, role}``.
- ``sessions``: one per login, ``{_id, agent_id, created_at, expires_at, revoked_at}``; a token is valid only
  while its session is neither expired nor revoked, so logout ends it on every replica.
- ``login_attempts``: counters per key and fixed window, ``{_id: "<key>@<window>", count, expires_at}``, and
  one backoff per email, ``{_id: "backoff:<email>", failures, next_at, expires_at}``.
- ``invitations``: ``{_id, token_hash (unique), workspace_id, email, role, invited_by, created_at, expires_at,
  accepted_at, accepted_by, revoked_at}``; only the SHA-256 of a token is kept, so the database never holds one
  that works.
- ``changes``: ``{_id: "memberships", version}``, bumped whenever a membership ends or changes, so that every
  replica re-checks its open streams at once.

Expiring documents carry ``expires_at`` and are purged by :meth:`Accounts.purge_expired` (no TTL indexes).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.errors import Forbidden, NotFound
from inbox_core.events import utcnow
from inbox_core.mongo import Document, Index, ensure_indexes

ROLES = ("admin", "agent")


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def normalise_email(email: str) -> str:
    return email.strip().lower()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Workspace:
    id: str
    name: str
    currency: str


@dataclass(frozen=True)
class Agent:
    id: str
    email: str
    name: str
    password_hash: str


@dataclass(frozen=True)
class Member:
    agent: Agent
    role: str


@dataclass(frozen=True)
class Invitation:
    id: str
    workspace_id: str
    email: str
    role: str
    invited_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None

    def usable(self, now: datetime) -> bool:
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class Principal:
    """The agent behind an authenticated request, with its role in each of its workspaces."""

    agent_id: str
    name: str
    email: str
    roles: dict[str, str]  # workspace id -> role
    session_id: str

    @property
    def workspaces(self) -> list[str]:
        return sorted(self.roles)

    @property
    def role(self) -> str:
        return "admin" if "admin" in self.roles.values() else "agent"

    def require_member(self, workspace_id: str) -> str:
        """Another workspace is answered as if it did not exist (404), never 403: ids do not leak."""
        if workspace_id not in self.roles:
            raise NotFound("no such workspace", {"workspace_id": workspace_id})
        return workspace_id

    def require_admin(self, workspace_id: str) -> str:
        self.require_member(workspace_id)
        if self.roles[workspace_id] != "admin":
            raise Forbidden("only an admin of this workspace can do this", {"workspace_id": workspace_id})
        return workspace_id


def _workspace(doc: Document) -> Workspace:
    return Workspace(id=doc["_id"], name=doc.get("name") or "", currency=doc.get("currency") or "")


def _invitation(doc: Document) -> Invitation:
    return Invitation(id=doc["_id"], workspace_id=doc["workspace_id"], email=doc["email"], role=doc["role"],
                      invited_by=doc.get("invited_by") or "", created_at=doc["created_at"],
                      expires_at=doc["expires_at"], accepted_at=doc.get("accepted_at"),
                      revoked_at=doc.get("revoked_at"))


def _agent(doc: Document) -> Agent:
    return Agent(id=doc["_id"], email=doc["email"], name=doc.get("name") or "",
                 password_hash=doc.get("password_hash") or "")


class Accounts:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.workspaces = db["workspaces"]
        self.agents = db["agents"]
        self.memberships = db["memberships"]
        self.sessions = db["sessions"]
        self.attempts = db["login_attempts"]
        self.invitations = db["invitations"]
        self.changes = db["changes"]
        # Called after a change of sessions, memberships or passwords made through this object: the
        # gateway's principal cache (auth.Auth) forgets what it holds, so this replica sees it at once.
        self.on_change: list[Callable[[], None]] = []

    def _changed(self) -> None:
        for listener in self.on_change:
            listener()

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.agents, [Index([("email", ASCENDING)], "email", unique=True)])
        await ensure_indexes(self.memberships, [Index([("agent_id", ASCENDING)], "by_agent"),
                                                Index([("workspace_id", ASCENDING)], "by_workspace")])
        await ensure_indexes(self.sessions, [Index([("expires_at", ASCENDING)], "expires_at"),
                                             Index([("agent_id", ASCENDING)], "by_agent")])
        await ensure_indexes(self.invitations, [Index([("token_hash", ASCENDING)], "token_hash", unique=True),
                                                Index([("workspace_id", ASCENDING)], "by_workspace")])
        await ensure_indexes(self.attempts, [Index([("expires_at", ASCENDING)], "expires_at")])

    # --- workspaces ---------------------------------------------------------------------------------------

    async def create_workspace(self, name: str, currency: str) -> Workspace:
        doc = {"_id": new_id("ws_"), "name": name, "currency": currency, "created_at": utcnow()}
        await self.workspaces.insert_one(doc)
        return _workspace(doc)

    async def get_workspace(self, workspace_id: str) -> Workspace:
        doc = await self.workspaces.find_one({"_id": workspace_id})
        if doc is None:
            raise NotFound("no such workspace", {"workspace_id": workspace_id})
        return _workspace(doc)

    async def get_workspaces(self, ids: list[str]) -> list[Workspace]:
        docs = await self.workspaces.find({"_id": {"$in": ids}}).to_list(None)
        return sorted((_workspace(d) for d in docs), key=lambda w: (w.name.lower(), w.id))

    async def list_workspaces(self) -> list[Workspace]:
        return [_workspace(d) for d in await self.workspaces.find({}).sort("_id", ASCENDING).to_list(None)]

    # --- agents and memberships ---------------------------------------------------------------------------

    async def find_agent(self, email: str) -> Agent | None:
        doc = await self.agents.find_one({"email": normalise_email(email)})
        return _agent(doc) if doc else None

    async def get_agent(self, agent_id: str) -> Agent | None:
        doc = await self.agents.find_one({"_id": agent_id})
        return _agent(doc) if doc else None

    async def insert_agent(self, email: str, name: str, password_hash: str) -> Agent:
        """A new agent; DuplicateKeyError when the email has one already."""
        doc = {"_id": new_id("agt_"), "email": normalise_email(email), "name": name,
               "password_hash": password_hash, "created_at": utcnow()}
        await self.agents.insert_one(doc)
        return _agent(doc)

    async def create_agent(self, email: str, name: str, password_hash: str) -> tuple[Agent, bool]:
        """The agent with this email, created unless it exists; ``True`` when created now (the operator's CLI)."""
        try:
            return await self.insert_agent(email, name, password_hash), True
        except DuplicateKeyError:
            existing = await self.find_agent(email)
            if existing is None:  # removed in between: very unlikely, report rather than guess
                raise
            return existing, False

    async def set_password(self, agent_id: str, password_hash: str) -> None:
        await self.agents.update_one({"_id": agent_id}, {"$set": {"password_hash": password_hash}})
        self._changed()

    async def set_membership(self, workspace_id: str, agent_id: str, role: str) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        await self.memberships.update_one(
            {"_id": f"{workspace_id}:{agent_id}"},
            {"$set": {"role": role}, "$setOnInsert": {"workspace_id": workspace_id, "agent_id": agent_id,
                                                      "created_at": utcnow()}},
            upsert=True)
        await self.bump_memberships_version()  # a role change: every replica's cached principals
        self._changed()

    async def remove_membership(self, workspace_id: str, agent_id: str) -> bool:
        removed = await self.memberships.delete_one({"_id": f"{workspace_id}:{agent_id}"})
        if removed.deleted_count:
            await self.bump_memberships_version()
            self._changed()
        return removed.deleted_count == 1

    async def bump_memberships_version(self) -> None:
        await self.changes.update_one({"_id": "memberships"}, {"$inc": {"version": 1}}, upsert=True)

    async def memberships_version(self) -> int:
        doc = await self.changes.find_one({"_id": "memberships"})
        return int(doc["version"]) if doc else 0

    async def bump_sessions_version(self) -> None:
        await self.changes.update_one({"_id": "sessions"}, {"$inc": {"version": 1}}, upsert=True)

    async def change_versions(self) -> tuple[int, int]:
        """(memberships, sessions) versions, in one read: what the gateway's watch follows."""
        found = self.changes.find({"_id": {"$in": ["memberships", "sessions"]}})
        docs = {d["_id"]: int(d["version"]) async for d in found}
        return docs.get("memberships", 0), docs.get("sessions", 0)

    async def roles_of(self, agent_id: str) -> dict[str, str]:
        docs = await self.memberships.find({"agent_id": agent_id}).to_list(None)
        return {d["workspace_id"]: d["role"] for d in docs}

    async def roles_of_many(self, agent_ids: list[str]) -> dict[str, dict[str, str]]:
        out: dict[str, dict[str, str]] = {agent_id: {} for agent_id in agent_ids}
        async for doc in self.memberships.find({"agent_id": {"$in": agent_ids}}):
            out.setdefault(doc["agent_id"], {})[doc["workspace_id"]] = doc["role"]
        return out

    async def role_in(self, workspace_id: str, agent_id: str) -> str | None:
        doc = await self.memberships.find_one({"_id": f"{workspace_id}:{agent_id}"})
        return doc["role"] if doc else None

    async def members(self, workspace_id: str) -> list[Member]:
        memberships = await self.memberships.find({"workspace_id": workspace_id}).to_list(None)
        roles = {m["agent_id"]: m["role"] for m in memberships}
        agents = await self.agents.find({"_id": {"$in": list(roles)}}).to_list(None)
        out = [Member(_agent(a), roles[a["_id"]]) for a in agents]
        return sorted(out, key=lambda m: (m.agent.name.lower(), m.agent.id))

    # --- sessions -----------------------------------------------------------------------------------------

    async def create_session(self, agent_id: str, ttl: timedelta) -> tuple[str, datetime]:
        now = utcnow()
        session_id = secrets.token_urlsafe(24)
        # Milliseconds: what the database keeps, so the token's exp and the stored expiry agree.
        expires_at = (now + ttl).replace(microsecond=(now + ttl).microsecond // 1000 * 1000)
        await self.sessions.insert_one({"_id": session_id, "agent_id": agent_id, "created_at": now,
                                        "expires_at": expires_at, "revoked_at": None})
        return session_id, expires_at

    async def session_active(self, session_id: str, agent_id: str) -> bool:
        doc = await self.sessions.find_one({"_id": session_id, "agent_id": agent_id, "revoked_at": None,
                                            "expires_at": {"$gt": utcnow()}}, {"_id": 1})
        return doc is not None

    async def active_sessions(self, session_ids: list[str]) -> set[str]:
        """Which of these sessions are neither expired nor revoked (one query for many open streams)."""
        docs = await self.sessions.find({"_id": {"$in": session_ids}, "revoked_at": None,
                                         "expires_at": {"$gt": utcnow()}}, {"_id": 1}).to_list(None)
        return {d["_id"] for d in docs}

    async def revoke_session(self, session_id: str) -> None:
        await self.sessions.update_one({"_id": session_id, "revoked_at": None}, {"$set": {"revoked_at": utcnow()}})
        await self.bump_sessions_version()
        self._changed()

    async def revoke_sessions_of(self, agent_id: str, keep: str | None = None) -> int:
        """Ends every session of the agent but ``keep`` (a password change keeps the one that made it)."""
        query: Document = {"agent_id": agent_id, "revoked_at": None}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        ended = await self.sessions.update_many(query, {"$set": {"revoked_at": utcnow()}})
        if ended.modified_count:
            await self.bump_sessions_version()
        self._changed()
        return ended.modified_count

    # --- invitations --------------------------------------------------------------------------------------

    async def create_invitation(self, workspace_id: str, email: str, role: str, invited_by: str,
                                ttl: timedelta) -> tuple[Invitation, str]:
        """A new invitation and its one-time token (shown once: only its hash is stored)."""
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}")
        token = secrets.token_urlsafe(32)
        now = utcnow()
        expires_at = (now + ttl).replace(microsecond=(now + ttl).microsecond // 1000 * 1000)
        doc = {"_id": new_id("inv_"), "token_hash": token_hash(token), "workspace_id": workspace_id,
               "email": normalise_email(email), "role": role, "invited_by": invited_by,
               "created_at": now.replace(microsecond=now.microsecond // 1000 * 1000), "expires_at": expires_at,
               "accepted_at": None, "accepted_by": None, "revoked_at": None}
        await self.invitations.insert_one(doc)
        return _invitation(doc), token

    async def invitation_by_token(self, token: str) -> Invitation | None:
        doc = await self.invitations.find_one({"token_hash": token_hash(token)})
        return _invitation(doc) if doc else None

    async def get_invitation(self, invitation_id: str) -> Invitation | None:
        doc = await self.invitations.find_one({"_id": invitation_id})
        return _invitation(doc) if doc else None

    async def open_invitations(self, workspace_id: str) -> list[Invitation]:
        docs = await self.invitations.find({"workspace_id": workspace_id, "accepted_at": None,
                                            "revoked_at": None, "expires_at": {"$gt": utcnow()}}).to_list(None)
        return sorted((_invitation(d) for d in docs), key=lambda i: (i.created_at, i.id), reverse=True)

    async def claim_invitation(self, invitation_id: str, agent_id: str) -> bool:
        """Uses the invitation up, once: of concurrent claims exactly one wins (a conditional update of one
        document, atomic on MongoDB and on the project's FerretDB build)."""
        claimed = await self.invitations.update_one(
            {"_id": invitation_id, "accepted_at": None, "revoked_at": None, "expires_at": {"$gt": utcnow()}},
            {"$set": {"accepted_at": utcnow(), "accepted_by": agent_id}})
        return claimed.modified_count == 1

    async def release_invitation(self, invitation_id: str, agent_id: str) -> None:
        """Gives back a claim whose acceptance could not be finished (the account could not be created)."""
        await self.invitations.update_one({"_id": invitation_id, "accepted_by": agent_id},
                                          {"$set": {"accepted_at": None, "accepted_by": None}})

    async def revoke_invitation(self, invitation_id: str) -> bool:
        revoked = await self.invitations.update_one({"_id": invitation_id, "accepted_at": None, "revoked_at": None},
                                                    {"$set": {"revoked_at": utcnow()}})
        return revoked.modified_count == 1

    # --- login rate limit ---------------------------------------------------------------------------------

    async def count_attempt(self, key: str, window_s: int) -> tuple[int, int, str]:
        """Counts one attempt for ``key`` in the current fixed window: (attempts so far, seconds until it ends,
        the counter's id for :meth:`uncount_attempt`).

        One atomic upsert per key: replicas share the count without a read-modify-write race.
        """
        now = utcnow()
        window = int(now.timestamp()) // window_s
        ends = datetime.fromtimestamp((window + 1) * window_s, tz=now.tzinfo)
        doc = await self.attempts.find_one_and_update(
            {"_id": f"{key}@{window}"},
            {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": ends}},
            upsert=True, return_document=ReturnDocument.AFTER)
        assert doc is not None
        return int(doc["count"]), max(1, int((ends - now).total_seconds()) + 1), str(doc["_id"])

    async def uncount_attempt(self, counter_id: str) -> None:
        """Takes back an attempt that succeeded: the limit is on guessing, and an office of agents signing
        in from one address (or one agent on several devices) must not use it up."""
        await self.attempts.update_one({"_id": counter_id, "count": {"$gt": 0}}, {"$inc": {"count": -1}})

    async def claim_email_slot(self, email: str, delay_for: Callable[[int], float], window_s: int) -> int | None:
        """Takes the email's next login slot: None when it is free (and taken now), else the seconds until
        it is. After a few failures each attempt on an email waits a growing delay after the previous one,
        whoever made it: guessing slows to a crawl while the owner waits seconds at most, never a lockout.
        The claim is one conditional upsert (a concurrent claim of a taken slot hits the unique _id)."""
        now = utcnow()
        key = f"backoff:{normalise_email(email)}"
        doc = await self.attempts.find_one({"_id": key})
        failures = int(doc["failures"]) if doc else 0
        try:
            await self.attempts.update_one(
                {"_id": key, "next_at": {"$lte": now}},
                {"$set": {"next_at": now + timedelta(seconds=delay_for(failures)),
                          "expires_at": now + timedelta(seconds=window_s)},
                 "$setOnInsert": {"failures": 0}},
                upsert=True)
        except DuplicateKeyError:
            taken = await self.attempts.find_one({"_id": key})
            wait = (taken["next_at"] - now).total_seconds() if taken else 1.0
            return max(1, int(wait) + 1)
        return None

    async def email_failed(self, email: str, delay_for: Callable[[int], float], window_s: int) -> None:
        now = utcnow()
        doc = await self.attempts.find_one_and_update(
            {"_id": f"backoff:{normalise_email(email)}"},
            {"$inc": {"failures": 1}, "$set": {"expires_at": now + timedelta(seconds=window_s)}},
            upsert=True, return_document=ReturnDocument.AFTER)
        if doc is not None:
            await self.attempts.update_one(
                {"_id": doc["_id"]}, {"$set": {"next_at": now + timedelta(seconds=delay_for(int(doc["failures"])))}})

    async def email_succeeded(self, email: str) -> None:
        await self.attempts.delete_one({"_id": f"backoff:{normalise_email(email)}"})

    async def purge_expired(self) -> int:
        now = utcnow()
        attempts = await self.attempts.delete_many({"expires_at": {"$lt": now}})
        sessions = await self.sessions.delete_many({"expires_at": {"$lt": now}})
        invitations = await self.invitations.delete_many({"expires_at": {"$lt": now - timedelta(days=30)}})
        return attempts.deleted_count + sessions.deleted_count + invitations.deleted_count
