"""The conversations service's own MongoDB database.

Collections:

- ``conversations``: one per connected number and customer (id from inbox_core.ids), with everything
  the list shows (last message, unread count, awaiting_reply, assignee, window, customer copy), so a
  list page is one indexed query with no per-row lookups.
- ``timeline``: messages, notes and activities of every conversation, one collection with a ``kind``
  field, so a timeline page is one indexed query in time order. Messages from Meta are unique by
  ``wamid`` (sparse unique index; a message sent here gets its wamid when Meta accepted it). Items are
  ordered by (``at``, ``arrival``, id): Meta's timestamps have one-second resolution, and ``arrival``
  (set when the item's document is first built, never changed: a redelivery's insert fails and the
  stored one wins) keeps items of the same ``at`` in the order they arrived or were made. Items stored
  before ``arrival`` existed have none and come first among their ``at``.
- ``pending``: statuses, reactions, replies and media results for a wamid not seen yet, applied as
  soon as the message arrives (Meta's webhooks arrive in any order).
- ``numbers``: the workspace's connected numbers (and their WhatsApp business account) as seen in events.
- ``templates``, ``library``, ``customers`` (the newest name and phone of each customer, from
  inbox.customers.v1).
- ``search_index`` (search_index.py): the conversations' name and phone tokens, for search.

No multi-document transactions (and no projection on findAndModify) on FerretDB v1: every multi-step
change is ordered so that a crash between steps leaves nothing a retry cannot finish (see consumers.py
and outbox.py).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo import ASCENDING, DESCENDING, ReplaceOne, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure

from inbox_conversations import domain
from inbox_conversations.search_index import SCAN_MAX, SearchIndex, matches
from inbox_core.errors import InvalidRequest, NotFound
from inbox_core.mongo import Document, Index, decode_cursor, encode_cursor, ensure_indexes

# Ids of messages whose unread increment was applied, kept on the conversation so a redelivered
# message never counts twice. Redelivery after a crash concerns the last few messages of a partition,
# so a short window is enough.
APPLIED_KEEP = 32

# Earlier than any outbox_at: a restored entry is due at once.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LIST_PROJECTION = {"search_tokens": 0, "applied": 0, "outbox": 0}  # search_tokens: before search_index.py

# The list's sort: newest activity first, id as the tie-breaker (the keyset).
LIST_SORT = [("updated_at", DESCENDING), ("_id", DESCENDING)]
TIMELINE_SORT = [("at", DESCENDING), ("arrival", DESCENDING), ("_id", DESCENDING)]

CONVERSATION_INDEXES = [
    # One per list filter; the number is always part of the query (one, several via $in, or every
    # number of the workspace), and every index ends with the sort, so a page reads only its rows.
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("updated_at", DESCENDING),
           ("_id", DESCENDING)], "list_all"),
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("has_unread", ASCENDING),
           ("updated_at", DESCENDING), ("_id", DESCENDING)], "list_unread"),
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("assignee_id", ASCENDING),
           ("updated_at", DESCENDING), ("_id", DESCENDING)], "list_mine"),
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("awaiting_reply", ASCENDING),
           ("updated_at", DESCENDING), ("_id", DESCENDING)], "list_no_reply"),
    Index([("customer.id", ASCENDING)], "by_customer"),
    Index([("outbox_at", ASCENDING)], "outbox", options={"sparse": True}),
]
TIMELINE_INDEXES = [
    Index([("conversation_id", ASCENDING), ("at", DESCENDING), ("arrival", DESCENDING), ("_id", DESCENDING)],
          "timeline_order"),
    Index([("wamid", ASCENDING)], "wamid", unique=True, options={"sparse": True}),
    Index([("media.media_id", ASCENDING)], "media_id", options={"sparse": True}),
    Index([("outbox_at", ASCENDING)], "outbox", options={"sparse": True}),
]
PENDING_INDEXES = [
    Index([("workspace_id", ASCENDING), ("wamid", ASCENDING)], "by_wamid"),
    Index([("expires_at", ASCENDING)], "expiry"),
]
NUMBER_INDEXES = [Index([("workspace_id", ASCENDING), ("number_id", ASCENDING)], "by_workspace")]
TEMPLATE_INDEXES = [
    Index([("workspace_id", ASCENDING), ("waba_id", ASCENDING), ("name", ASCENDING), ("language", ASCENDING)],
          "by_waba"),
]
LIBRARY_INDEXES = [Index([("workspace_id", ASCENDING), ("created_at", DESCENDING)], "by_workspace")]
# Replaced by timeline_order (same name with other keys would be refused): dropped at startup.
OBSOLETE_TIMELINE_INDEXES = ("timeline",)
# The multikey index of the search_tokens array, replaced by search_index.py's collection.
OBSOLETE_CONVERSATION_INDEXES = ("list_search",)
INDEX_NOT_FOUND = 27


@dataclass(frozen=True)
class ListQuery:
    workspace_id: str
    number_ids: Sequence[str]
    filter: str = "all"
    agent_id: str = ""
    search: domain.SearchQuery | None = None
    cursor: str = ""
    limit: int = domain.DEFAULT_PAGE


def keyset_after(cursor: str, time_field: str) -> Document:
    """Rows strictly after the cursor in (time desc, _id desc) order.

    Written as one range on the time (an index bound, so the index still gives the order) and a
    residual filter that only the rows of that very millisecond reach, rather than a top-level $or.
    """
    at, last_id = decode_cursor(cursor, 2)
    if not isinstance(at, datetime) or not isinstance(last_id, str):
        raise InvalidRequest("the cursor is not valid", {"cursor": cursor})
    return {time_field: {"$lte": at}, "$nor": [{time_field: at, "_id": {"$gte": last_id}}]}


@dataclass(frozen=True)
class TimelineKey:
    """A timeline item's place: (at, arrival, id); no arrival (an item stored before arrivals existed)
    comes before any arrival, as MongoDB sorts a missing field."""

    at: datetime
    arrival: int | None
    item_id: str

    @classmethod
    def of(cls, item: Document) -> TimelineKey:
        return cls(item["at"], item.get("arrival"), item["_id"])

    @classmethod
    def of_last(cls, last: Document) -> TimelineKey:
        """The key of a conversation's ``last_message`` summary (documents.last_message)."""
        return cls(last["at"], last.get("arrival"), last["id"])

    def encode(self) -> str:
        return encode_cursor([self.at, self.arrival, self.item_id])

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
    """Timeline items strictly after ``key`` in (at, arrival, _id) descending order: one range on
    ``at`` (an index bound, so the index still gives the order) and a residual filter that only the
    items of that very millisecond reach."""
    return {"at": {"$lte": key.at}, "$nor": key.ties_from()}


class ConversationsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.conversations: AsyncCollection[Document] = db["conversations"]
        self.timeline: AsyncCollection[Document] = db["timeline"]
        self.pending: AsyncCollection[Document] = db["pending"]
        self.numbers: AsyncCollection[Document] = db["numbers"]
        self.templates: AsyncCollection[Document] = db["templates"]
        self.library: AsyncCollection[Document] = db["library"]
        self.customers: AsyncCollection[Document] = db["customers"]
        self._known_numbers: set[tuple[str, str, str]] = set()
        self.search = SearchIndex(db)

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
        await ensure_indexes(self.conversations, CONVERSATION_INDEXES)
        await self._drop_obsolete_indexes(self.conversations, OBSOLETE_CONVERSATION_INDEXES)
        await self.search.ensure_indexes()
        await self.search.backfill()
        await ensure_indexes(self.timeline, TIMELINE_INDEXES)
        await self._drop_obsolete_indexes(self.timeline, OBSOLETE_TIMELINE_INDEXES)
        await ensure_indexes(self.pending, PENDING_INDEXES)
        await ensure_indexes(self.numbers, NUMBER_INDEXES)
        await ensure_indexes(self.templates, TEMPLATE_INDEXES)
        await ensure_indexes(self.library, LIBRARY_INDEXES)

    @staticmethod
    async def _drop_obsolete_indexes(collection: AsyncCollection[Document], names: Sequence[str]) -> None:
        existing = await collection.index_information()
        for name in names:
            if name in existing:
                try:
                    await collection.drop_index(name)
                except OperationFailure as exc:
                    if exc.code != INDEX_NOT_FOUND:  # another instance starting up dropped it first
                        raise

    # --- numbers ---------------------------------------------------------------------------------------

    async def ensure_number(self, workspace_id: str, number_id: str, waba_id: str = "",
                            display_phone_number: str | None = None) -> None:
        """Records a connected number before any of its conversations exists (the list queries by number)."""
        key = (workspace_id, number_id, waba_id)
        if key in self._known_numbers:
            return
        update: Document = {"$setOnInsert": {"workspace_id": workspace_id, "number_id": number_id}}
        fields = {k: v for k, v in (("waba_id", waba_id), ("display_phone_number", display_phone_number)) if v}
        if fields:
            update["$set"] = fields
        await self.numbers.update_one({"_id": f"{workspace_id}:{number_id}"}, update, upsert=True)
        self._known_numbers.add(key)

    async def workspace_numbers(self, workspace_id: str) -> list[str]:
        docs = await self.numbers.find({"workspace_id": workspace_id}, {"number_id": 1}).to_list(None)
        return sorted(d["number_id"] for d in docs)

    async def number_waba(self, workspace_id: str, number_id: str) -> str | None:
        doc = await self.numbers.find_one({"_id": f"{workspace_id}:{number_id}"})
        return (doc or {}).get("waba_id") or None

    # --- conversations ---------------------------------------------------------------------------------

    async def ensure_conversation(self, *, conversation_id: str, workspace_id: str, number_id: str,
                                  customer: Document, at: datetime, now: datetime) -> Document:
        """The conversation, created on the first event of a customer on a number."""
        doc = await self.conversations.find_one({"_id": conversation_id}, LIST_PROJECTION)
        if doc is not None:
            await self.search.sync_if_stale(doc)  # finishes a sync a crash cut short
            return doc
        created: Document = {
            "workspace_id": workspace_id,
            "number_id": number_id,
            "customer": {**customer, "version": 0},
            "last_message": None,
            "unread_count": 0,
            "has_unread": False,
            "awaiting_reply": False,
            "assignee": None,
            "assignee_id": None,
            "window_expires_at": None,
            "last_customer_at": None,
            "updated_at": at,
            "created_at": now,
            "version": 1,
            "announced": False,
        }
        doc = await self.conversations.find_one_and_update(
            {"_id": conversation_id}, {"$setOnInsert": created}, upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert doc is not None
        await self.search.sync_if_stale(doc)
        return doc

    async def find_conversation(self, conversation_id: str) -> Document | None:
        return await self.conversations.find_one({"_id": conversation_id}, LIST_PROJECTION)

    async def get_conversation(self, workspace_id: str, conversation_id: str) -> Document:
        """The conversation of that workspace; any other (or none) is NotFound."""
        doc = await self.conversations.find_one({"_id": conversation_id, "workspace_id": workspace_id},
                                                LIST_PROJECTION)
        if doc is None:
            raise NotFound("no such conversation", {"conversation_id": conversation_id})
        return doc

    async def mark_announced(self, conversation_id: str) -> None:
        await self.conversations.update_one({"_id": conversation_id}, {"$set": {"announced": True}})

    async def count_unread_once(self, conversation_id: str, message_id: str) -> bool:
        """+1 unread for this message unless already counted: the message id is recorded in the same
        single-document update, so a redelivered message (after a crash anywhere) is a no-op."""
        result = await self.conversations.update_one(
            {"_id": conversation_id, "applied": {"$ne": message_id}},
            {"$inc": {"unread_count": 1, "version": 1}, "$set": {"has_unread": True},
             "$push": {"applied": message_id}},
        )
        if result.modified_count:
            # Keep the marker list bounded ($slice is not available on FerretDB; one pop per push).
            await self.conversations.update_one(
                {"_id": conversation_id, f"applied.{APPLIED_KEEP}": {"$exists": True}}, {"$pop": {"applied": -1}})
        return bool(result.modified_count)

    async def apply_last_message(self, conversation_id: str, last: Document, awaiting_reply: bool, *,
                                 only_if_last: bool = False) -> bool:
        """Makes ``last`` the conversation's last message unless a newer one is there already (messages
        arrive out of order), and moves the conversation up the list. Newer is by the timeline's order
        (at, arrival, id), so of several messages of the same second the last to arrive is the last one,
        and a redelivered older one (which keeps its first arrival) does not take its place. Re-applying
        is harmless. ``only_if_last``: refresh the summary of the message that is the last one (edited,
        deleted)."""
        key = TimelineKey.of_last(last)
        at = key.at
        query: Document = {"_id": conversation_id, "last_message.id": key.item_id} if only_if_last else {
            "_id": conversation_id, "$or": [
                {"last_message": None},
                {"last_message.at": {"$lt": at}},
                *key.ties_up_to("last_message.", "id"),
            ]}
        result = await self.conversations.update_one(
            query,
            {"$set": {"last_message": last, "awaiting_reply": awaiting_reply},
             "$max": {"updated_at": at}, "$inc": {"version": 1}},
        )
        return bool(result.modified_count)

    async def apply_customer_message(self, conversation_id: str, at: datetime, wamid: str,
                                     arrival: int | None = None) -> bool:
        """A live customer message: the 24-hour window runs from the newest one (Meta's timestamp), and
        the read receipt goes to it (``last_inbound_wamid``): of the same second, the last to arrive.
        A reaction (no timeline item, no ``arrival``) takes the place only with a newer timestamp."""
        newer: list[Document] = [{"last_customer_at": None}, {"last_customer_at": {"$lt": at}}]
        if arrival is not None:
            newer += [{"last_customer_at": at, "last_customer_arrival": None},
                      {"last_customer_at": at, "last_customer_arrival": {"$lt": arrival}}]
        result = await self.conversations.update_one(
            {"_id": conversation_id, "$or": newer},
            {"$set": {"last_customer_at": at, "last_customer_arrival": arrival,
                      "window_expires_at": domain.window_expires_at(at), "last_inbound_wamid": wamid},
             "$inc": {"version": 1}},
        )
        return bool(result.modified_count)

    async def apply_last_message_status(self, conversation_id: str, message_id: str, status: str) -> bool:
        rank = domain.STATUS_RANK[status]
        result = await self.conversations.update_one(
            {"_id": conversation_id, "last_message.id": message_id, "$or": [
                {"last_message.status_rank": None}, {"last_message.status_rank": {"$lt": rank}}]},
            {"$set": {"last_message.status": status, "last_message.status_rank": rank}, "$inc": {"version": 1}},
        )
        return bool(result.modified_count)

    async def apply_customer(self, customer: Document) -> list[str]:
        """Sets the customer's name and phone on their conversations unless a newer version is there."""
        version = int(customer["version"])
        name, phone = customer.get("name") or "", customer.get("phone") or ""
        query = {"customer.id": customer["id"], "customer.version": {"$lt": version}}
        ids = [d["_id"] for d in await self.conversations.find(query, {"_id": 1}).to_list(None)]
        if not ids:
            return []
        await self.conversations.update_many(
            {"_id": {"$in": ids}, "customer.version": {"$lt": version}},
            {"$set": {"customer.name": name, "customer.phone": phone, "customer.version": version},
             "$inc": {"version": 1}},
        )
        await self.search.sync_ids(ids)
        return ids

    async def conversations_with_customer_version(self, customer_id: str, version: int) -> list[str]:
        docs = await self.conversations.find({"customer.id": customer_id, "customer.version": version},
                                             {"_id": 1}).to_list(None)
        return [d["_id"] for d in docs]

    async def remember_customer(self, customer: Document) -> bool:
        """Keeps the newest copy of a customer (a conversation created later starts from it)."""
        version = int(customer["version"])
        try:
            result = await self.customers.update_one(
                {"_id": customer["id"], "version": {"$lt": version}},
                {"$set": {"name": customer.get("name") or "", "phone": customer.get("phone") or "",
                          "version": version}},
                upsert=True,
            )
        except DuplicateKeyError:  # a newer version is there: the upsert's insert collided
            return False
        return bool(result.modified_count or result.upserted_id)

    async def known_customer(self, customer_id: str) -> Document | None:
        return await self.customers.find_one({"_id": customer_id})

    async def refresh_profile_name(self, conversation_id: str, name: str, phone: str) -> bool:
        """The WhatsApp profile name, until the customers service has told us the customer's name."""
        result = await self.conversations.update_one(
            {"_id": conversation_id, "customer.version": 0, "customer.name": {"$ne": name}},
            {"$set": {"customer.name": name}, "$inc": {"version": 1}},
        )
        if result.modified_count:
            await self.search.sync_ids([conversation_id])
        return bool(result.modified_count)

    async def list_conversations(self, query: ListQuery) -> tuple[list[Document], str]:
        numbers = list(query.number_ids) or await self.workspace_numbers(query.workspace_id)
        if not numbers:
            return [], ""
        base: Document = {"workspace_id": query.workspace_id,
                          "number_id": numbers[0] if len(numbers) == 1 else {"$in": numbers}}
        if query.filter == "unread":
            base["has_unread"] = True
        elif query.filter == "mine":
            base["assignee_id"] = query.agent_id
        elif query.filter == "no_reply":
            base["awaiting_reply"] = True
        search = query.search
        scan_max: int | None = None  # rows read at most: a broad search, checked row by row
        if search is not None:
            candidates = (await self.search.candidates(query.workspace_id, search)).ids
            if candidates is None:
                scan_max = SCAN_MAX
            elif not candidates:
                return [], ""
            else:
                base["_id"] = {"$in": candidates}
        limit = query.limit
        cursor = query.cursor
        found: list[Document] = []
        read = 0
        # Every row of a search is checked against its name and phone (a stale token, a term longer than
        # what is indexed); the loop reads on until the page is full, the rows run out or scan_max.
        batch = limit + 1 if scan_max is None else max(limit + 1, scan_max)
        while True:
            find = dict(base)
            if cursor:
                find.update(keyset_after(cursor, "updated_at"))
            docs = await self.conversations.find(find, LIST_PROJECTION).sort(LIST_SORT).limit(batch).to_list(None)
            read += len(docs)
            for doc in docs:
                cursor = encode_cursor([doc["updated_at"], doc["_id"]])
                if search is None or matches(search, doc):
                    found.append(doc)
                    if len(found) > limit:
                        break
            if len(found) > limit or len(docs) < batch or search is None:
                break
            if scan_max is not None and read >= scan_max:
                return found, cursor  # short page: the rest of the list is still to read
        if len(found) > limit:
            page = found[:limit]
            return page, encode_cursor([page[-1]["updated_at"], page[-1]["_id"]])
        return found, ""

    async def set_assignee(self, workspace_id: str, conversation_id: str, assignee: Document | None,
                           entry: Document, now: datetime) -> Document | None:
        """Assigns (or with None unassigns) and embeds the change's events in the same write (outbox).
        None when the assignee was already that one."""
        assignee_id = assignee["id"] if assignee else None
        return await self.conversations.find_one_and_update(
            {"_id": conversation_id, "workspace_id": workspace_id, "assignee_id": {"$ne": assignee_id}},
            {"$set": {"assignee": assignee, "assignee_id": assignee_id, f"outbox.{entry['id']}": entry},
             "$min": {"outbox_at": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.BEFORE,
        )

    async def mark_read(self, workspace_id: str, conversation_id: str, entry: Document, now: datetime,
                        receipt_wamid: str | None) -> bool:
        update: Document = {"$set": {"unread_count": 0, "has_unread": False, f"outbox.{entry['id']}": entry},
                            "$min": {"outbox_at": now}, "$inc": {"version": 1}}
        if receipt_wamid:
            update["$set"]["read_receipt_wamid"] = receipt_wamid
        result = await self.conversations.update_one({"_id": conversation_id, "workspace_id": workspace_id}, update)
        return bool(result.modified_count)

    # --- timeline --------------------------------------------------------------------------------------

    async def insert_item(self, doc: Document) -> bool:
        """Inserts a message, note or activity; False when it is already there (same id or same wamid)."""
        try:
            await self.timeline.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def get_item(self, item_id: str) -> Document | None:
        return await self.timeline.find_one({"_id": item_id})

    async def message_by_wamid(self, workspace_id: str, wamid: str) -> Document | None:
        return await self.timeline.find_one({"wamid": wamid, "workspace_id": workspace_id})

    async def message_by_media_id(self, workspace_id: str, media_id: str) -> Document | None:
        return await self.timeline.find_one({"media.media_id": media_id, "workspace_id": workspace_id})

    async def get_timeline(self, conversation_id: str, before: str, limit: int) -> tuple[list[Document], str]:
        """A page of the timeline, newest first from ``before`` backwards; returned oldest first."""
        find: Document = {"conversation_id": conversation_id}
        if before:
            find.update(timeline_after(await self._timeline_cursor(conversation_id, before)))
        docs = await self.timeline.find(find, {"outbox": 0}).sort(TIMELINE_SORT).limit(limit + 1).to_list(None)
        more = len(docs) > limit
        docs = docs[:limit]
        next_before = TimelineKey.of(docs[-1]).encode() if more else ""
        docs.reverse()
        return docs, next_before

    async def _timeline_cursor(self, conversation_id: str, cursor: str) -> TimelineKey:
        """A ``before`` cursor: (at, arrival, id); an invalid one is InvalidRequest."""
        try:
            at, arrival, item_id = decode_cursor(cursor, 3)
        except InvalidRequest:
            # A cursor made before arrivals existed, (at, id): the item it names gives its arrival.
            at, item_id = decode_cursor(cursor, 2)
            arrival = None
            if isinstance(at, datetime) and isinstance(item_id, str):
                item = await self.timeline.find_one({"_id": item_id, "conversation_id": conversation_id},
                                                    {"at": 1, "arrival": 1})
                if item is not None and item["at"] == at:
                    arrival = item.get("arrival")
        valid_arrival = arrival is None or (isinstance(arrival, int) and not isinstance(arrival, bool))
        if not isinstance(at, datetime) or not isinstance(item_id, str) or not valid_arrival:
            raise InvalidRequest("the cursor is not valid", {"cursor": cursor})
        return TimelineKey(at, arrival, item_id)

    async def apply_status(self, message_id: str, status: str, at: datetime,
                           error: Document | None) -> Document | None:
        """Moves a message's status forward (never back; failed is final) with one conditional update,
        so a late "delivered" cannot overwrite "read". The message after the change, or None."""
        rank = domain.STATUS_RANK[status]
        update: Document = {"status": status, "status_rank": rank, "status_at": at}
        if error is not None:
            update["error"] = error
        return await self.timeline.find_one_and_update(
            {"_id": message_id, "status_rank": {"$lt": rank}}, {"$set": update},
            return_document=ReturnDocument.AFTER,
        )

    async def set_wamid(self, message_id: str, wamid: str, now: datetime) -> Document | None:
        """Meta accepted a message sent here: it now has a wamid (the statuses will name it)."""
        try:
            return await self.timeline.find_one_and_update(
                {"_id": message_id, "wamid": None}, {"$set": {"wamid": wamid, "accepted_at": now}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # another message has it already: nothing to attach
            return None

    async def apply_reaction(self, message_id: str, reactor: str, entry: Document) -> Document | None:
        """One reaction per reactor and message; the newest (by Meta's timestamp) wins, a removal
        included (kept as an empty emoji, so an older reaction arriving late cannot bring it back)."""
        field = f"reactions.{reactor}"
        return await self.timeline.find_one_and_update(
            {"_id": message_id, "$or": [{field: None}, {f"{field}.at": {"$lt": entry["at"]}}]},
            {"$set": {field: entry}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_fields(self, message_id: str, fields: Document, unless: Document | None = None) -> Document | None:
        """Sets fields of a message (unless it already matches ``unless``); the message after, or None."""
        query: Document = {"_id": message_id}
        if unless:
            query["$nor"] = [unless]
        return await self.timeline.find_one_and_update(
            query, {"$set": fields}, return_document=ReturnDocument.AFTER)

    # --- pending (facts about a message not seen yet) --------------------------------------------------

    async def add_pending(self, pending_id: str, workspace_id: str, wamid: str, kind: str, data: Document,
                          now: datetime, ttl: timedelta) -> None:
        doc = {"workspace_id": workspace_id, "wamid": wamid, "kind": kind, "data": data,
               "created_at": now, "expires_at": now + ttl}
        await self.pending.update_one({"_id": pending_id}, {"$setOnInsert": doc}, upsert=True)

    async def pending_for(self, workspace_id: str, wamids: Sequence[str]) -> list[Document]:
        wanted = [w for w in wamids if w]
        if not wanted:
            return []
        return await self.pending.find({"workspace_id": workspace_id, "wamid": {"$in": wanted}}).sort(
            "created_at", ASCENDING).to_list(None)

    async def delete_pending(self, pending_id: str) -> None:
        await self.pending.delete_one({"_id": pending_id})

    async def purge_pending(self, now: datetime) -> int:
        result = await self.pending.delete_many({"expires_at": {"$lt": now}})
        return int(result.deleted_count)

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

    async def outbox_entries(self, collection: str, doc_id: str) -> Document:
        doc = await self.db[collection].find_one({"_id": doc_id}, {"outbox": 1})
        return dict((doc or {}).get("outbox") or {})

    # --- templates -------------------------------------------------------------------------------------

    async def apply_templates(self, workspace_id: str, waba_id: str, templates: list[Document],
                              synced_at: datetime, *, last: bool = True) -> bool:
        """One part of a sync of a business account's templates (``last``: the sync's final part, or a whole
        list); a part of an older sync than the last one completed is ignored.

        Each template is upserted with the sync's time, unless a newer sync already wrote it (two syncs of
        one account may interleave). After the last part, the account's templates no part of this sync
        listed are deleted, then the marker is written: a sync cut short by a crash is applied again on
        redelivery. Each template is stored as JSON text beside its searchable fields: Meta's components
        hold nested arrays (``example.body_text``), which FerretDB cannot store.
        """
        marker = f"sync:{workspace_id}:{waba_id}"
        current = await self.templates.find_one({"_id": marker}, {"synced_at": 1})
        if current is not None and current.get("synced_at") is not None and current["synced_at"] >= synced_at:
            return False
        not_newer: Document = {"$or": [{"synced_at": {"$lte": synced_at}}, {"synced_at": {"$exists": False}}]}
        writes = [ReplaceOne(
            {"_id": f"{workspace_id}:{waba_id}:{tpl['name']}:{tpl['language']}", **not_newer},
            {"name": tpl["name"], "language": tpl["language"], "status": tpl.get("status"),
             "category": tpl.get("category"), "template_json": json.dumps(tpl), "workspace_id": workspace_id,
             "waba_id": waba_id, "kind": "template", "updated_at": synced_at, "synced_at": synced_at},
            upsert=True) for tpl in templates]
        if writes:
            try:
                await self.templates.bulk_write(writes, ordered=False)
            except BulkWriteError as exc:
                # A duplicate key is the upsert of a template a newer sync wrote: that one stays.
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        if not last:
            return True
        await self.templates.delete_many({"workspace_id": workspace_id, "waba_id": waba_id, "kind": "template",
                                          "$or": [{"synced_at": {"$lt": synced_at}},
                                                  {"synced_at": {"$exists": False}}]})
        await self.templates.update_one({"_id": marker}, {"$set": {"synced_at": synced_at, "kind": "sync"}},
                                        upsert=True)
        return True

    async def set_template_status(self, workspace_id: str, waba_id: str, name: str, language: str | None,
                                  status: str, at: datetime) -> None:
        query: Document = {"workspace_id": workspace_id, "waba_id": waba_id, "kind": "template", "name": name}
        if language:
            query["language"] = language
        await self.templates.update_many(query, {"$set": {"status": status, "updated_at": at}})

    async def list_templates(self, workspace_id: str, waba_ids: Sequence[str] | None) -> list[Document]:
        query: Document = {"workspace_id": workspace_id, "kind": "template"}
        if waba_ids is not None:
            query["waba_id"] = {"$in": list(waba_ids)}
        docs = await self.templates.find(query).sort([("name", ASCENDING), ("language", ASCENDING)]).to_list(None)
        return [_template(d) for d in docs]

    async def find_template(self, workspace_id: str, waba_ids: Sequence[str] | None, name: str,
                            language: str) -> Document | None:
        query: Document = {"workspace_id": workspace_id, "kind": "template", "name": name, "language": language}
        if waba_ids is not None:
            query["waba_id"] = {"$in": list(waba_ids)}
        doc = await self.templates.find_one(query)
        return _template(doc) if doc is not None else None

    async def workspace_wabas(self, workspace_id: str) -> list[str]:
        docs = await self.templates.find({"workspace_id": workspace_id, "kind": "template"}, {"waba_id": 1}).to_list(
            None)
        return sorted({d["waba_id"] for d in docs})

    # --- content library -------------------------------------------------------------------------------

    async def add_library_item(self, doc: Document) -> None:
        await self.library.insert_one(doc)

    async def list_library(self, workspace_id: str, limit: int = 500) -> list[Document]:
        return await self.library.find({"workspace_id": workspace_id}).sort(
            [("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit).to_list(None)

    async def get_library_item(self, workspace_id: str, item_id: str) -> Document:
        doc = await self.library.find_one({"_id": item_id, "workspace_id": workspace_id})
        if doc is None:
            raise NotFound("no such library item", {"item_id": item_id})
        return doc

    async def remove_library_item(self, workspace_id: str, item_id: str) -> None:
        result = await self.library.delete_one({"_id": item_id, "workspace_id": workspace_id})
        if not result.deleted_count:
            raise NotFound("no such library item", {"item_id": item_id})


def _template(doc: Document) -> Document:
    """A stored template as Meta listed it, with the status it has now (status webhooks change it)."""
    tpl: Document = json.loads(doc["template_json"]) if doc.get("template_json") else dict(doc)
    tpl.update({k: doc[k] for k in ("_id", "workspace_id", "waba_id", "kind", "status", "updated_at") if k in doc})
    return tpl
