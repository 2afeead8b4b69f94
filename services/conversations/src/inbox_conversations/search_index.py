"""Search by customer name or phone that an index serves at a million conversations, on MongoDB and FerretDB.

An array of tokens on the conversation cannot be pushed down by FerretDB (typed index keys order
scalars only; an array turns the pushdown off), so every search read the whole workspace. Instead
the collection ``search_index`` holds one small document per (conversation, token)::

    {_id: "<workspace>|<token>|<conversation>", k: "<workspace>|<token>", c: <conversation>, v: <version>}

Tokens are ``n:<word>`` for each word of the name (folded: case and accents ignored) and ``p:<suffix>``
for each suffix of the phone's digits of at least three digits. A name prefix ``mar`` is then every
``k`` in [``ws|n:mar``, ``ws|n:mas``): one range on the ``k`` index, exact (a word starts with the term
if and only if its token is in that range); phone digits anywhere in the number are a prefix of one
of its suffixes, so ``612`` is the range of ``ws|p:612``. About 15 documents per conversation.

Exact under changes and redelivery: :meth:`SearchIndex.sync` writes the conversation's tokens from
its stored customer (upserts by ``_id``, so repeating it is a no-op) tagged with the conversation's
``version``, then deletes that conversation's tokens of older versions; a sync that raced with a newer
one can leave a stale token behind (never remove a current one), and every row a search returns is
checked against the conversation's own name and phone anyway. The conversation records what it was
indexed for (``search_indexed``), so the next message of a conversation whose sync was cut short by a
crash finishes it.

A search counts each term's range (from the index alone) and reads the narrowest if it holds at most
``CANDIDATES_MAX`` entries: a page is then those conversations (by ``_id``) with the list's filter, in
the list's order. A term broader than that (a common first name at a million) is served by reading the
list newest first and checking each row: such a term matches about ``CANDIDATES_MAX`` conversations
or more (a conversation has one entry per word, nearly always one in a range), so a page fills after
a few hundred rows of a typical workspace; at most ``SCAN_MAX`` rows (one query) are read per
request, and a page left short by that bound still has a cursor to read on (at a million
conversations a common first name is ~5% of them: ~15 rows a request).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from pymongo import ASCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from inbox_conversations import domain
from inbox_core.mongo import Document, Index, ensure_indexes

MAX_WORD = 32  # name words are indexed up to this length; a longer term is checked on the rows
CANDIDATES_MAX = 1000
SCAN_MAX = 300
SEPARATOR = "|"  # never in a token: words are letters and digits (domain.name_words), phones digits
INDEXES = [
    Index([("k", ASCENDING)], "by_key"),
    Index([("c", ASCENDING)], "by_conversation"),
]
BACKFILL_MARK = "backfilled"
BACKFILL_BATCH = 500
DUPLICATE_KEY = 11000


def tokens(name: str, phone: str) -> set[str]:
    """The conversation's tokens: its name's words and its phone's digit suffixes (bounded: at most
    ``domain.MAX_NAME_WORDS`` words and, for a 15-digit number, 13 suffixes)."""
    out = {"n:" + word[:MAX_WORD] for word in domain.name_words(name)[: domain.MAX_NAME_WORDS]}
    number = domain.digits(phone)
    out.update("p:" + number[i:] for i in range(len(number) - domain.MIN_PHONE_GRAM + 1))
    return out


def indexed_for(customer: Document) -> str:
    """What a conversation's tokens are made of, as stored in its ``search_indexed``."""
    return f"{customer.get('name') or ''}\n{phone_of(customer)}"


def phone_of(customer: Document) -> str:
    return customer.get("phone") or customer.get("wa_id") or ""


def term_range(workspace_id: str, token: str) -> tuple[str, str]:
    """[low, high) of the keys that start with ``workspace|token``: code point order is UTF-8 byte
    order, which both MongoDB and FerretDB's typed keys compare strings by."""
    low = f"{workspace_id}{SEPARATOR}{token}"
    return low, low[:-1] + chr(ord(low[-1]) + 1)


@dataclass(frozen=True)
class Candidates:
    """The conversations a search can match (``ids``), or ``None``: too many to list, read the list."""

    ids: list[str] | None


