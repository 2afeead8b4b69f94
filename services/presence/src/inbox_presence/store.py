"""The presence service's own MongoDB database: who is online, composing and viewing (expiring state).

- ``states``: the running sessions, one per key (kind, workspace, agent[, conversation]; unique
  index), ``_id`` the session id. A stopped session is deleted.
- ``outbox``: events written before they are published, ``_id`` the event id (the entries of
  ``inbox_core.outbox``'s relay, see tracker.SessionEvents). A session's stop event
  has an id derived from the session, so inserting it is the claim: of two replicas stopping the same
  session (a request and an expiry, or two purge loops) exactly one inserts it, and only that one
  deletes the session and publishes. So a published stop is kept (``done``) for a while, for a late
  claimer with an old read of the session to find; a published start is deleted at once.

Why inserts are the claims: FerretDB v1 (what the tests run on) applies an update as read, change,
write back without locking the document, so concurrent ``find_one_and_update`` / ``find_one_and_delete``
calls with the same filter can all "win" and concurrent updates can be lost. Unique inserts and the
count of ``delete_one`` are exact there (and on MongoDB). Updates are used only where losing one to a
concurrent write is harmless: renewals (two renewals racing keep one of two near-equal expiries) and
flags a later call re-checks.

Nothing relies on a TTL index: ``expires_at`` is stored and every read filters on it; the purge loop
stops (and so deletes) what ran out.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.events import Event
from inbox_core.mongo import Document, Index, ensure_indexes
from inbox_presence.domain import Agent, Change, Kind, State

STATE_INDEXES = [
    Index([("key", ASCENDING)], "one_session_per_key", unique=True),
    Index([("workspace_id", ASCENDING), ("kind", ASCENDING), ("conversation_id", ASCENDING)], "workspace_kind"),
    Index([("workspace_id", ASCENDING), ("agent_id", ASCENDING), ("kind", ASCENDING)], "workspace_agent"),
    Index([("expires_at", ASCENDING)], "expiry"),
]
OUTBOX_INDEXES = [
    Index([("done", ASCENDING), ("relay_after", ASCENDING)], "relay_after"),
    Index([("session_id", ASCENDING), ("seq", ASCENDING)], "session"),
    Index([("key", ASCENDING)], "state_key"),
    Index([("done_at", ASCENDING)], "done_at"),
]


@dataclass(frozen=True)
class OutboxEntry:
    """An event of a session that is not known to be on Kafka yet."""

    event: Event
    kafka_key: str
    session_id: str
    key: str  # the state's key
    change: Change
    created_at: datetime
    relay_after: datetime  # before this, the caller that wrote it is still publishing it

    @property
    def seq(self) -> int:
        return 0 if self.change == "start" else 1


def _utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


def state_to_doc(state: State) -> Document:
    return {
        "_id": state.session_id,
        "key": state.key,
        "kind": state.kind,
        "workspace_id": state.workspace_id,
        "agent_id": state.agent.id,
        "agent_name": state.agent.name,
        "conversation_id": state.conversation_id,
        "since": state.since,
        "expires_at": state.expires_at,
        "last_seen": state.last_seen,
    }


def state_from_doc(doc: Document) -> State:
    return State(
        session_id=doc["_id"],
        key=doc["key"],
        kind=doc["kind"],
        workspace_id=doc["workspace_id"],
        agent=Agent(doc["agent_id"], doc.get("agent_name", "")),
        conversation_id=doc.get("conversation_id"),
        since=_utc(doc["since"]),
        expires_at=_utc(doc["expires_at"]),
        last_seen=_utc(doc["last_seen"]),
        unannounced=bool(doc.get("unannounced", False)),
    )


def entry_doc(entry: OutboxEntry) -> Document:
    """The entry as the outbox stores it (what a parked entry's replay writes back)."""
    return _entry_to_doc(entry)


def _entry_to_doc(entry: OutboxEntry) -> Document:
    return {
        "_id": entry.event.id,
        "event": entry.event.model_dump_json(),
        "kafka_key": entry.kafka_key,
        "session_id": entry.session_id,
        "key": entry.key,
        "change": entry.change,
        "seq": entry.seq,
        "created_at": entry.created_at,
        "relay_after": entry.relay_after,
        "done": False,
    }


def entry_from_doc(doc: Document) -> OutboxEntry:
    change: Literal["start", "stop"] = doc["change"]
    return OutboxEntry(
        event=Event.model_validate_json(doc["event"]),
        kafka_key=doc["kafka_key"],
        session_id=doc["session_id"],
        key=doc["key"],
        change=change,
        created_at=_utc(doc["created_at"]),
        relay_after=_utc(doc["relay_after"]),
    )


class PresenceStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.states = db["states"]
        self.outbox = db["outbox"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
        await ensure_indexes(self.states, STATE_INDEXES)
        await ensure_indexes(self.outbox, OUTBOX_INDEXES)

    # --- sessions -----------------------------------------------------------------------------------

    async def renew(self, fresh: State) -> State | None:
        """Moves the expiry of the unexpired session of ``fresh.key`` (and its agent name and last
        seen) to ``fresh``'s. Returns the session as it was, or None when there is none to renew."""
        doc = await self.states.find_one_and_update(
            {"key": fresh.key, "expires_at": {"$gt": fresh.last_seen}},
            {"$set": {"expires_at": fresh.expires_at, "agent_name": fresh.agent.name, "last_seen": fresh.last_seen}},
            return_document=ReturnDocument.BEFORE,
        )
        return state_from_doc(doc) if doc is not None else None

    async def insert(self, state: State) -> bool:
        """Starts ``state``; False when its key already has a session (running or run out)."""
        try:
            await self.states.insert_one(state_to_doc(state))
        except DuplicateKeyError:
            return False
        return True

    async def find(self, key: str) -> State | None:
        doc = await self.states.find_one({"key": key})
        return state_from_doc(doc) if doc is not None else None

    async def delete(self, session_id: str) -> None:
        await self.states.delete_one({"_id": session_id})

    async def set_unannounced(self, session_id: str, unannounced: bool) -> None:
        await self.states.update_one({"_id": session_id}, {"$set": {"unannounced": unannounced}})

    async def extend(self, workspace_id: str, agent_id: str, kind: Kind, now: datetime, expires_at: datetime) -> None:
        """Moves the expiry of the agent's unexpired sessions of ``kind`` to ``expires_at`` (never earlier)."""
        await self.states.update_many(
            {"workspace_id": workspace_id, "agent_id": agent_id, "kind": kind,
             "expires_at": {"$gt": now, "$lt": expires_at}},
            {"$set": {"expires_at": expires_at}},
        )

    async def visible(self, workspace_id: str, kinds: Sequence[Kind], now: datetime,
                      conversation_ids: Sequence[str] | None = None) -> list[State]:
        """Unexpired sessions of one workspace (never another's)."""
        query: dict[str, Any] = {"workspace_id": workspace_id, "kind": {"$in": list(kinds)},
                                 "expires_at": {"$gt": now}}
        if conversation_ids:
            query["conversation_id"] = {"$in": list(conversation_ids)}
        return [state_from_doc(d) async for d in self.states.find(query)]

    async def of_agent(self, workspace_id: str, agent_id: str, kind: Kind) -> list[State]:
        """The agent's sessions of ``kind``, run out or not."""
        cursor = self.states.find({"workspace_id": workspace_id, "agent_id": agent_id, "kind": kind})
        return [state_from_doc(d) async for d in cursor]

    async def expired(self, now: datetime, limit: int) -> list[State]:
        """Sessions that ran out by ``now``, oldest first."""
        cursor = self.states.find({"expires_at": {"$lte": now}}).sort("expires_at", ASCENDING).limit(limit)
        return [state_from_doc(d) async for d in cursor]

    async def existing(self, session_ids: Collection[str]) -> set[str]:
        cursor = self.states.find({"_id": {"$in": list(session_ids)}}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    # --- outbox -------------------------------------------------------------------------------------

    async def add(self, entry: OutboxEntry) -> bool:
        """Writes an event to publish; False when it is written already (someone else claimed it)."""
        try:
            await self.outbox.insert_one(_entry_to_doc(entry))
        except DuplicateKeyError:
            return False
        return True

    async def published(self, entry: OutboxEntry, now: datetime) -> None:
        """Kafka has it. A stop stays, as the claim on its session, until :meth:`forget_done`."""
        if entry.change == "stop":
            await self.outbox.update_one({"_id": entry.event.id}, {"$set": {"done": True, "done_at": now}})
        else:
            await self.outbox.delete_one({"_id": entry.event.id})

    async def park(self, entry: OutboxEntry, now: datetime) -> Document:
        """An entry the relay gives up on (inbox_core.outbox): no longer due, but kept as its session's
        claim like a published one; returns what a replay needs to put it back."""
        await self.outbox.update_one({"_id": entry.event.id}, {"$set": {"done": True, "done_at": now, "parked": True}})
        return _entry_to_doc(entry)

    async def restore(self, doc: Document, now: datetime) -> None:
        """A parked entry back in the outbox, due now (an operator's replay)."""
        await self.outbox.replace_one({"_id": doc["_id"]}, {**doc, "done": False, "relay_after": now}, upsert=True)

    async def discard(self, event_id: str) -> None:
        await self.outbox.delete_one({"_id": event_id})

    async def forget_done(self, before: datetime) -> int:
        result = await self.outbox.delete_many({"done_at": {"$lte": before}})
        return result.deleted_count

    async def pending_of(self, session_id: str) -> list[OutboxEntry]:
        """The session's unpublished events, in order (start before stop)."""
        cursor = self.outbox.find({"session_id": session_id, "done": False}).sort("seq", ASCENDING)
        return [entry_from_doc(d) async for d in cursor]

    async def pending_sessions_of(self, key: str) -> list[str]:
        """Sessions of a state key with unpublished events."""
        cursor = self.outbox.find({"key": key, "done": False}, {"session_id": 1})
        return list({d["session_id"] async for d in cursor})

    async def relay_now(self, session_id: str, now: datetime) -> None:
        """A publish failed: let the purge loop retry the session's events at once."""
        await self.outbox.update_many({"session_id": session_id, "done": False}, {"$set": {"relay_after": now}})

    async def due(self, now: datetime, limit: int) -> list[OutboxEntry]:
        """Events nobody is publishing any more (a publish failed, or its publisher died)."""
        query = {"done": False, "relay_after": {"$lte": now}}
        cursor = self.outbox.find(query).sort("relay_after", ASCENDING).limit(limit)
        return [entry_from_doc(d) async for d in cursor]
