"""Outbox entries that cannot be published: counted, parked with their reason, listed and replayed.

Every relay (``inbox_core.revisions`` for customers and orders, conversations' outbox) handles each entry
on its own: a failure that will pass (Kafka or the database away, :func:`inbox_core.kafka.is_transient`)
ends the round and the entry is tried again, uncounted; any other failure (an event Kafka refuses for its
size, an entry that cannot be read) is counted in ``outbox_parked`` and the relay goes on with the
entries behind it. After ``max_attempts`` such failures the entry is parked: the relay no longer tries
it, ``inbox_outbox_parked_total{source}`` counts it, and an operator lists it and, once the cause is
fixed, asks for it again::

    python -m inbox_core.outbox <service> list
    python -m inbox_core.outbox <service> replay (--all | ENTRY_ID ...)

A replay is carried out by the service's relay at its next round (it alone knows how to publish the
entry), so the command needs only the database (``INBOX_MONGO_URL``, ``INBOX_DB_PREFIX``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from bson import json_util
from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.events import utcnow
from inbox_core.mongo import Document, Index, ensure_indexes, make_client, service_database
from inbox_core.settings import InboxSettings, load

log = logging.getLogger("inbox.outbox")

OUTBOX_PARKED = Counter("inbox_outbox_parked_total", "Outbox entries parked after failing to publish", ["source"])
OUTBOX_ENTRY_FAILURES = Counter("inbox_outbox_entry_failures_total",
                                "Outbox entries that failed to publish (not counting Kafka or the database away)",
                                ["source"])
COLLECTION = "outbox_parked"


class Parking:
    """The ``outbox_parked`` collection of a service's database: one document per failing entry
    (``_id`` ``<source>:<entry id>``), ``parked`` once it failed ``max_attempts`` times."""

    def __init__(self, db: AsyncDatabase[Document], *, max_attempts: int = 3) -> None:
        self.entries = db[COLLECTION]
        self.max_attempts = max_attempts

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.entries, [Index([("parked", 1), ("source", 1)], "parked")])

    async def failed(self, source: str, entry_id: str, exc: BaseException, entry: Document | None = None) -> bool:
        """Counts one failure of an entry (``entry``: what a replay needs to carry it out again); True
        when it is parked now, so the relay leaves it."""
        OUTBOX_ENTRY_FAILURES.labels(source).inc()
        now = utcnow()
        reason = str(exc)[:2000] or type(exc).__name__
        doc = await self.entries.find_one_and_update(
            {"_id": f"{source}:{entry_id}"},
            {"$inc": {"attempts": 1},
             "$set": {"source": source, "entry_id": entry_id, "reason": reason, "error_type": type(exc).__name__,
                      "last_failed_at": now},
             "$setOnInsert": {"first_failed_at": now, "parked": False, "replay": False}},
            upsert=True, return_document=ReturnDocument.AFTER)
        assert doc is not None
        if doc.get("parked"):
            return True
        if int(doc.get("attempts") or 0) < self.max_attempts:
            log.warning("outbox entry %s of %s failed (%d of %d): %s", entry_id, source, doc["attempts"],
                        self.max_attempts, reason)
            return False
        update: Document = {"parked": True, "parked_at": now, "replay": False}
        if entry is not None:
            # As Extended JSON text: FerretDB refuses nested arrays, and dates must come back as dates.
            update["entry"] = json_util.dumps(entry)
        await self.entries.update_one({"_id": doc["_id"]}, {"$set": update})
        OUTBOX_PARKED.labels(source).inc()
        log.error("outbox entry %s of %s parked after %d failures: %s", entry_id, source, doc["attempts"], reason)
        return True

    async def succeeded(self, source: str, entry_id: str) -> None:
        """An entry that had failed went out after all: its count goes."""
        await self.entries.delete_one({"_id": f"{source}:{entry_id}"})

    async def listed(self, source: str | None = None, limit: int = 1000) -> list[Document]:
        query: Document = {"parked": True}
        if source is not None:
            query["source"] = source
        return await self.entries.find(query).sort("parked_at", 1).limit(limit).to_list(None)

    async def request_replay(self, entry_ids: Sequence[str] | None = None) -> int:
        """Marks parked entries (``<source>:<entry id>`` as listed; all when None) for the relay to try again."""
        query: Document = {"parked": True}
        if entry_ids is not None:
            query["_id"] = {"$in": list(entry_ids)}
        result = await self.entries.update_many(query, {"$set": {"replay": True}})
        return int(result.modified_count)

    async def replays(self, source: str) -> list[Document]:
        """Parked entries of ``source`` an operator asked to replay; the relay takes each with :meth:`taken`."""
        docs = await self.entries.find({"source": source, "parked": True, "replay": True}).to_list(None)
        for doc in docs:
            if isinstance(doc.get("entry"), str):
                doc["entry"] = json_util.loads(doc["entry"])
        return docs

    async def taken(self, doc: Document) -> None:
        """A replayed entry is back with its relay, with a fresh count (parked again after as many failures)."""
        await self.entries.delete_one({"_id": doc["_id"]})


def _view(doc: Document) -> dict[str, Any]:
    return {"id": doc["_id"], "source": doc.get("source"), "entry_id": doc.get("entry_id"),
            "attempts": doc.get("attempts"), "error_type": doc.get("error_type"), "reason": doc.get("reason"),
            "first_failed_at": str(doc.get("first_failed_at")), "parked_at": str(doc.get("parked_at")),
            "replay_requested": bool(doc.get("replay"))}


async def _run(service: str, args: argparse.Namespace) -> int:
    settings = load(InboxSettings)
    client = make_client(settings, f"{service}-outbox-cli")
    try:
        parking = Parking(service_database(client, settings, service))
        if args.command == "list":
            for doc in await parking.listed(args.source):
                print(json.dumps(_view(doc)))
            return 0
        if not args.all and not args.ids:
            print("replay needs --all or entry ids (as `list` shows them)", file=sys.stderr)
            return 2
        count = await parking.request_replay(None if args.all else args.ids)
        print(json.dumps({"replay_requested": count}))
        return 0
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inbox_core.outbox", description=__doc__.split("\n\n")[0])
    parser.add_argument("service", help="the service whose database holds the entries (customers, orders, ...)")
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="parked entries, one JSON object a line")
    listing.add_argument("--source", help="only this relay's (e.g. customers, orders, conversations.timeline)")
    replay = commands.add_parser("replay", help="ask the relay to try parked entries again")
    replay.add_argument("ids", nargs="*", help="ids as `list` shows them")
    replay.add_argument("--all", action="store_true")
    args = parser.parse_args(argv)
    return asyncio.run(_run(args.service, args))


if __name__ == "__main__":
    raise SystemExit(main())
