"""Documents whose every change is committed as a numbered revision that carries its events (the outbox).

Why not a conditional update ("set stage=shipped where version=3")? FerretDB v1, which the tests run on,
applies an update by reading the whole document and writing it back, so such an update is not atomic
there: two writers that both read version 3 can both "match", and a concurrent update of another field
is silently lost. What both MongoDB and FerretDB do enforce atomically is a unique key. So a change of
document D from version n to n+1 is committed by inserting the revision ``D:n+1`` (a unique ``_id``)
holding D's whole new state and the events the change publishes: of two writers that read version n,
exactly one inserts ``D:n+1``; the other gets a duplicate key, reloads and decides again. The revision
is one single-document write that makes the change durable together with its pending events, without a
multi-document transaction (docs/architecture.md's publishing rule).

After the commit the state is copied into the queryable collection (the projection, which carries the
indexes the service's queries need), the events are published (acks=all) and the revision is marked
published. A crash anywhere after the commit loses nothing: :meth:`RevisionedCollection.relay_once`
finds revisions still unpublished after a grace period, copies them into the projection and publishes
their events. An event can then reach Kafka twice (the writer and the relay), always with the same id,
so consumers deduplicate it. A revision is the service's outbox entry (``inbox_core.outbox``: the
writer and the relay carry it out through :class:`inbox_core.outbox.Outbox`, one that keeps failing for
a reason of its own is parked and the ones behind it go on).

Compaction (:meth:`RevisionedCollection.compact_once`): a revision holds the document's whole state (a
customer's copies all of its orders, so a customer's revisions grow with the square of its order count).
What is read of a revision is the latest one of a document (``get`` before the projection has it, and
``apply``'s retry) and unpublished ones (the relay). So a published revision older than the retention
that is not its document's latest keeps only its id, version and dates: the id still claims its version
(a writer with a stale read can never commit that version again), the state and events go.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from faststream.kafka import KafkaBroker
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.errors import Unavailable
from inbox_core.mongo import Document, Index, ensure_indexes
from inbox_core.outbox import Entry, Outbox, Outgoing, Publish, kafka_publish, run_every

log = logging.getLogger("inbox.revisions")

# Zero-padded so the revisions of one document sort by version as strings.
_VERSION_DIGITS = 12


def revision_id(doc_id: str, version: int) -> str:
    return f"{doc_id}:{version:0{_VERSION_DIGITS}d}"


def now_ms() -> datetime:
    """Now, to the millisecond: what BSON stores, so a value read back equals the one written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class Revision:
    doc_id: str
    version: int
    state: Document  # the document's fields, without _id and version
    events: list[Outgoing] = field(default_factory=list)
    published: bool = False
    created_at: datetime = field(default_factory=now_ms)

    @property
    def id(self) -> str:
        return revision_id(self.doc_id, self.version)

    @property
    def document(self) -> Document:
        """The document as the projection holds it."""
        return {"_id": self.doc_id, **self.state, "version": self.version}

    def to_doc(self) -> Document:
        return {
            "_id": self.id,
            "doc_id": self.doc_id,
            "version": self.version,
            "state": self.state,
            "events": [e.to_doc() for e in self.events],
            "published": self.published,
            "created_at": self.created_at,
        }

    def entry(self) -> Entry:
        return Entry(self.id, self.doc_id, [e.to_doc() for e in self.events], self.created_at,
                     {"doc_id": self.doc_id, "version": self.version, "state": self.state})

    @classmethod
    def from_doc(cls, doc: Document) -> Revision:
        return cls(
            doc_id=doc["doc_id"],
            version=doc["version"],
            state=doc["state"],
            events=[Outgoing.from_doc(e) for e in doc.get("events", [])],
            published=doc.get("published", False),
            created_at=doc["created_at"],
        )


class VersionTaken(Exception):
    """Another writer committed this version first."""


# (the current document or None, the version a change would get) -> (new state, events), or None: no change.
# It may raise an InboxError (not found, conflict...), which ends the attempt.
Decide = Callable[[Document | None, int], tuple[Document, list[Outgoing]] | None]


