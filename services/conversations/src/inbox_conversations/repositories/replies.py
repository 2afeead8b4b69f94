"""The ``canned_replies`` collection: a workspace's canned replies, one document each.

``key`` is the shortcut folded (canned_replies.shortcut_key), unique per workspace by index, so two
admins adding the same shortcut at once get one reply and one conflict, not two replies."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from inbox_conversations.canned_replies import MAX_PER_WORKSPACE, CannedReply, shortcut_key
from inbox_core.errors import Conflict, NotFound
from inbox_core.mongo import Document, Index, ensure_indexes

REPLY_INDEXES = [Index([("workspace_id", ASCENDING), ("key", ASCENDING)], "by_shortcut", unique=True)]


def _reply(doc: Document) -> CannedReply:
    return CannedReply(id=doc["_id"], workspace_id=doc["workspace_id"], shortcut=doc.get("shortcut") or "",
                       title=doc.get("title") or "", text=doc.get("text") or "")


def _is_duplicate(exc: OperationFailure) -> bool:
    """MongoDB answers a unique index broken by an update with DuplicateKeyError; FerretDB v1's SQLite
    backend answers it as an InternalError carrying SQLite's message (inserts get the proper 11000)."""
    return isinstance(exc, DuplicateKeyError) or "UNIQUE constraint failed" in str(exc)


def _taken(shortcut: str) -> Conflict:
    return Conflict(f"the shortcut /{shortcut} is already used in this workspace", {"field": "shortcut"})


class CannedReplies:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["canned_replies"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, REPLY_INDEXES)

    async def all(self, workspace_id: str) -> list[CannedReply]:
        docs = await self.collection.find({"workspace_id": workspace_id}).sort(
            [("workspace_id", ASCENDING), ("key", ASCENDING)]).limit(MAX_PER_WORKSPACE).to_list(None)
        return [_reply(d) for d in docs]

    async def count(self, workspace_id: str) -> int:
        return await self.collection.count_documents({"workspace_id": workspace_id})

    async def get(self, workspace_id: str, reply_id: str) -> CannedReply:
        doc = await self.collection.find_one({"_id": reply_id, "workspace_id": workspace_id})
        if doc is None:
            raise NotFound("no such canned reply", {"reply_id": reply_id})
        return _reply(doc)

    async def add(self, doc: Document) -> CannedReply:
        try:
            await self.collection.insert_one({**doc, "key": shortcut_key(doc["shortcut"])})
        except DuplicateKeyError:
            raise _taken(doc["shortcut"]) from None
        return _reply(doc)

    async def update(self, workspace_id: str, reply_id: str, changes: dict[str, Any]) -> CannedReply:
        if "shortcut" in changes:
            changes = {**changes, "key": shortcut_key(changes["shortcut"])}
        try:
            doc = await self.collection.find_one_and_update(
                {"_id": reply_id, "workspace_id": workspace_id}, {"$set": changes},
                return_document=ReturnDocument.AFTER)
        except OperationFailure as exc:
            if "shortcut" in changes and _is_duplicate(exc):
                raise _taken(changes["shortcut"]) from None
            raise
        if doc is None:
            raise NotFound("no such canned reply", {"reply_id": reply_id})
        return _reply(doc)

    async def remove(self, workspace_id: str, reply_id: str) -> None:
        result = await self.collection.delete_one({"_id": reply_id, "workspace_id": workspace_id})
        if not result.deleted_count:
            raise NotFound("no such canned reply", {"reply_id": reply_id})
