"""The ``conversations`` collection: one per connected number and customer (id from inbox_core.ids).

A conversation holds everything the list shows (last message, unread count, awaiting_reply, assignee,
window, customer copy), so a list page is one indexed query with no per-row
lookups. A worker's change is read, decided in the domain (``inbound.py``) and written with one
update guarded by the ``version`` it read (every change of these fields increments it), so a
concurrent change makes the write miss and the use case decides again from a fresh read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_conversations import domain
from inbox_conversations.repositories.timeline import TimelineKey, drop_obsolete_indexes
from inbox_conversations.search_index import matches
from inbox_core.errors import InvalidRequest, NotFound
from inbox_core.mongo import Document, Index, decode_cursor, encode_cursor, ensure_indexes

# search_tokens: left by databases from before search_index.py
LIST_PROJECTION = {"search_tokens": 0, "applied": 0, "outbox": 0, "pending_keys": 0, "created_by_event": 0}

# The list's sort: newest activity first, id as the tie-breaker (the keyset).
LIST_SORT = [("updated_at", DESCENDING), ("_id", DESCENDING)]

CONVERSATION_INDEXES = [
    # One per list filter; the number is always part of the query (one, several via $in, or every
    # number of the workspace), then the status (an equality: "any" is one query per status, merged),
    # and every index ends with the sort, so a page reads only its rows.
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("status", ASCENDING), ("updated_at", DESCENDING),
           ("_id", DESCENDING)], "list_status_all"),
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("status", ASCENDING), ("has_unread", ASCENDING),
           ("updated_at", DESCENDING), ("_id", DESCENDING)], "list_status_unread"),
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("status", ASCENDING), ("assignee_id", ASCENDING),
           ("updated_at", DESCENDING), ("_id", DESCENDING)], "list_status_mine"),
    Index([("workspace_id", ASCENDING), ("number_id", ASCENDING), ("status", ASCENDING),
           ("awaiting_reply", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)], "list_status_no_reply"),
    # The snoozes whose end has come (the worker's waker).
    Index([("status", ASCENDING), ("snoozed_until", ASCENDING)], "snooze_due"),
    Index([("customer.id", ASCENDING)], "by_customer"),
    Index([("outbox_at", ASCENDING)], "outbox", options={"sparse": True}),
]
# The multikey index of the search_tokens array, replaced by search_index.py's collection; the list's
# indexes from before statuses, replaced by the list_status_* ones.
OBSOLETE_CONVERSATION_INDEXES = ("list_search", "list_all", "list_unread", "list_mine", "list_no_reply")
# Marks the one-time backfill of ``status`` on documents from before statuses (in ``conversations_marks``).
STATUS_BACKFILL_MARK = "status_backfilled"


@dataclass(frozen=True)
class ListQuery:
    workspace_id: str
    number_ids: Sequence[str]
    filter: str = "all"
    agent_id: str = ""
    status: str = domain.OPEN  # one of domain.CONVERSATION_STATUSES, or "any"
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


class Conversations:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["conversations"]
        self.marks: AsyncCollection[Document] = db["conversations_marks"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, CONVERSATION_INDEXES)
        await drop_obsolete_indexes(self.collection, OBSOLETE_CONVERSATION_INDEXES)

    async def backfill_status(self) -> int:
        """Writes ``status: "open"`` on the documents from before statuses, once (marked done): the
        conversations changed. ``version`` is left alone: nothing a client shows changes."""
        if await self.marks.find_one({"_id": STATUS_BACKFILL_MARK}) is not None:
            return 0
        result = await self.collection.update_many({"status": {"$exists": False}}, {"$set": {"status": domain.OPEN}})
        await self.marks.update_one({"_id": STATUS_BACKFILL_MARK}, {"$set": {"done": True}}, upsert=True)
        return int(result.modified_count)

    # --- reading -----------------------------------------------------------------------------------------

    async def find(self, conversation_id: str) -> Document | None:
        """The whole document (a worker decides from it, ``applied`` and ``version`` included)."""
        return await self.collection.find_one({"_id": conversation_id})

    async def find_taking_seq(self, conversation_id: str, count: int = 1, *,
                              workspace_id: str | None = None) -> Document | None:
        """:meth:`find` that also takes the conversation's next ``count`` timeline seqs (up to ``last_seq``
        of the document returned): one round trip for a worker about to add items. ``$inc`` leaves
        ``version`` alone, so a change decided from this read is still guarded by it. ``workspace_id``:
        only that workspace's conversation (another's is not touched: None)."""
        return await self._taking_seqs(conversation_id, count, workspace_id)

    async def _taking_seqs(self, conversation_id: str, count: int, workspace_id: str | None = None) -> Document | None:
        # No projection: FerretDB 1.24 does not take one on findAndModify.
        query: Document = {"_id": conversation_id}
        if workspace_id is not None:
            query["workspace_id"] = workspace_id
        return await self.collection.find_one_and_update(
            query, {"$inc": {"last_seq": count}}, return_document=ReturnDocument.AFTER)

    async def take_seqs(self, conversation_id: str, count: int = 1) -> int:
        """The first of the conversation's next ``count`` timeline seqs: strictly greater than any it gave
        before (one atomic ``$inc``, so concurrent takers never share one). NotFound without such a
        conversation."""
        doc = await self._taking_seqs(conversation_id, count)
        if doc is None:
            raise NotFound("no such conversation", {"conversation_id": conversation_id})
        return int(doc["last_seq"]) - count + 1

    async def get(self, workspace_id: str, conversation_id: str) -> Document:
        """The conversation of that workspace; any other (or none) is NotFound."""
        doc = await self.collection.find_one({"_id": conversation_id, "workspace_id": workspace_id},
                                             LIST_PROJECTION)
        if doc is None:
            raise NotFound("no such conversation", {"conversation_id": conversation_id})
        return doc

    async def page(self, query: ListQuery, numbers: Sequence[str], candidates: Sequence[str] | None = None,
                   scan_max: int | None = None) -> tuple[list[Document], str]:
        """A page of the list over ``numbers`` (never empty: the caller resolved "every number").

        A search gives either its ``candidates`` (ids from the search index) or ``scan_max``: read the list
        in order, checking each row, at most that many rows (a short page then comes with its cursor)."""
        base: Document = {"workspace_id": query.workspace_id,
                          "number_id": numbers[0] if len(numbers) == 1 else {"$in": list(numbers)}}
        statuses = list(domain.CONVERSATION_STATUSES) if query.status == "any" else [query.status]
        if query.filter == "unread":
            base["has_unread"] = True
        elif query.filter == "mine":
            base["assignee_id"] = query.agent_id
        elif query.filter == "no_reply":
            base["awaiting_reply"] = True
        search = query.search
        if candidates is not None:
            base["_id"] = {"$in": list(candidates)}
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
            docs = await self._read_in_order(find, statuses, batch)
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

    async def _read_in_order(self, find: Document, statuses: Sequence[str], limit: int) -> list[Document]:
        """The first ``limit`` rows of ``find`` in the list's order, over the given statuses: one indexed
        query per status (the status is an equality on the index, so each reads its rows in order), merged.
        A ``$in`` on the status beside the numbers' would have the database sort in a temporary B-tree."""
        found = await asyncio.gather(*(
            self.collection.find({**find, "status": status}, LIST_PROJECTION).sort(LIST_SORT).limit(limit).to_list(None)
            for status in statuses))
        if len(found) == 1:
            return found[0]
        merged = [doc for docs in found for doc in docs]
        merged.sort(key=lambda d: (d["updated_at"], d["_id"]), reverse=True)
        return merged[:limit]

    async def count_unread(self, workspace_id: str, numbers: Sequence[str]) -> list[int]:
        """Open conversations with unread messages, per number (what the list's default view, open and
        unread, shows; a conversation resolved or snoozed unread is out of the badge until it reopens), each
        up to ``domain.UNREAD_COUNT_MAX`` (that many or more: a badge says "999+"; counting on would read
        every unread conversation's index entry, hundreds of thousands at a million): one indexed count
        each (list_status_unread), together."""
        return list(await asyncio.gather(*(self.collection.count_documents(
            {"workspace_id": workspace_id, "number_id": number, "status": domain.OPEN, "has_unread": True},
            limit=domain.UNREAD_COUNT_MAX) for number in numbers)))

    async def count_open_assigned(self, workspace_id: str, numbers: Sequence[str],
                                  agent_ids: Sequence[str]) -> dict[str, int]:
        """Open conversations assigned to each agent, over the numbers: one indexed count per agent and number
        (list_status_mine), together."""
        pairs = [(agent, number) for agent in dict.fromkeys(agent_ids) for number in numbers]
        counts = await asyncio.gather(*(self.collection.count_documents(
            {"workspace_id": workspace_id, "number_id": number, "status": domain.OPEN, "assignee_id": agent})
            for agent, number in pairs))
        totals = dict.fromkeys(agent_ids, 0)
        for (agent, _), count in zip(pairs, counts, strict=True):
            totals[agent] += count
        return totals

    async def due_snoozes(self, now: datetime, limit: int) -> list[Document]:
        """Snoozed conversations whose end has come, the longest due first (index snooze_due)."""
        return await self.collection.find(
            {"status": domain.SNOOZED, "snoozed_until": {"$lte": now}}, LIST_PROJECTION).sort(
            [("status", ASCENDING), ("snoozed_until", ASCENDING)]).limit(limit).to_list(None)

    async def showing_customer_version(self, customer_id: str, version: int) -> list[Document]:
        """The conversations whose copy of the customer is at ``version`` (index by_customer), whole."""
        return await self.collection.find({"customer.id": customer_id, "customer.version": version}).to_list(None)

    # --- the worker's changes ----------------------------------------------------------------------------

    async def create(self, conversation_id: str, created: Document) -> Document:
        """The conversation, created unless it is there (two first events may race): the stored one."""
        doc = await self.collection.find_one_and_update(
            {"_id": conversation_id}, {"$setOnInsert": created}, upsert=True, return_document=ReturnDocument.AFTER)
        assert doc is not None
        return doc

    async def update(self, conversation_id: str, version: int | None, fields: Document) -> Document | None:
        """Sets ``fields`` if the conversation is still at ``version`` (the one the change was decided
        from), and moves it to the next version: the document after, or None when it changed meanwhile."""
        return await self.collection.find_one_and_update(
            {"_id": conversation_id, "version": version}, {"$set": {**fields, "version": (version or 0) + 1}},
            return_document=ReturnDocument.AFTER)

    async def mark_announced(self, conversation_id: str) -> None:
        await self.collection.update_one({"_id": conversation_id}, {"$set": {"announced": True}})

    async def mark_pending(self, conversation_id: str, key: str) -> None:
        """Notes that a fact about message ``key`` waits in ``pending`` (the message's handler reads
        pending facts only when its key is noted here, or when the message has media)."""
        await self.collection.update_one({"_id": conversation_id}, {"$addToSet": {"pending_keys": key}})

    async def clear_pending(self, conversation_id: str, keys: Sequence[str]) -> None:
        # $pullAll, not $pull with $in: FerretDB 1.24 matches no element by a condition in $pull (and says so
        # only by modifying nothing), so the keys stayed noted for good.
        await self.collection.update_one({"_id": conversation_id}, {"$pullAll": {"pending_keys": list(keys)}})

    async def apply_last_message(self, conversation_id: str, last: Document, awaiting_reply: bool, *,
                                 only_if_last: bool = False) -> bool:
        """Makes ``last`` the conversation's last message unless a newer one is there already (by the
        timeline's order, see inbound.is_newer), and moves the conversation up the list. Re-applying is
        harmless. ``only_if_last``: refresh the summary of the message that is the last one (edited, deleted)."""
        key = TimelineKey.of_last(last)
        query: Document = {"_id": conversation_id, "last_message.id": key.item_id} if only_if_last else {
            "_id": conversation_id, "$or": [
                {"last_message": None},
                {"last_message.at": {"$lt": key.at}},
                *key.ties_up_to("last_message.", "id"),
            ]}
        result = await self.collection.update_one(
            query,
            {"$set": {"last_message": last, "awaiting_reply": awaiting_reply},
             "$max": {"updated_at": key.at}, "$inc": {"version": 1}},
        )
        return bool(result.modified_count)

    async def apply_last_message_status(self, conversation_id: str, message_id: str, status: str) -> bool:
        rank = domain.STATUS_RANK[status]
        result = await self.collection.update_one(
            {"_id": conversation_id, "last_message.id": message_id, "$or": [
                {"last_message.status_rank": None}, {"last_message.status_rank": {"$lt": rank}}]},
            {"$set": {"last_message.status": status, "last_message.status_rank": rank}, "$inc": {"version": 1}},
        )
        return bool(result.modified_count)

    async def apply_customer(self, customer: Document) -> list[str]:
        """Sets the customer's name and phone on their conversations unless a newer version is there: the ids
        changed (their search entries follow, see usecases)."""
        version = int(customer["version"])
        name, phone = customer.get("name") or "", customer.get("phone") or ""
        query = {"customer.id": customer["id"], "customer.version": {"$lt": version}}
        ids = [d["_id"] for d in await self.collection.find(query, {"_id": 1}).to_list(None)]
        if not ids:
            return []
        await self.collection.update_many(
            {"_id": {"$in": ids}, "customer.version": {"$lt": version}},
            {"$set": {"customer.name": name, "customer.phone": phone, "customer.version": version},
             "$inc": {"version": 1}},
        )
        return ids

    # --- the team's changes (the outbox entry is written in the same update, see outbox.py) ----------------

    async def set_assignee(self, workspace_id: str, conversation_id: str, assignee: Document | None,
                           entry: Document, now: datetime) -> Document | None:
        """Assigns (or with None unassigns) and embeds the change's events in the same write (outbox).
        None when the assignee was already that one."""
        assignee_id = assignee["id"] if assignee else None
        return await self.collection.find_one_and_update(
            {"_id": conversation_id, "workspace_id": workspace_id, "assignee_id": {"$ne": assignee_id}},
            {"$set": {"assignee": assignee, "assignee_id": assignee_id, f"outbox.{entry['id']}": entry},
             "$min": {"outbox_at": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.BEFORE,
        )

    async def assign_if_free(self, conversation_id: str, assignee: Document, entry: Document,
                             now: datetime) -> Document | None:
        """Auto-assignment's write: assigns only an open conversation nobody has (an agent's assignment or
        another delivery of the message came first otherwise), with the change's events (outbox). The
        document after, or None."""
        return await self.collection.find_one_and_update(
            {"_id": conversation_id, "status": domain.OPEN, "assignee_id": None},
            {"$set": {"assignee": assignee, "assignee_id": assignee["id"], f"outbox.{entry['id']}": entry},
             "$min": {"outbox_at": now}, "$inc": {"version": 1}},
            return_document=ReturnDocument.AFTER,
        )

    async def set_status(self, workspace_id: str, conversation_id: str, version: int | None, status: str,
                         until: datetime | None, entry: Document, now: datetime) -> Document | None:
        """Moves the conversation to ``status`` (``until``: a snooze's end, else none) and embeds the
        change's events in the same write (outbox), if it is still at ``version`` (the one the change was
        decided from): the document after, or None when it changed meanwhile (decide again)."""
        return await self.collection.find_one_and_update(
            {"_id": conversation_id, "workspace_id": workspace_id, "version": version},
            {"$set": {"status": status, "snoozed_until": until, f"outbox.{entry['id']}": entry,
                      "version": (version or 0) + 1}, "$min": {"outbox_at": now}},
            return_document=ReturnDocument.AFTER,
        )

    async def claim_typing(self, workspace_id: str, conversation_id: str, last_before: datetime, entry: Document,
                           now: datetime) -> bool:
        """Takes the conversation's typing indicator unless one was sent after ``last_before`` (by any replica:
        the condition and the write are one update), embedding the command's entry (outbox)."""
        result = await self.collection.update_one(
            {"_id": conversation_id, "workspace_id": workspace_id,
             "$or": [{"typing_sent_at": None}, {"typing_sent_at": {"$lte": last_before}}]},
            {"$set": {"typing_sent_at": now, f"outbox.{entry['id']}": entry}, "$min": {"outbox_at": now}})
        return bool(result.modified_count)

    async def mark_read(self, workspace_id: str, conversation_id: str, entry: Document, now: datetime,
                        receipt_wamid: str | None) -> bool:
        update: Document = {"$set": {"unread_count": 0, "has_unread": False, f"outbox.{entry['id']}": entry},
                            "$min": {"outbox_at": now}, "$inc": {"version": 1}}
        if receipt_wamid:
            update["$set"]["read_receipt_wamid"] = receipt_wamid
        result = await self.collection.update_one({"_id": conversation_id, "workspace_id": workspace_id}, update)
        return bool(result.modified_count)
