"""The ``library`` collection: a workspace's reusable snippets and media."""

from __future__ import annotations

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.errors import NotFound
from inbox_core.mongo import Document, Index, ensure_indexes

LIBRARY_INDEXES = [Index([("workspace_id", ASCENDING), ("created_at", DESCENDING)], "by_workspace")]


class Library:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["library"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, LIBRARY_INDEXES)

    async def add(self, doc: Document) -> None:
        await self.collection.insert_one(doc)

    async def items(self, workspace_id: str, limit: int = 500) -> list[Document]:
        return await self.collection.find({"workspace_id": workspace_id}).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit).to_list(None)

    async def get(self, workspace_id: str, item_id: str) -> Document:
        doc = await self.collection.find_one({"_id": item_id, "workspace_id": workspace_id})
        if doc is None:
            raise NotFound("no such library item", {"item_id": item_id})
        return doc

    async def remove(self, workspace_id: str, item_id: str) -> None:
        result = await self.collection.delete_one({"_id": item_id, "workspace_id": workspace_id})
        if not result.deleted_count:
            raise NotFound("no such library item", {"item_id": item_id})
