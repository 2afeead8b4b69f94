"""The outbox every service that publishes from its database uses: one entry type, one relay loop.

A change is never acknowledged unless its events will be published, and without multi-document
transactions the change and its events must be one single-document write. So each service keeps its
entries where that write goes (``inbox_core.revisions``: a revision of a customer or an order;
conversations: embedded in the message, note or conversation document it changes; presence: the
``outbox`` collection, whose unique insert is also the claim on a session) and says how through an
:class:`EntrySource`. Whatever the place, an entry is one :class:`Entry`: its id, its lane (entries of
one lane go out in order; other lanes are independent), its events in order (each ``{topic, key,
event}``, :class:`Outgoing`), and what else carrying it out does (``data``, the source's own).

:class:`Outbox` carries entries out: the writer right after its write (:meth:`Outbox.deliver`, within a
timeout), then the relay (:meth:`Outbox.relay_once`, :meth:`Outbox.run`) for whatever is older than a
grace period (its writer crashed, or Kafka was down). Every step is idempotent (events keep their ids),
so doing one twice is harmless.

Each entry is handled on its own: a failure that will pass (Kafka or the database away,
:func:`inbox_core.kafka.is_transient`) ends the round and the entry is tried again, uncounted; any other
failure (an event Kafka refuses for its size, an entry that cannot be read) is counted in
``outbox_parked`` and its lane waits while the other lanes go on. After ``max_attempts`` such failures
the entry is parked: its source takes it out of what is due, ``inbox_outbox_parked_total{source}``
counts it, and an operator lists it and, once the cause is fixed, asks for it again::

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
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from bson import json_util
from faststream.kafka import KafkaBroker
from prometheus_client import Counter
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.events import Event, utcnow
from inbox_core.kafka import is_transient, publish
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


# --- the entry and the relay --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outgoing:
    """An event to publish on ``topic`` with ``key`` once the write that carries it is committed."""

    topic: str
    key: str
    event: Event

    def to_doc(self) -> Document:
        return {"topic": self.topic, "key": self.key, "event": self.event.model_dump(mode="json")}

    @classmethod
    def from_doc(cls, doc: Document) -> Outgoing:
        return cls(doc["topic"], doc["key"], Event.model_validate(doc["event"]))


@dataclass
class Entry:
    """One outbox entry, wherever its source keeps it.

    ``events`` are stored documents (:meth:`Outgoing.to_doc`), read only when published, so an entry
    whose event cannot be read fails (and is parked) on its own instead of failing the source's query."""

    id: str  # unique within its source: what outbox_parked and the ops command name
    lane: str  # entries of one lane are carried out in order (a document, a session)
    events: list[Document]
    created_at: datetime
    data: Document = field(default_factory=dict)  # the source's own: what else carrying it out does

    def outgoing(self) -> list[Outgoing]:
        return [Outgoing.from_doc(e) for e in self.events]

    def to_doc(self) -> Document:
        return {"id": self.id, "lane": self.lane, "events": self.events, "created_at": self.created_at,
                "data": self.data}

    @classmethod
    def from_doc(cls, doc: Document) -> Entry:
        return cls(str(doc["id"]), str(doc["lane"]), list(doc.get("events") or []), doc["created_at"],
                   dict(doc.get("data") or {}))


class EntrySource(Protocol):
    """Where one service keeps its entries, and what carrying one out does besides publishing."""

    @property
    def name(self) -> str:
        """The source's name in outbox_parked (``--source`` of the ops command)."""
        ...

    async def due(self, before: datetime, limit: int) -> list[Entry]:
        """Entries written before ``before`` and not yet carried out, parked ones left out; in order
        within each lane."""
        ...

    async def prepare(self, entry: Entry) -> bool:
        """What comes before the events (a projection, timeline items); False: the entry is obsolete
        and the source has dropped it, nothing is published."""
        ...

    async def finished(self, entry: Entry) -> None:
        """After the events: follow-ups, then the entry marked done or removed."""
        ...

    async def park(self, entry: Entry) -> None:
        """Takes a parked entry out of what is due."""
        ...

    async def restore(self, entry: Entry) -> None:
        """Puts a parked entry back, due at once (an operator's replay)."""
        ...


Publish = Callable[[Outgoing], Awaitable[None]]
Delivery = Literal["published", "dropped", "parked", "failed", "unavailable"]


def kafka_publish(broker: KafkaBroker) -> Publish:
    """Publishes each event on its topic (acks=all)."""

    async def send(out: Outgoing) -> None:
        await publish(broker, out.topic, out.key, out.event)

    return send


@dataclass
class Round:
    """What one relay round did. ``error``: the failure that will pass (Kafka or the database away)
    that ended it; what it did not reach waits for the next round."""

    due: int = 0
    published: int = 0
    dropped: int = 0
    failed: int = 0
    parked: int = 0
    error: BaseException | None = None