class SearchIndex:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.entries: AsyncCollection[Document] = db["search_index"]
        self.marks: AsyncCollection[Document] = db["search_index_marks"]
        self.conversations: AsyncCollection[Document] = db["conversations"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.entries, INDEXES)

    async def sync(self, conversation: Document) -> None:
        """Makes the index hold exactly this conversation's tokens (``_id``, ``workspace_id``, ``customer``,
        ``version`` and ``search_indexed`` of the stored document), and marks the conversation as indexed
        for that customer."""
        conversation_id, workspace_id = conversation["_id"], conversation["workspace_id"]
        customer = conversation.get("customer") or {}
        version = int(conversation.get("version") or 0)
        wanted = tokens(customer.get("name") or "", phone_of(customer))
        if conversation.get("search_indexed") is None:
            await self._insert_first(workspace_id, conversation_id, version, wanted)
        else:
            await self._replace(workspace_id, conversation_id, version, wanted)
        await self.conversations.update_one({"_id": conversation_id},
                                            {"$set": {"search_indexed": indexed_for(customer)}})

    async def index_new(self, workspace_id: str, conversation_id: str, conversation: Document) -> Document:
        """Indexes a conversation about to be created (its entries first: their ids are derived from its id),
        and gives the fields that mark it indexed, to be created with it: no write of the mark after. Should
        another first event create it, with another name, the mark it stores is that event's, whose entries
        it inserted too (the extra ones are harmless: a search checks every row)."""
        customer = conversation.get("customer") or {}
        await self._insert_first(workspace_id, conversation_id, int(conversation.get("version") or 0),
                                 tokens(customer.get("name") or "", phone_of(customer)))
        return {"search_indexed": indexed_for(customer)}

    async def _insert_first(self, workspace_id: str, conversation_id: str, version: int, wanted: set[str]) -> None:
        """A conversation never indexed (a new one, nearly always) has no tokens to replace: plain inserts,
        a redelivery's duplicates ignored. On FerretDB an upsert is a read and a write per token, under the
        database's one write lock; these inserts cost a fraction of that on the path of a new customer's
        first message. A sync cut short before its mark may have left the tokens of an older name: they stay
        until the next change replaces them (a search checks every row against the conversation anyway)."""
        docs = [{"_id": f"{workspace_id}{SEPARATOR}{t}{SEPARATOR}{conversation_id}",
                 "k": f"{workspace_id}{SEPARATOR}{t}", "c": conversation_id, "v": version} for t in sorted(wanted)]
        if not docs:
            return
        try:
            await self.entries.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise

    async def _replace(self, workspace_id: str, conversation_id: str, version: int, wanted: set[str]) -> None:
        """The wanted tokens upserted with this version, then the conversation's tokens of older versions
        deleted (a token both names share is kept: its version is raised)."""
        writes = [UpdateOne({"_id": f"{workspace_id}{SEPARATOR}{t}{SEPARATOR}{conversation_id}"},
                            {"$setOnInsert": {"k": f"{workspace_id}{SEPARATOR}{t}", "c": conversation_id},
                             "$max": {"v": version}}, upsert=True) for t in sorted(wanted)]
        if writes:
            await self.entries.bulk_write(writes, ordered=False)
        await self.entries.delete_many({"c": conversation_id, "v": {"$lt": version}})

    async def sync_if_stale(self, conversation: Document) -> None:
        """:meth:`sync` unless the conversation is indexed for its customer already (the common case: one
        comparison, no query)."""
        if conversation.get("search_indexed") != indexed_for(conversation.get("customer") or {}):
            await self.sync(conversation)

    async def candidates(self, workspace_id: str, search: domain.SearchQuery) -> Candidates:
        """The conversations of the narrowest term: each term's range is counted (a count the database
        answers from the ``k`` index alone, without reading an entry), then only the smallest is read,
        if it holds at most ``CANDIDATES_MAX`` entries. A broad term then costs a count, not the reading
        of a thousand entries, and a range is never read in part (a part would lose matches)."""
        terms = [("n:" + t[:MAX_WORD]) for t in search.name_terms] + [("p:" + t) for t in search.phone_terms]
        ranges = [term_range(workspace_id, token) for token in terms]
        if not ranges:
            return Candidates(None)
        sizes = await asyncio.gather(*(self.entries.count_documents(key_in(low, high)) for low, high in ranges))
        smallest = min(range(len(ranges)), key=lambda i: sizes[i])
        if sizes[smallest] > CANDIDATES_MAX:
            return Candidates(None)
        if sizes[smallest] == 0:
            return Candidates([])
        # A conversation can hold several entries of one range (two words starting alike).
        found = {doc["c"] async for doc in self.entries.find(key_in(*ranges[smallest]), {"c": 1, "_id": 0})}
        return Candidates(sorted(found))

    async def backfill(self) -> int:
        """Indexes every conversation not indexed yet (a database from before this index), once: a mark
        records that it ran. Returns how many it indexed."""
        if await self.marks.find_one({"_id": BACKFILL_MARK}) is not None:
            return 0
        done = 0
        async for doc in self.conversations.find(
                {}, {"workspace_id": 1, "customer": 1, "version": 1, "search_indexed": 1}, batch_size=BACKFILL_BATCH):
            if doc.get("search_indexed") != indexed_for(doc.get("customer") or {}):
                await self.sync(doc)
                done += 1
        await self.marks.update_one({"_id": BACKFILL_MARK}, {"$set": {"done": True}}, upsert=True)
        return done


def key_in(low: str, high: str) -> Document:
    return {"k": {"$gte": low, "$lt": high}}


def matches(search: domain.SearchQuery, conversation: Document) -> bool:
    customer = conversation.get("customer") or {}
    return search.matches(customer.get("name") or "", phone_of(customer))
