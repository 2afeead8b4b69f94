"""The ``timeline`` collection: messages, notes and activities of every conversation (``kind``).

A timeline page is one indexed query in ``seq`` order: each item takes the next ``seq`` of its
conversation (``ConversationsRepository.take_seqs``) when its document is first built, so items are in
the order the inbox learned of them, whatever Meta's one-second timestamps say (four messages of one
second stay in the order they came). A redelivery takes a new seq, but its insert fails and the stored
item keeps its own (a gap, never a repeat). Items stored before ``seq`` existed have none and come
first, among themselves in (``at``, ``arrival``, id) order, the order of those days. Messages from Meta
are unique by ``wamid`` (sparse unique index; a message sent here gets its wamid when Meta accepted it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, OperationFailure

from inbox_conversations import domain
from inbox_core.errors import InvalidRequest
from inbox_core.inserts import Inserts
from inbox_core.mongo import Document, Index, decode_cursor, encode_cursor, ensure_indexes

TIMELINE_SORT = [("seq", DESCENDING), ("at", DESCENDING), ("arrival", DESCENDING), ("_id", DESCENDING)]
TIMELINE_INDEXES = [
    Index([("conversation_id", ASCENDING), ("seq", DESCENDING), ("at", DESCENDING), ("arrival", DESCENDING),
           ("_id", DESCENDING)], "timeline_seq"),
    Index([("wamid", ASCENDING)], "wamid", unique=True, options={"sparse": True}),
    Index([("media.media_id", ASCENDING)], "media_id", options={"sparse": True}),
    Index([("outbox_at", ASCENDING)], "outbox", options={"sparse": True}),
]
# Replaced by timeline_seq (the same name with other keys would be refused): dropped at startup.
OBSOLETE_TIMELINE_INDEXES = ("timeline", "timeline_order")
INDEX_NOT_FOUND = 27
# The double-reply guard reads at most this many items after the agent's seq (a guard is about seconds).
GUARD_SCAN_MAX = 200


@dataclass(frozen=True)
class TimelineKey:
    """A timeline item's place: its ``seq``, and (at, arrival, id), which order the items from before
    seq existed (no seq: first, as MongoDB sorts a missing field; no arrival likewise among those)."""

    at: datetime
    arrival: int | None
    item_id: str
    seq: int | None = None

    @classmethod
    def of(cls, item: Document) -> TimelineKey:
        return cls(item["at"], item.get("arrival"), item["_id"], item.get("seq"))

    @classmethod
    def of_last(cls, last: Document) -> TimelineKey:
        """The key of a conversation's ``last_message`` summary (documents.last_message): by time, as the
        list's preview shows the newest message."""
        return cls(last["at"], last.get("arrival"), last["id"])

    def encode(self) -> str:
        return encode_cursor([self.seq, self.at, self.arrival, self.item_id])

    def ties_from(self, prefix: str = "", id_field: str = "_id") -> list[Document]:
        """``$or`` clauses matching the items of the same ``at`` whose key is >= this one."""
        at_f, arrival_f, id_f = f"{prefix}at", f"{prefix}arrival", f"{prefix}{id_field}"
        if self.arrival is None:
            return [{at_f: self.at, arrival_f: {"$ne": None}},
                    {at_f: self.at, arrival_f: None, id_f: {"$gte": self.item_id}}]
        return [{at_f: self.at, arrival_f: {"$gt": self.arrival}},
                {at_f: self.at, arrival_f: self.arrival, id_f: {"$gte": self.item_id}}]

    def ties_up_to(self, prefix: str = "", id_field: str = "_id") -> list[Document]:
        """``$or`` clauses matching the items of the same ``at`` whose key is <= this one."""
        at_f, arrival_f, id_f = f"{prefix}at", f"{prefix}arrival", f"{prefix}{id_field}"
        if self.arrival is None:
            return [{at_f: self.at, arrival_f: None, id_f: {"$lte": self.item_id}}]
        return [{at_f: self.at, arrival_f: None}, {at_f: self.at, arrival_f: {"$lt": self.arrival}},
                {at_f: self.at, arrival_f: self.arrival, id_f: {"$lte": self.item_id}}]


def timeline_after(key: TimelineKey) -> Document:
    """Timeline items strictly after ``key`` in the page's (seq, at, arrival, _id) descending order. After
    an item with a seq: the smaller seqs and every item without one (``$not`` matches a missing field;
    seqs never repeat within a conversation, so there are no ties). After one without: those without,
    by one range on ``at`` (an index bound) and a residual filter that only that millisecond reaches; those
    pages sort in a temporary B-tree (the index's seq part is null for all of them), bounded by one
    conversation's items from before seqs."""
    if key.seq is not None:
        return {"seq": {"$not": {"$gte": key.seq}}}
    return {"seq": None, "at": {"$lte": key.at}, "$nor": key.ties_from()}


async def drop_obsolete_indexes(collection: AsyncCollection[Document], names: Sequence[str]) -> None:
    existing = await collection.index_information()
    for name in names:
        if name in existing:
            try:
                await collection.drop_index(name)
            except OperationFailure as exc:
                if exc.code != INDEX_NOT_FOUND:  # another instance starting up dropped it first
                    raise


def _optional_int(value: object) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


