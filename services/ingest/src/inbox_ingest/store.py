"""Ingest's own database: channels (numbers and their credentials), webhook dedupe, unrouted events.

Access tokens are stored here because ingest is the only service that talks to Meta; they are
returned only to ingest's own sender and never logged (``SecretStr``) or put on a topic.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from inbox_core.batching import Batcher
from inbox_core.errors import NotFound
from inbox_core.events import Event, utcnow
from inbox_core.mongo import Document, Index, ensure_indexes


class Channel(BaseModel):
    """One connected WhatsApp number."""

    phone_number_id: str
    workspace_id: str
    waba_id: str
    display_phone_number: str = ""
    name: str = ""
    access_token: SecretStr = SecretStr("")


@dataclass
class _Cached:
    channel: Channel | None
    at: float


class IngestStore:
    # A channel lookup is on every webhook's path: cache it briefly (also the misses).
    CACHE_SECONDS = 30.0

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.channels = db["channels"]
        # Who has a number and a business account: {_id: "number:<id>" | "waba:<id>", workspace_id}. One
        # insert per claim, so two workspaces claiming the same one at once cannot both win (unique _id).
        self.claims = db["channel_claims"]
        self.seen = db["seen_events"]
        self.unrouted = db["unrouted_events"]
        self._cache: dict[str, _Cached] = {}
        self._waba_cache: dict[str, tuple[str | None, float]] = {}
        # Dedupe reads of webhooks that arrive at once share a query (inbox_core.batching).
        self._seen_reads: Batcher[list[str], set[str]] = Batcher(
            self._seen_among, max_size=self.SEEN_QUERY_IDS, timeout_s=db.client.options.timeout, size=len)

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.channels, [
            Index([("workspace_id", ASCENDING), ("phone_number_id", ASCENDING)], "workspace_numbers"),
            Index([("waba_id", ASCENDING)], "waba"),
        ])
        await ensure_indexes(self.seen, [Index([("expires_at", ASCENDING)], "expiry")])
        await ensure_indexes(self.unrouted, [Index([("received_at", DESCENDING)], "recent")])
        # The sender's parked sends (sender.ParkedSends): each number's in order, and the queues that are due.
        await ensure_indexes(self.db["parked_sends"], [
            Index([("phone_number_id", ASCENDING), ("seq", ASCENDING)], "number_order")])
        await ensure_indexes(self.db["send_queues"], [Index([("next_try_at", ASCENDING)], "due")])

    # --- channels ---------------------------------------------------------------------------------

    async def claim(self, channel: Channel) -> None:
        """Claims the channel's business account and number for its workspace (NotFound, as for any id of
        another workspace, when either belongs to another one). A business account belongs to one workspace:
        template sync and routing by account then never cross workspaces."""
        for kind, key in (("waba", channel.waba_id), ("number", channel.phone_number_id)):
            claim_id = f"{kind}:{key}"
            try:
                await self.claims.insert_one({"_id": claim_id, "workspace_id": channel.workspace_id,
                                              "created_at": utcnow()})
            except DuplicateKeyError:
                held = await self.claims.find_one({"_id": claim_id})
                if held is None or held["workspace_id"] != channel.workspace_id:
                    what = "business account" if kind == "waba" else "number"
                    raise NotFound(f"this {what} is connected to another workspace") from None

    async def claim_existing_channels(self) -> int:
        """Claims for the channels stored before claims existed (at start; the first channel of an account
        keeps it). Returns how many channels were claimed now."""
        claimed = 0
        async for doc in self.channels.find({}):
            with contextlib.suppress(NotFound):
                await self.claim(_channel(doc))
                claimed += 1
        return claimed

    async def upsert_channel(self, channel: Channel) -> None:
        """Claims (see :meth:`claim`) and stores the channel."""
        await self.claim(channel)
        doc = channel.model_dump()
        doc["access_token"] = channel.access_token.get_secret_value()
        doc["updated_at"] = utcnow()
        await self.channels.update_one({"_id": channel.phone_number_id}, {"$set": doc}, upsert=True)
        self._cache.pop(channel.phone_number_id, None)
        self._waba_cache.pop(channel.waba_id, None)

    async def get_channel(self, phone_number_id: str, *, fresh: bool = False) -> Channel | None:
        cached = self._cache.get(phone_number_id)
        if cached and not fresh and time.monotonic() - cached.at < self.CACHE_SECONDS:
            return cached.channel
        doc = await self.channels.find_one({"_id": phone_number_id})
        channel = _channel(doc) if doc else None
        self._cache[phone_number_id] = _Cached(channel, time.monotonic())
        return channel

    async def workspace_of_waba(self, waba_id: str) -> str | None:
        cached = self._waba_cache.get(waba_id)
        if cached and time.monotonic() - cached[1] < self.CACHE_SECONDS:
            return cached[0]
        claim = await self.claims.find_one({"_id": f"waba:{waba_id}"})
        doc = claim or await self.channels.find_one({"waba_id": waba_id}, {"workspace_id": 1})
        workspace = doc["workspace_id"] if doc else None
        self._waba_cache[waba_id] = (workspace, time.monotonic())
        return workspace

    async def list_channels(self, workspace_id: str | None = None) -> list[Channel]:
        query: dict[str, Any] = {"workspace_id": workspace_id} if workspace_id else {}
        return [_channel(d) async for d in self.channels.find(query).sort("_id", ASCENDING)]

    async def load_channels(self, items: list[dict[str, Any]]) -> int:
        """Upserts channels read from a mounted secret file (see :func:`read_channels_file`)."""
        for item in items:
            await self.upsert_channel(Channel.model_validate(item))
        return len(items)

    # --- webhook dedupe ---------------------------------------------------------------------------

    # Ids one dedupe query asks at most (the webhooks waiting beyond it go in the next one).
    SEEN_QUERY_IDS = 1000

    async def unseen(self, event_ids: list[str]) -> set[str]:
        """The ids not published before (a duplicate delivery from Meta has the same ids).

        Webhooks that arrive while a dedupe query is under way share the next one: under load each took a
        query of its own, and hundreds at once waited for the pool's connections (10 s, then a 503)."""
        if not event_ids:
            return set()
        return set(event_ids) - await self._seen_reads.submit(event_ids)

    async def _seen_among(self, id_lists: list[list[str]]) -> list[set[str] | BaseException]:
        """One query for the ids of every waiting webhook: those seen (each webhook gets the same set)."""
        ids = sorted({i for ids in id_lists for i in ids})
        seen = {d["_id"] async for d in self.seen.find({"_id": {"$in": ids}, "expires_at": {"$gt": utcnow()}},
                                                        {"_id": 1})}
        return [seen] * len(id_lists)

    async def mark_seen(self, event_ids: list[str], days: int) -> None:
        if not event_ids:
            return
        expires = utcnow() + timedelta(days=days)
        # Some may be marked by a concurrent delivery of the same body: fine.
        with contextlib.suppress(BulkWriteError):
            await self.seen.insert_many([{"_id": i, "expires_at": expires} for i in event_ids], ordered=False)

    async def purge_seen(self) -> int:
        result = await self.seen.delete_many({"expires_at": {"$lte": utcnow()}})
        return int(result.deleted_count)

    # --- unrouted ---------------------------------------------------------------------------------

    async def record_unrouted(self, events: list[tuple[str, Event]]) -> None:
        """Events for numbers that are not connected: kept for admins, answered 200 to Meta."""
        now = utcnow()
        for key, event in events:
            data = event.data
            await self.unrouted.update_one(
                {"_id": event.id},
                {"$setOnInsert": {
                    "key": key, "type": event.type, "received_at": now,
                    "phone_number_id": data.get("phone_number_id"), "waba_id": data.get("waba_id"),
                    # As JSON text: a webhook may hold nested arrays, which FerretDB cannot store.
                    "event_json": event.model_dump_json(),
                }},
                upsert=True,
            )

    async def purge_unrouted(self, older_than: datetime, limit: int = 500) -> int:
        """Deletes up to ``limit`` unrouted events received before ``older_than``, oldest first (a bounded
        round; no TTL index: FerretDB has none)."""
        old = await self.unrouted.find({"received_at": {"$lt": older_than}}, {"_id": 1}).sort(
            "received_at", ASCENDING).limit(limit).to_list()
        if not old:
            return 0
        result = await self.unrouted.delete_many({"_id": {"$in": [d["_id"] for d in old]}})
        return int(result.deleted_count)

    async def list_unrouted(self, limit: int = 50) -> list[Document]:
        return await self.unrouted.find({}).sort("received_at", DESCENDING).limit(limit).to_list()


def read_channels_file(path: Path) -> list[dict[str, Any]]:
    """``[{phone_number_id, workspace_id, waba_id, display_phone_number, name, access_token}]``."""
    items = json.loads(path.read_text())
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a JSON list of channels")
    return items


def _channel(doc: Document) -> Channel:
    return Channel.model_validate({k: v for k, v in doc.items() if k not in ("_id", "updated_at")})
