"""The conversations service's own MongoDB database: its collections, one repository per collection
(``repositories/``), and the outbox's operations on the documents that carry entries (outbox.py).

No multi-document transactions (and no projection on findAndModify) on FerretDB v1: every multi-step
change is ordered so that a crash between steps leaves nothing a retry cannot finish (see usecases/
and outbox.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_conversations.repositories import ListQuery, Repositories, TimelineKey
from inbox_conversations.repositories.conversations import CONVERSATION_INDEXES, LIST_PROJECTION, LIST_SORT
from inbox_conversations.repositories.timeline import TIMELINE_SORT
from inbox_core.mongo import Document

# Also named here for the benches and query-plan tests that read what the repositories query.
__all__ = ["CONVERSATION_INDEXES", "LIST_PROJECTION", "LIST_SORT", "TIMELINE_SORT", "ConversationsStore",
           "ListQuery", "TimelineKey"]

# Earlier than any outbox_at: a restored entry is due at once.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ConversationsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.repos = Repositories.of(db)
        # The collections themselves, for the outbox's operations below (and tests and benches that
        # look at what was stored).
        self.conversations: AsyncCollection[Document] = self.repos.conversations.collection
        self.timeline: AsyncCollection[Document] = self.repos.timeline.collection
        self.pending: AsyncCollection[Document] = self.repos.pending.collection
        self.numbers: AsyncCollection[Document] = self.repos.numbers.collection
        self.templates: AsyncCollection[Document] = self.repos.templates.collection
        self.library: AsyncCollection[Document] = self.repos.library.collection
        self.customers: AsyncCollection[Document] = self.repos.customers.collection

    async def ensure_indexes(self) -> None:
        await self.repos.ensure_indexes()

    # --- what the outbox's relay reads and writes through the store (outbox.py) ------------------------

    async def find_conversation(self, conversation_id: str) -> Document | None:
        return await self.conversations.find_one({"_id": conversation_id}, LIST_PROJECTION)

    async def mark_announced(self, conversation_id: str) -> None:
        await self.repos.conversations.mark_announced(conversation_id)

    async def apply_last_message(self, conversation_id: str, last: Document, awaiting_reply: bool, *,
                                 only_if_last: bool = False) -> bool:
        return await self.repos.conversations.apply_last_message(conversation_id, last, awaiting_reply,
                                                                 only_if_last=only_if_last)

    async def insert_item(self, doc: Document) -> bool:
        return await self.repos.timeline.insert(doc)

    async def get_item(self, item_id: str) -> Document | None:
        return await self.repos.timeline.get(item_id)

    async def purge_pending(self, now: datetime) -> int:
        return await self.repos.pending.purge(now)

    # --- outbox ----------------------------------------------------------------------------------------

    async def clear_outbox_entry(self, collection: str, doc_id: str, entry_id: str) -> None:
        coll = self.db[collection]
        await coll.update_one({"_id": doc_id}, {"$unset": {f"outbox.{entry_id}": ""}})
        await coll.update_one({"_id": doc_id, "outbox": {}}, {"$unset": {"outbox": "", "outbox_at": ""}})

    async def restore_outbox_entry(self, collection: str, doc_id: str, entry: Document) -> None:
        """Puts a parked outbox entry back for the relay (an operator's replay), due at once."""
        await self.db[collection].update_one({"_id": doc_id}, {"$set": {f"outbox.{entry['id']}": entry},
                                                               "$min": {"outbox_at": _EPOCH}})

    async def drop_outbox_marker(self, collection: str, doc_id: str) -> None:
        await self.db[collection].update_one({"_id": doc_id, "$or": [{"outbox": {}}, {"outbox": None}]},
                                             {"$unset": {"outbox": "", "outbox_at": ""}})

    async def outbox_leftovers(self, collection: str, older_than: datetime, limit: int = 100) -> list[Document]:
        return await self.db[collection].find({"outbox_at": {"$lt": older_than}}).sort(
            "outbox_at", ASCENDING).limit(limit).to_list(None)