class RevisionedCollection:
    """A collection ``name`` (the projection) and its log ``<name>_revisions``; see the module's doc.

    It is its own outbox source (``source``, named ``name`` in outbox_parked) and has its relay
    (``outbox``)."""

    def __init__(self, db: AsyncDatabase[Document], name: str, broker: KafkaBroker | None = None,
                 publish_timeout_s: float = 3.0, *, publish: Publish | None = None,
                 relay_min_age_s: float = 10.0) -> None:
        self.docs: AsyncCollection[Document] = db[name]
        self.revisions: AsyncCollection[Document] = db[f"{name}_revisions"]
        self.publish_timeout_s = publish_timeout_s
        self.name = name  # the outbox source's name
        if publish is None:
            if broker is None:
                raise ValueError("a broker or a publish function is needed")
            publish = kafka_publish(broker)
        self.outbox = Outbox(db, publish, [self], grace=timedelta(seconds=relay_min_age_s))
        self.parking = self.outbox.parking
        self._compact_from = _EPOCH

    async def ensure_indexes(self) -> None:
        # The relay's query: unpublished revisions, oldest first (also compaction's, published ones by
        # age); and a document's latest revision.
        await ensure_indexes(self.revisions, [
            Index([("published", ASCENDING), ("created_at", ASCENDING)], "unpublished"),
            Index([("doc_id", ASCENDING), ("version", DESCENDING)], "latest"),
        ])
        await self.outbox.ensure_indexes()

    async def get(self, doc_id: str) -> Document | None:
        """The document; from its latest revision when a crash came before the copy into the projection."""
        doc = await self.docs.find_one({"_id": doc_id})
        if doc is not None:
            return doc
        latest = await self.latest(doc_id)
        return latest.document if latest else None

    async def latest(self, doc_id: str) -> Revision | None:
        # By doc_id and version (index latest) rather than an _id range: FerretDB's _id index holds JSON
        # text, which orders no range, so that read scanned every revision there.
        # Without its events: what reads it wants is the state (the relay publishes from its own query).
        raw = await self.revisions.find_one({"doc_id": doc_id}, {"events": 0}, sort=[("version", DESCENDING)])
        return Revision.from_doc(raw) if raw else None

    async def apply(self, doc_id: str, decide: Decide, *, attempts: int = 100) -> Document | None:
        """Commits the change ``decide`` makes to the current document, publishes its events, and returns
        the document as it is afterwards (unchanged when ``decide`` returned None; None if it does not exist).

        It decides on the latest revision (one indexed read: the truth, where the projection can lag
        behind after a crash), so a "no change" needs nothing more; a commit that finds its version taken
        decides again on the latest. A document with no revision (none yet, or written before revisions)
        is read from the projection, and a "no change" on it is confirmed by finding no revision after it."""
        if ":" in doc_id:
            raise ValueError("a revisioned document's id must not contain ':' (revision ids are <id>:<version>)")
        latest = await self.latest(doc_id)
        current = latest.document if latest is not None else await self.docs.find_one({"_id": doc_id})
        confirmed = latest is not None
        for _ in range(attempts):
            version = current["version"] if current else 0
            change = decide(current, version + 1)
            if change is None:
                if confirmed or await self.revisions.find_one({"_id": revision_id(doc_id, version + 1)},
                                                              {"_id": 1}) is None:
                    return current
            else:
                state, events = change
                revision = Revision(doc_id, version + 1, state, events)
                try:
                    await self.commit(revision)
                except VersionTaken:
                    pass
                else:
                    await self.finish(revision)
                    return revision.document
            latest = await self.latest(doc_id)
            if latest is not None:
                await self.materialise(latest)  # the projection was behind: bring it up to date
            current = latest.document if latest else None
            confirmed = True
        raise Unavailable("too many concurrent changes, try again", {"id": doc_id})

    async def commit(self, revision: Revision) -> None:
        """The change's one durable write; raises VersionTaken when another writer got there first."""
        try:
            await self.revisions.insert_one(revision.to_doc())
        except DuplicateKeyError as exc:
            raise VersionTaken(revision.id) from exc

    async def finish(self, revision: Revision) -> None:
        """After the commit: projection (so the caller reads its write), then the events through the
        outbox. A failed publication is left to the relay (the change is committed and its events will
        be published), so the caller may still acknowledge it."""
        await self.materialise(revision)
        entry = revision.entry()
        entry.data["materialised"] = True
        await self.outbox.deliver(self, entry, timeout_s=self.publish_timeout_s)

    async def materialise(self, revision: Revision) -> None:
        """Copies a revision into the projection unless the projection already has it or a later one."""
        for _ in range(3):
            # A duplicate key: the projection holds this version or a later one, so the upsert found nothing older.
            with contextlib.suppress(DuplicateKeyError):
                await self.docs.replace_one(
                    {"_id": revision.doc_id, "version": {"$lt": revision.version}}, revision.document, upsert=True
                )
            # On FerretDB a slower copy of an older revision can land after ours: check and redo.
            now = await self.docs.find_one({"_id": revision.doc_id}, {"version": 1})
            if now is not None and now["version"] >= revision.version:
                return

    # --- the outbox source (inbox_core.outbox.EntrySource) ---------------------------------------------

    async def due(self, before: datetime, limit: int) -> list[Entry]:
        pending = await self.revisions.find(
            {"published": False, "parked": {"$ne": True}, "created_at": {"$lte": before}}
        ).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit).to_list()
        return [Entry(str(raw["_id"]), str(raw["doc_id"]), list(raw.get("events") or []), raw["created_at"],
                      {"doc_id": raw["doc_id"], "version": raw["version"], "state": raw.get("state") or {}})
                for raw in pending]

    async def prepare(self, entry: Entry) -> bool:
        if not entry.data.get("materialised"):
            await self.materialise(Revision(entry.data["doc_id"], entry.data["version"], entry.data["state"]))
        return True

    async def finished(self, entry: Entry) -> None:
        await self.revisions.update_one({"_id": entry.id}, {"$set": {"published": True, "published_at": now_ms()}})

    async def park(self, entry: Entry) -> None:
        await self.revisions.update_one({"_id": entry.id}, {"$set": {"parked": True}})

    async def restore(self, entry: Entry) -> None:
        await self.revisions.update_one({"_id": entry.id}, {"$set": {"parked": False}})

    async def relay_once(self, min_age_s: float, limit: int = 200) -> int:
        """One relay round over revisions unpublished for at least ``min_age_s`` (their writer crashed, or
        Kafka was down; younger ones are probably still being finished by their writer); returns how
        many were due. Kafka or the database away raises, after what the round could do."""
        self.outbox.batch = limit
        result = await self.outbox.relay_once(grace=timedelta(seconds=min_age_s))
        if result.error is not None:
            raise result.error
        return result.due

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        """The background loop (a TaskComponent): never gives up, a failure waits for the next round."""
        self.outbox.grace = timedelta(seconds=min_age_s)
        await self.outbox.run(interval_s)

    # --- retention ---------------------------------------------------------------------------------------

    async def compact_once(self, retention: timedelta, limit: int = 500) -> int:
        """Compacts up to ``limit`` published revisions older than ``retention`` that are not their
        document's latest (see the module's doc); returns how many. Each call reads on from where the
        last one stopped (oldest first), and starts over once it reaches the end."""
        cutoff = now_ms() - retention
        batch = await self.revisions.find(
            {"published": True, "compacted": {"$ne": True}, "created_at": {"$gt": self._compact_from, "$lte": cutoff}},
            {"_id": 1, "doc_id": 1, "version": 1, "created_at": 1},
        ).sort([("created_at", ASCENDING)]).limit(limit).to_list()
        self._compact_from = batch[-1]["created_at"] if len(batch) == limit else _EPOCH
        if not batch:
            return 0
        # A published revision's version is at most its projection's (copied before it is marked published).
        current = {d["_id"]: d["version"] async for d in self.docs.find(
            {"_id": {"$in": list({r["doc_id"] for r in batch})}}, {"version": 1})}
        older = [r["_id"] for r in batch if r["version"] < current.get(r["doc_id"], 0)]
        if not older:
            return 0
        result = await self.revisions.update_many(
            {"_id": {"$in": older}}, {"$unset": {"state": "", "events": ""}, "$set": {"compacted": True}})
        log.info("compacted %d revision(s) of %s", result.modified_count, self.docs.name)
        return int(result.modified_count)

    async def compact_forever(self, interval_s: float, retention: timedelta, limit: int = 500) -> None:
        """The retention loop (a TaskComponent): a bounded batch a round (no TTL index: FerretDB)."""
        async def step() -> None:
            while await self.compact_once(retention, limit) == limit:
                pass  # a backlog: on without waiting

        await run_every(interval_s, step, f"compaction of {self.docs.name} revisions")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

__all__ = ["Decide", "Outgoing", "Revision", "RevisionedCollection", "VersionTaken", "now_ms", "revision_id"]
