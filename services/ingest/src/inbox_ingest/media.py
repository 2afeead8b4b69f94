"""Media: ingest's file store (GridFS), and the fetching of inbound media from the Graph API.

- :class:`MediaStore`: files in GridFS (bucket ``media`` in ingest's own database; FerretDB v1.24 runs
  it as ordinary collections). Outbound uploads by agents and inbound files from Meta both live here;
  the sender uploads from it to Meta, the gateway's download path reads from it.
- Inbound media is fetched off the consumer's path: the consumer only records a job per media id
  (:meth:`MediaJobs.record`), and :func:`media_retry_loop` fetches due jobs (``GET /{media-id}`` for a
  URL, then the URL with the number's token), stores the file under ``"wa-media-" + media_id`` and
  publishes ``whatsapp.media.stored``; after ``media_max_attempts`` (exponential backoff) or once Meta's
  7 days are over it publishes ``whatsapp.media.unavailable``. A failed download never blocks a partition.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bson import Int64
from faststream.kafka import KafkaBroker
from gridfs import AsyncGridFSBucket
from gridfs.errors import CorruptGridFile, NoFile
from pydantic import ValidationError
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from inbox_core.errors import NotFound, TooLarge
from inbox_core.events import Event, utcnow
from inbox_core.events.whatsapp import MEDIA_TYPES, MediaStored, MediaUnavailable, MessageReceived, MetaError
from inbox_core.kafka import publish
from inbox_core.mongo import Document, Index, ensure_indexes
from inbox_core.topics import WHATSAPP_EVENTS, Topic
from inbox_ingest.domain.media import MAX_MEDIA_BYTES, human_size, inbound_limit, oversize_reason
from inbox_ingest.domain.sending import (
    event_key,
    inbound_storage_id,
    media_event_id,
    media_expired,
    media_retry_at,
)
from inbox_ingest.graph import GraphClient, GraphError
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import IngestStore

log = logging.getLogger("inbox.ingest.media")


# --- the store --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredMedia:
    storage_id: str
    mime_type: str
    size: int
    sha256: str
    filename: str | None
    created_at: datetime | None
    metadata: dict[str, Any] = field(default_factory=dict)


class MediaTooLarge(TooLarge):
    """A file over its limit; nothing of it is kept."""

    def __init__(self, limit: int, message: str | None = None) -> None:
        super().__init__(message or f"files are limited to {human_size(limit)}", {"limit_bytes": limit})
        self.limit = limit


# Chunks go to the database in batches of about this much: PyMongo's GridIn buffers up to 32 MiB per open
# upload stream (gridfs' _UPLOAD_BUFFER_SIZE) before it writes, and its download cursor takes the server's
# default batch (101 chunks, 25 MiB): ten parallel 100 MB uploads would hold over 300 MiB. Written and read
# here in the GridFS layout (``<bucket>.files``, ``<bucket>.chunks`` {files_id, n, data}, the bucket's own
# indexes), so any GridFS client reads the files, and AsyncGridFSBucket deletes them.
_BATCH_BYTES = 1024 * 1024
# Chunk batches being written at once per process. A database serialises them anyway (SQLite does, MongoDB
# per document lock): ten uploads writing at once each waited behind the others inside its own operation's
# timeout (INBOX_MONGO_TIMEOUT_MS), up to 5 s each on FerretDB; waiting here instead holds the gRPC stream,
# whose flow control then slows the sender, and each waiting upload holds one batch at most.
_CONCURRENT_WRITES = 2


class MediaStore:
    """Files in GridFS under string ids, written and read as streams (a few chunks in memory at a time).

    A file's ``files`` document is written after its last chunk, so a file is there whole or not at all;
    an upload in progress has a ``<bucket>.partial`` document (when it started), removed when it is done:
    what a crash leaves behind is found by it and purged (:meth:`purge_partial`).
    """

    BUCKET = "media"

    def __init__(self, db: AsyncDatabase[Document], *, bucket: str = BUCKET, chunk_size: int = 255 * 1024) -> None:
        self.db = db
        self.bucket_name = bucket
        self.chunk_size = chunk_size
        self.bucket = AsyncGridFSBucket(db, bucket_name=bucket, chunk_size_bytes=chunk_size)
        self.files = db[f"{bucket}.files"]
        self.chunks = db[f"{bucket}.chunks"]
        self.partial = db[f"{bucket}.partial"]
        self._indexed = False
        self._writes = asyncio.Semaphore(_CONCURRENT_WRITES)

    async def ensure_indexes(self) -> None:
        """The indexes GridFS drivers create (same keys and names), and ours."""
        if self._indexed:
            return
        await self.chunks.create_index([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)
        await self.files.create_index([("filename", ASCENDING), ("uploadDate", ASCENDING)])
        await ensure_indexes(self.files, [Index([("uploadDate", ASCENDING)], "uploaded")])
        await ensure_indexes(self.partial, [Index([("started_at", ASCENDING)], "started")])
        self._indexed = True

    async def write(self, chunks: AsyncIterable[bytes], mime_type: str, filename: str | None = None, *,
                    storage_id: str | None = None, metadata: dict[str, Any] | None = None,
                    max_bytes: int = MAX_MEDIA_BYTES, too_large: str | None = None) -> StoredMedia:
        """Stores the bytes ``chunks`` yields, as they come, and returns the stored file (a new storage id
        unless ``storage_id`` is given; one already stored is returned as it is, ``chunks`` unread).

        Past ``max_bytes`` it stops reading and raises :class:`MediaTooLarge` (message ``too_large``);
        on any failure, the chunks written so far are removed.
        """
        await self.ensure_indexes()
        sid = storage_id or f"up-{uuid.uuid4().hex}"
        if storage_id is not None:
            existing = await self.info(sid)
            if existing is not None:
                return existing
            # Chunks left by a crash in the middle of an earlier try would clash with the new ones.
            await self.chunks.delete_many({"files_id": sid})
        started = utcnow()
        await self.partial.update_one({"_id": sid}, {"$set": {"started_at": started}}, upsert=True)
        digest = hashlib.sha256()
        size = n = 0
        pending = bytearray()
        batch: list[Document] = []
        batch_bytes = 0
        try:
            async for piece in chunks:
                size += len(piece)
                if size > max_bytes:
                    raise MediaTooLarge(max_bytes, too_large)
                digest.update(piece)
                pending.extend(piece)
                while len(pending) >= self.chunk_size:
                    data = bytes(pending[:self.chunk_size])
                    batch.append({"_id": chunk_id(sid, n), "files_id": sid, "n": n, "data": data})
                    del pending[:self.chunk_size]
                    n += 1
                    batch_bytes += self.chunk_size
                    if batch_bytes >= _BATCH_BYTES:
                        await self._insert(batch)
                        batch, batch_bytes = [], 0
            if pending:
                batch.append({"_id": chunk_id(sid, n), "files_id": sid, "n": n, "data": bytes(pending)})
            if batch:
                await self._insert(batch)
            meta = dict(metadata or {})
            meta.update({"mime_type": mime_type, "sha256": digest.hexdigest(), "size": size})
            doc: Document = {"_id": sid, "length": Int64(size), "chunkSize": self.chunk_size, "uploadDate": utcnow(),
                             "filename": filename or sid, "metadata": meta}
            await self.files.insert_one(doc)
        except (DuplicateKeyError, BulkWriteError):
            # Another worker stored (or is storing) the same id: its chunks are not ours to remove.
            stored = await self.info(sid)
            if stored is not None:
                return stored
            raise
        except BaseException:
            with contextlib.suppress(Exception):
                await self.chunks.delete_many({"files_id": sid})
                await self.partial.delete_one({"_id": sid})
            raise
        await self.partial.delete_one({"_id": sid})
        return _stored(doc)

    async def _insert(self, batch: list[Document]) -> None:
        async with self._writes:
            await self.chunks.insert_many(batch)

    async def put(self, data: bytes, mime_type: str, filename: str | None = None, *,
                  storage_id: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        """Stores bytes already in memory (small files, tests); see :meth:`write`."""

        async def whole() -> AsyncIterator[bytes]:
            yield data

        stored = await self.write(whole(), mime_type, filename, storage_id=storage_id, metadata=metadata)
        return stored.storage_id

    async def info(self, storage_id: str) -> StoredMedia | None:
        doc = await self.files.find_one({"_id": storage_id})
        return _stored(doc) if doc else None

    async def get(self, storage_id: str) -> tuple[StoredMedia, bytes]:
        """The file whole, in memory: for tests and small files only; raises ``NotFound``."""
        stored, chunks = await self.open(storage_id)
        parts = [part async for part in chunks]
        return stored, b"".join(parts)

    async def open(self, storage_id: str) -> tuple[StoredMedia, AsyncIterator[bytes]]:
        """The file's metadata and an iterator over its chunks, read from the database a few at a time;
        raises ``NotFound``. A chunk missing or cut short raises ``CorruptGridFile`` mid-stream."""
        doc = await self.files.find_one({"_id": storage_id})
        if doc is None:
            raise NotFound("no such media", {"storage_id": storage_id})
        stored = _stored(doc)
        chunk_size = int(doc.get("chunkSize") or self.chunk_size)
        count = -(-stored.size // chunk_size)
        batch = max(1, _BATCH_BYTES // chunk_size)

        async def read() -> AsyncIterator[bytes]:
            # By the chunks' own ids, a batch at a time (an _id lookup uses the _id index on FerretDB too; a
            # files_id filter sorted by n read every chunk of the bucket there: 10 s past 1 GB). Files written
            # before chunks had such ids are read by files_id.
            by_id = count == 0 or await self.chunks.find_one({"_id": chunk_id(storage_id, 0)}, {"_id": 1}) is not None
            for first in range(0, count, batch):
                numbers = list(range(first, min(first + batch, count)))
                query: Document = ({"_id": {"$in": [chunk_id(storage_id, n) for n in numbers]}} if by_id
                                   else {"files_id": storage_id, "n": {"$in": numbers}})
                found = {int(c["n"]): c["data"] async for c in self.chunks.find(query)}
                for n in numbers:
                    data = found.get(n)
                    want = chunk_size if n < count - 1 else stored.size - chunk_size * (count - 1)
                    if data is None or len(data) != want:
                        raise CorruptGridFile(f"media {storage_id}: chunk {n} missing or cut short")
                    yield bytes(data)

        return stored, read()

    async def mark_sent(self, storage_id: str) -> None:
        """Notes that the file was sent (so it is referenced by a message and never purged as unsent)."""
        await self.files.update_one({"_id": storage_id, "metadata.sent_at": {"$exists": False}},
                                    {"$set": {"metadata.sent_at": utcnow()}})

    async def mark_kept(self, storage_id: str) -> None:
        """Notes that something lasting refers to the file (a library item): never purged as unsent."""
        await self.files.update_one({"_id": storage_id, "metadata.kept_at": {"$exists": False}},
                                    {"$set": {"metadata.kept_at": utcnow()}})

    async def delete(self, storage_id: str) -> None:
        with contextlib.suppress(NoFile):
            await self.bucket.delete(storage_id)
        await self.partial.delete_one({"_id": storage_id})

def chunk_id(storage_id: str, n: int) -> str:
    """A chunk's ``_id``: derived from its file and number, so a reader fetches it by id."""
    return f"{storage_id}:{n:07d}"