class Outbox:
    """Carries out the entries of ``sources`` (see the module's doc); one per service process."""

    def __init__(self, db: AsyncDatabase[Document], publish: Publish, sources: Sequence[EntrySource], *,
                 grace: timedelta = timedelta(seconds=10), batch: int = 200, concurrency: int = 16,
                 max_attempts: int = 3) -> None:
        self.publish = publish
        self.sources = list(sources)
        self.grace = grace
        self.batch = batch
        self.concurrency = concurrency
        self.parking = Parking(db, max_attempts=max_attempts)

    async def ensure_indexes(self) -> None:
        await self.parking.ensure_indexes()

    async def carry_out(self, source: EntrySource, entry: Entry) -> bool:
        """Prepares, publishes the events in order, finishes; False when the source dropped it. Raises
        what failed."""
        if not await source.prepare(entry):
            return False
        for out in entry.outgoing():
            await self.publish(out)
        await source.finished(entry)
        return True

    async def deliver(self, source: EntrySource, entry: Entry, *, timeout_s: float | None = None,
                      relayed: bool = False) -> tuple[Delivery, BaseException | None]:
        """Carries the entry out, never raising: a failure that will pass (or the timeout) leaves it to
        the relay; any other is counted, and parks the entry at ``max_attempts``."""
        try:
            if timeout_s is None:
                done = await self.carry_out(source, entry)
            else:
                done = await asyncio.wait_for(self.carry_out(source, entry), timeout_s)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc):
                log.warning("outbox entry %s of %s left for later: %r", entry.id, source.name, exc)
                return "unavailable", exc
            if await self.parking.failed(source.name, entry.id, exc, entry.to_doc()):
                await source.park(entry)
                return "parked", exc
            return "failed", exc
        if relayed:
            await self.parking.succeeded(source.name, entry.id)  # it may have failed before
        return ("published" if done else "dropped"), None

    async def relay_once(self, *, grace: timedelta | None = None) -> Round:
        """One round: replays an operator asked for, then every entry older than the grace (up to
        ``batch`` per source), lanes side by side (at most ``concurrency``), each lane in order."""
        result = Round()
        for source in self.sources:
            for replay in await self.parking.replays(source.name):
                try:
                    await source.restore(_parked_entry(replay))
                except Exception:
                    # Left requested: one entry that cannot be put back never stops the relay.
                    log.exception("replay of parked outbox entry %s of %s failed", replay.get("entry_id"),
                                  source.name)
                    continue
                await self.parking.taken(replay)
                log.info("parked outbox entry %s of %s replayed", replay.get("entry_id"), source.name)
        before = utcnow() - (self.grace if grace is None else grace)
        gate = asyncio.Semaphore(self.concurrency)
        for source in self.sources:
            entries = await source.due(before, self.batch)
            result.due += len(entries)
            lanes: dict[str, list[Entry]] = {}
            for entry in entries:
                lanes.setdefault(entry.lane, []).append(entry)

            async def relay_lane(lane: list[Entry], source: EntrySource = source) -> None:
                async with gate:
                    for entry in lane:
                        if result.error is not None:
                            return  # Kafka or the database away: the round ends
                        outcome, exc = await self.deliver(source, entry, relayed=True)
                        if outcome == "published":
                            result.published += 1
                        elif outcome == "dropped":
                            result.dropped += 1
                        elif outcome == "parked":
                            result.parked += 1  # out of the way: the lane goes on
                        elif outcome == "failed":
                            result.failed += 1
                            return  # its lane waits (order within a lane), the others go on
                        else:
                            result.error = result.error or exc
                            return

            await asyncio.gather(*(relay_lane(lane) for lane in lanes.values()))
            if result.error is not None:
                break
        if result.due:
            log.info("outbox relay: %d due, %d published, %d dropped, %d failed, %d parked", result.due,
                     result.published, result.dropped, result.failed, result.parked)
        return result

    async def run(self, interval_s: float, *, also: Callable[[], Awaitable[object]] | None = None) -> None:
        """The relay loop (a TaskComponent); ``also``: the service's own bounded upkeep, once a round."""

        async def round_() -> None:
            while True:
                result = await self.relay_once()
                if result.error is not None:
                    raise result.error
                if result.due < self.batch * len(self.sources) or not (result.published or result.dropped
                                                                         or result.parked):
                    break  # no backlog (or one that only fails): wait for the next round
            if also is not None:
                await also()

        await run_every(interval_s, round_, "outbox relay")


def _parked_entry(replay: Document) -> Entry:
    """The entry a parked document holds. One parked before the outbox was one (no ``lane``) comes back
    with its id and what was stored then under ``data["legacy"]``, which its source reads."""
    doc = replay.get("entry")
    if isinstance(doc, dict) and "lane" in doc:
        return Entry.from_doc(doc)
    return Entry(str(replay["entry_id"]), "", [], replay.get("first_failed_at") or utcnow(),
                 {"legacy": doc if isinstance(doc, dict) else {}})


async def run_every(interval_s: float, step: Callable[[], Awaitable[object]], what: str) -> None:
    """A background loop that never dies of a failure: it waits for the next round."""
    while True:
        try:
            await step()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; retrying", what)
        await asyncio.sleep(interval_s)


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
