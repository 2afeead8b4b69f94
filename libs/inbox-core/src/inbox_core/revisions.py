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
so consumers deduplicate it. The relay handles each revision on its own (``inbox_core.outbox``): one
that keeps failing for a reason of its own (an event over Kafka's size limit) is parked with that reason
after a few rounds and the ones behind it go on; Kafka or the database away ends the round instead.
"""

from __future__ import annotations

import asyncio
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
from inbox_core.events import Event
from inbox_core.kafka import is_transient, publish
from inbox_core.mongo import Document, Index, ensure_indexes
from inbox_core.outbox import Parking

log = logging.getLogger("inbox.revisions")

# Zero-padded so the revisions of one document sort by version as strings.
_VERSION_DIGITS = 12


def revision_id(doc_id: str, version: int) -> str:
    return f"{doc_id}:{version:0{_VERSION_DIGITS}d}"


def now_ms() -> datetime:
    """Now, to the millisecond: what BSON stores, so a value read back equals the one written."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Outgoing:
    """An event to publish on ``topic`` with ``key`` once its revision is committed."""

    topic: str
    key: str
    event: Event

    def to_doc(self) -> Document:
        return {"topic": self.topic, "key": self.key, "event": self.event.model_dump(mode="json")}

    @classmethod
    def from_doc(cls, doc: Document) -> Outgoing:
        return cls(doc["topic"], doc["key"], Event.model_validate(doc["event"]))


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
    """A collection ``name`` (the projection) and its log ``<name>_revisions``; see the module's doc."""

    def __init__(self, db: AsyncDatabase[Document], name: str, broker: KafkaBroker,
                 publish_timeout_s: float = 3.0) -> None:
        self.docs: AsyncCollection[Document] = db[name]
        self.revisions: AsyncCollection[Document] = db[f"{name}_revisions"]
        self.broker = broker
        self.publish_timeout_s = publish_timeout_s
        self.parking = Parking(db)
        self.source = name  # the relay's name in outbox_parked

    async def ensure_indexes(self) -> None:
        # The relay's query: unpublished revisions, oldest first; and a document's latest revision.
        await ensure_indexes(self.revisions, [
            Index([("published", ASCENDING), ("created_at", ASCENDING)], "unpublished"),
            Index([("doc_id", ASCENDING), ("version", DESCENDING)], "latest"),
        ])
        await self.parking.ensure_indexes()

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
        raw = await self.revisions.find_one({"doc_id": doc_id}, sort=[("version", DESCENDING)])
        return Revision.from_doc(raw) if raw else None

    async def apply(self, doc_id: str, decide: Decide, *, attempts: int = 100) -> Document | None:
        """Commits the change ``decide`` makes to the current document, publishes its events, and returns
        the document as it is afterwards (unchanged when ``decide`` returned None; None if it does not exist).

        The projection is only a fast first guess: a commit that finds its version taken, or a "no change"
        that finds a newer revision, decides again on the latest revision, so every decision is made on
        the truth, once."""
        if ":" in doc_id:
            raise ValueError("a revisioned document's id must not contain ':' (revision ids are <id>:<version>)")
        current = await self.get(doc_id)
        for _ in range(attempts):
            version = current["version"] if current else 0
            change = decide(current, version + 1)
            if change is None:
                if await self.revisions.find_one({"_id": revision_id(doc_id, version + 1)}, {"_id": 1}) is None:
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
        raise Unavailable("too many concurrent changes, try again", {"id": doc_id})

    async def commit(self, revision: Revision) -> None:
        """The change's one durable write; raises VersionTaken when another writer got there first."""
        try:
            await self.revisions.insert_one(revision.to_doc())
        except DuplicateKeyError as exc:
            raise VersionTaken(revision.id) from exc

    async def finish(self, revision: Revision) -> None:
        """After the commit: projection, then events. A failed publication is left to the relay (the change
        is committed and its events will be published), so the caller may still acknowledge it."""
        await self.materialise(revision)
        try:
            await asyncio.wait_for(self.publish(revision), self.publish_timeout_s)
        except Exception as exc:
            log.warning("publication of %s deferred to the relay: %r", revision.id, exc)

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

    async def publish(self, revision: Revision) -> None:
        """Publishes the revision's events in order (acks=all), then marks it published."""
        for out in revision.events:
            await publish(self.broker, out.topic, out.key, out.event)
        await self.revisions.update_one(
            {"_id": revision.id}, {"$set": {"published": True, "published_at": now_ms()}}
        )
        revision.published = True

    async def relay_once(self, min_age_s: float, limit: int = 200) -> int:
        """Finishes revisions left unpublished for at least ``min_age_s`` (their writer crashed, or Kafka
        was down); returns how many. Younger ones are probably still being finished by their writer."""
        for replay in await self.parking.replays(self.source):
            await self.revisions.update_one({"_id": replay["entry_id"]}, {"$set": {"parked": False}})
            await self.parking.taken(replay)
            log.info("parked revision %s of %s replayed", replay["entry_id"], self.docs.name)
        cutoff = now_ms() - timedelta(seconds=min_age_s)
        pending = await self.revisions.find(
            {"published": False, "parked": {"$ne": True}, "created_at": {"$lte": cutoff}}
        ).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit).to_list()
        published = 0
        for raw in pending:
            try:
                revision = Revision.from_doc(raw)
                await self.materialise(revision)
                await self.publish(revision)
            except Exception as exc:
                if is_transient(exc):
                    raise  # Kafka or the database away: the round ends, every entry waits
                parked = await self.parking.failed(self.source, str(raw["_id"]), exc)
                await self.revisions.update_one({"_id": raw["_id"]},
                                                {"$set": {"parked": True} if parked else {"relay_failed": True}})
                continue  # the entries behind it go on
            published += 1
            if raw.get("relay_failed"):
                await self.parking.succeeded(self.source, str(raw["_id"]))
        if pending:
            log.info("relay published %d of %d pending revision(s) of %s", published, len(pending), self.docs.name)
        return len(pending)

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        """The background loop (a TaskComponent): never gives up, a failure waits for the next round."""
        while True:
            try:
                while await self.relay_once(min_age_s, limit=200) == 200:
                    pass  # a backlog: keep going without waiting
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay of %s failed; retrying", self.docs.name)
            await asyncio.sleep(interval_s)