class Timeline:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["timeline"]
        self._inserts = Inserts(self.collection)

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, TIMELINE_INDEXES)
        await drop_obsolete_indexes(self.collection, OBSOLETE_TIMELINE_INDEXES)

    async def insert(self, doc: Document) -> bool:
        """Inserts a message, note or activity; False when it is already there (same id or same wamid).
        Inserts made at once (a batch's conversations) go to the database together (inbox_core.inserts)."""
        return await self._inserts.insert(doc)

    async def get(self, item_id: str) -> Document | None:
        return await self.collection.find_one({"_id": item_id})

    async def by_wamid(self, workspace_id: str, wamid: str) -> Document | None:
        return await self.collection.find_one({"wamid": wamid, "workspace_id": workspace_id})

    async def reply_by_another_after(self, conversation_id: str, after_seq: int, agent_id: str) -> Document | None:
        """The newest outbound message an agent other than ``agent_id`` sent after ``after_seq`` (the
        double-reply guard): the items after it, newest first on the timeline's index, are few."""
        find: Document = {"conversation_id": conversation_id, "seq": {"$gt": after_seq}}
        async for doc in self.collection.find(find, {"outbox": 0}).sort(TIMELINE_SORT).limit(GUARD_SCAN_MAX):
            by = (doc.get("sent_by") or {}).get("id")
            if doc.get("kind") == "message" and doc.get("direction") == "out" and by and by != agent_id:
                return doc
        return None

    async def by_media_id(self, workspace_id: str, media_id: str) -> Document | None:
        return await self.collection.find_one({"media.media_id": media_id, "workspace_id": workspace_id})

    async def by_key(self, workspace_id: str, key: str) -> Document | None:
        """The message a fact names: by wamid, or ``media:<id>`` by its media id."""
        if key.startswith("media:"):
            return await self.by_media_id(workspace_id, key.removeprefix("media:"))
        return await self.by_wamid(workspace_id, key)

    async def page(self, conversation_id: str, before: str, limit: int) -> tuple[list[Document], str]:
        """A page of the timeline, newest first from ``before`` backwards; returned oldest first."""
        find: Document = {"conversation_id": conversation_id}
        if before:
            find.update(timeline_after(await self._cursor(conversation_id, before)))
        docs = await self.collection.find(find, {"outbox": 0}).sort(TIMELINE_SORT).limit(limit + 1).to_list(None)
        more = len(docs) > limit
        docs = docs[:limit]
        next_before = TimelineKey.of(docs[-1]).encode() if more else ""
        docs.reverse()
        return docs, next_before

    async def _cursor(self, conversation_id: str, cursor: str) -> TimelineKey:
        """A ``before`` cursor: (seq, at, arrival, id); an invalid one is InvalidRequest. One made before seqs
        existed, (at, arrival, id) or (at, id), is read through the item it names."""
        seq: object = None
        try:
            seq, at, arrival, item_id = decode_cursor(cursor, 4)
        except InvalidRequest:
            try:
                at, arrival, item_id = decode_cursor(cursor, 3)
            except InvalidRequest:
                at, item_id = decode_cursor(cursor, 2)
                arrival = None
            if isinstance(at, datetime) and isinstance(item_id, str):
                item = await self.collection.find_one({"_id": item_id, "conversation_id": conversation_id},
                                                      {"at": 1, "arrival": 1, "seq": 1})
                if item is not None and item["at"] == at:
                    arrival, seq = item.get("arrival"), item.get("seq")
        if not isinstance(at, datetime) or not isinstance(item_id, str) or not _optional_int(arrival) \
                or not _optional_int(seq):
            raise InvalidRequest("the cursor is not valid", {"cursor": cursor})
        return TimelineKey(at, arrival, item_id, seq)  # type: ignore[arg-type]

    async def apply_status(self, message_id: str, status: str, at: datetime,
                           error: Document | None) -> Document | None:
        """Moves a message's status forward (never back; failed is final, see domain.STATUS_RANK) with one
        conditional update, so a late "delivered" cannot overwrite "read". The message after, or None."""
        rank = domain.STATUS_RANK[status]
        update: Document = {"status": status, "status_rank": rank, "status_at": at}
        if error is not None:
            update["error"] = error
        return await self.collection.find_one_and_update(
            {"_id": message_id, "status_rank": {"$lt": rank}}, {"$set": update},
            return_document=ReturnDocument.AFTER,
        )

    async def set_wamid(self, message_id: str, wamid: str, now: datetime) -> Document | None:
        """Meta accepted a message sent here: it now has a wamid (the statuses will name it)."""
        try:
            return await self.collection.find_one_and_update(
                {"_id": message_id, "wamid": None}, {"$set": {"wamid": wamid, "accepted_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # another message has it already: nothing to attach
            return None

    async def apply_reaction(self, message_id: str, reactor: str, entry: Document) -> Document | None:
        """One reaction per reactor and message; the newest (by Meta's timestamp) wins, a removal
        included (kept as an empty emoji, so an older reaction arriving late cannot bring it back)."""
        field = f"reactions.{reactor}"
        return await self.collection.find_one_and_update(
            {"_id": message_id, "$or": [{field: None}, {f"{field}.at": {"$lt": entry["at"]}}]},
            {"$set": {field: entry}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_fields(self, message_id: str, fields: Document, unless: Document | None = None) -> Document | None:
        """Sets fields of a message (unless it already matches ``unless``); the message after, or None."""
        query: Document = {"_id": message_id}
        if unless:
            query["$nor"] = [unless]
        return await self.collection.find_one_and_update(
            query, {"$set": fields}, return_document=ReturnDocument.AFTER)
