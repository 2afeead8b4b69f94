"""The ``pending`` collection: facts (statuses, reactions, replies, media results, edits) about a
message not seen yet, applied as soon as it arrives (Meta's webhooks arrive in any order)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.mongo import Document, Index, ensure_indexes

PENDING_INDEXES = [
    Index([("workspace_id", ASCENDING), ("wamid", ASCENDING)], "by_wamid"),
    Index([("expires_at", ASCENDING)], "expiry"),
]


class PendingFacts:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["pending"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, PENDING_INDEXES)

    async def add(self, pending_id: str, workspace_id: str, wamid: str, kind: str, data: Document,
                  now: datetime, ttl: timedelta) -> None:
        doc = {"workspace_id": workspace_id, "wamid": wamid, "kind": kind, "data": data,
               "created_at": now, "expires_at": now + ttl}
        await self.collection.update_one({"_id": pending_id}, {"$setOnInsert": doc}, upsert=True)

    async def about(self, workspace_id: str, wamids: Sequence[str]) -> list[Document]:
        wanted = [w for w in wamids if w]
        if not wanted:
            return []
        return await self.collection.find({"workspace_id": workspace_id, "wamid": {"$in": wanted}}).sort(
            "created_at", ASCENDING).to_list(None)

    async def delete(self, pending_id: str) -> None:
        await self.collection.delete_one({"_id": pending_id})

    async def purge(self, now: datetime) -> int:
        result = await self.collection.delete_many({"expires_at": {"$lt": now}})
        return int(result.deleted_count)