def _stored(doc: Document) -> StoredMedia:
    meta = dict(doc.get("metadata") or {})
    return StoredMedia(
        storage_id=str(doc["_id"]),
        mime_type=str(meta.get("mime_type") or "application/octet-stream"),
        size=int(doc.get("length") or 0),
        sha256=str(meta.get("sha256") or ""),
        filename=doc.get("filename"),
        created_at=doc.get("uploadDate"),
        metadata=meta,
    )


# --- inbound media jobs ------------------------------------------------------------------------------


class MediaJobs:
    """One job per Meta media id: ``pending`` until ``stored`` or ``unavailable``, then published.

    The outcome event is written into the job before it is published, so a crash or a broker outage
    between the two only delays it: the loop publishes every job whose ``published`` is false.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.jobs = db["media_jobs"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.jobs, [Index([("published", ASCENDING), ("next_at", ASCENDING)], "due"),
                                         Index([("published", ASCENDING), ("published_at", ASCENDING)], "finished")])

    async def record(self, event: Event) -> bool:
        """Records the job for a ``whatsapp.message.received`` with a media id; True when it is new."""
        if event.type != MessageReceived.EVENT_TYPE:  # type: ignore[attr-defined]
            return False
        try:
            message = event.payload(MessageReceived)
        except ValidationError as exc:
            # Not ours to judge: the event's own consumers dead-letter it; we only skip the media.
            log.warning("message event %s unreadable, no media job: %s", event.id, exc.errors()[:3])
            return False
        media = message.media
        if media is None or not media.media_id or message.type not in MEDIA_TYPES:
            return False
        now = utcnow()
        result = await self.jobs.update_one(
            {"_id": media.media_id},
            {"$setOnInsert": {
                "wamid": message.wamid,
                "phone_number_id": message.phone_number_id,
                "waba_id": message.waba_id,
                "workspace_id": event.workspace_id,
                "key": event_key(message.phone_number_id or "", message.wa_id, message.user_id),
                "type": message.type,
                "mime_type": media.mime_type,
                "filename": media.filename,
                "received_at": message.timestamp,
                "storage_id": inbound_storage_id(media.media_id),
                "state": "pending",
                "attempts": 0,
                "next_at": now,
                "published": False,
                "created_at": now,
            }},
            upsert=True,
        )
        return result.upserted_id is not None

    async def claim_due(self, now: datetime, lease_s: float) -> Document | None:
        """Takes the next due job and pushes its time out by the lease, so no other worker takes it."""
        return await self.jobs.find_one_and_update(
            {"published": False, "next_at": {"$lte": now}},
            {"$set": {"next_at": now + timedelta(seconds=lease_s)}},
            sort=[("next_at", ASCENDING)],
            return_document=ReturnDocument.AFTER,
        )

    async def get(self, media_id: str) -> Document | None:
        return await self.jobs.find_one({"_id": media_id})

    async def retry_later(self, media_id: str, attempts: int, next_at: datetime, error: str) -> None:
        await self.jobs.update_one({"_id": media_id}, {"$set": {
            "attempts": attempts, "next_at": next_at, "last_error": error, "updated_at": utcnow()}})

    async def finish(self, media_id: str, state: str, attempts: int, outcome: Event) -> None:
        await self.jobs.update_one({"_id": media_id}, {"$set": {
            "state": state, "attempts": attempts, "updated_at": utcnow(),
            "outcome_event": json.loads(outcome.model_dump_json()),
        }})

    async def mark_published(self, media_id: str) -> None:
        await self.jobs.update_one({"_id": media_id}, {"$set": {"published": True, "published_at": utcnow()}})


class MediaFetcher:
    """Works through due media jobs; one job at a time per worker (downloads are the slow part)."""

    LEASE_S = 120.0

    def __init__(self, store: IngestStore, graph: GraphClient, media_store: MediaStore, broker: KafkaBroker,
                 settings: IngestSettings, *, events_topic: Topic | str = WHATSAPP_EVENTS) -> None:
        self.store = store
        self.graph = graph
        self.media_store = media_store
        self.broker = broker
        self.settings = settings
        self.events_topic = events_topic
        self.jobs = MediaJobs(store.db)

    async def run_once(self) -> int:
        """Processes every job due now; returns how many were handled."""
        handled = 0
        while (job := await self.jobs.claim_due(utcnow(), self.LEASE_S)) is not None:
            await self.process(job)
            handled += 1
        return handled

    async def process(self, job: Document) -> None:
        media_id = str(job["_id"])
        if job.get("outcome_event"):
            await self._publish(job, Event.model_validate(job["outcome_event"]))
            return
        attempts = int(job.get("attempts") or 0)
        now = utcnow()
        received_at = job.get("received_at")
        if isinstance(received_at, datetime) and media_expired(received_at, now):
            await self._unavailable(job, attempts, "Meta's 7-day retention of the media has passed")
            return
        channel = await self.store.get_channel(job.get("phone_number_id") or "")
        if channel is None:
            await self._unavailable(job, attempts, "the number is not connected")
            return
        storage_id = str(job.get("storage_id") or inbound_storage_id(media_id))
        stored = await self.media_store.info(storage_id)
        if stored is None:
            attempts += 1
            kind = str(job.get("type") or "") or None
            limit = inbound_limit(kind)
            try:
                info = await self.graph.media_info(media_id, channel.access_token)
                url = info.get("url")
                if not isinstance(url, str) or not url:
                    raise GraphError(200, MetaError(title="no media URL", message="Meta's answer has no media URL"))
                announced = info.get("file_size")
                if isinstance(announced, int) and announced > limit:
                    await self._unavailable(job, attempts, oversize_reason(kind, announced, limit))
                    return
                async with self.graph.download(url, channel.access_token) as download:
                    mime_type = str(info.get("mime_type") or job.get("mime_type") or download.content_type
                                    or "application/octet-stream")
                    if download.length is not None and download.length > limit:
                        await self._unavailable(job, attempts, oversize_reason(kind, download.length, limit))
                        return
                    # Into GridFS as it arrives, never whole in memory; past the limit the download stops.
                    stored = await self.media_store.write(
                        download.chunks(), mime_type, job.get("filename") or None, storage_id=storage_id,
                        max_bytes=limit, too_large=oversize_reason(kind, None, limit),
                        metadata={"source": "whatsapp", "media_id": media_id, "wamid": job.get("wamid"),
                                  "phone_number_id": job.get("phone_number_id"),
                                  "meta_sha256": info.get("sha256")},
                    )
            except MediaTooLarge as exc:
                await self._unavailable(job, attempts, exc.message)
                return
            except GraphError as exc:
                gone = exc.status == 404 or exc.error.code == 100
                if gone or attempts >= self.settings.media_max_attempts:
                    reason = "Meta does not know the media id" if gone else f"download failed {attempts} times"
                    await self._unavailable(job, attempts, f"{reason}: {exc}")
                else:
                    next_at = media_retry_at(now, attempts, base_s=self.settings.media_retry_base_s,
                                             max_s=self.settings.media_retry_max_s)
                    log.warning("media %s: attempt %d failed (%s), next at %s", media_id, attempts, exc,
                                next_at.isoformat())
                    await self.jobs.retry_later(media_id, attempts, next_at, str(exc)[:500])
                return
        payload = MediaStored(
            media_id=media_id, storage_id=stored.storage_id, mime_type=stored.mime_type, size=stored.size,
            sha256=stored.sha256, wamid=job.get("wamid"), phone_number_id=job.get("phone_number_id"),
        )
        await self._finish(job, "stored", attempts, payload)

    async def _unavailable(self, job: Document, attempts: int, reason: str) -> None:
        log.warning("media %s unavailable: %s", job["_id"], reason)
        payload = MediaUnavailable(media_id=str(job["_id"]), wamid=job.get("wamid"), reason=reason[:1000],
                                   phone_number_id=job.get("phone_number_id"), attempts=attempts)
        await self._finish(job, "unavailable", attempts, payload)

    async def _finish(self, job: Document, state: str, attempts: int,
                      payload: MediaStored | MediaUnavailable) -> None:
        media_id = str(job["_id"])
        event = Event.of(payload, workspace_id=job.get("workspace_id"), id=media_event_id(media_id))
        await self.jobs.finish(media_id, state, attempts, event)
        await self._publish(job, event)

    async def _publish(self, job: Document, event: Event) -> None:
        await publish(self.broker, self.events_topic, str(job.get("key") or job["_id"]), event)
        await self.jobs.mark_published(str(job["_id"]))


async def media_retry_loop(store: IngestStore, graph: GraphClient, media_store: MediaStore, broker: KafkaBroker,
                           settings: IngestSettings, *, events_topic: Topic | str = WHATSAPP_EVENTS) -> None:
    """Fetches due media jobs forever (wrap in a TaskComponent); errors are logged, never fatal."""
    fetcher = MediaFetcher(store, graph, media_store, broker, settings, events_topic=events_topic)
    indexed = False
    while True:
        try:
            if not indexed:
                await fetcher.jobs.ensure_indexes()
                indexed = True
            await fetcher.run_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            # Database or broker away: the claimed job's lease runs out and it is taken again.
            log.exception("media loop failed; trying again")
        await asyncio.sleep(settings.media_poll_interval_s)
