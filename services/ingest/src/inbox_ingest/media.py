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
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pymongo
from faststream.kafka import KafkaBroker
from gridfs import AsyncGridFSBucket
from gridfs.errors import FileExists, NoFile
from pydantic import ValidationError
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.errors import NotFound
from inbox_core.events import Event, utcnow
from inbox_core.events.whatsapp import MEDIA_TYPES, MediaStored, MediaUnavailable, MessageReceived, MetaError
from inbox_core.kafka import publish
from inbox_core.mongo import Document, Index, ensure_indexes
from inbox_core.topics import WHATSAPP_EVENTS, Topic
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


# How long one whole file may take to be written to GridFS.
FILE_TIMEOUT_S = 300.0


class MediaStore:
    """Files in GridFS under string ids; ``put`` with a given id is idempotent."""

    BUCKET = "media"

    def __init__(self, db: AsyncDatabase[Document], *, bucket: str = BUCKET, chunk_size: int = 255 * 1024) -> None:
        self.db = db
        self.bucket_name = bucket
        self.bucket = AsyncGridFSBucket(db, bucket_name=bucket, chunk_size_bytes=chunk_size)
        self.files = db[f"{bucket}.files"]
        self.chunks = db[f"{bucket}.chunks"]

    async def put(self, data: bytes, mime_type: str, filename: str | None = None, *,
                  storage_id: str | None = None, metadata: dict[str, Any] | None = None) -> str:
        """Stores ``data`` and returns its storage id (a new one unless ``storage_id`` is given).

        With a ``storage_id`` that is already stored, nothing is written again.
        """
        sid = storage_id or f"up-{uuid.uuid4().hex}"
        if storage_id is not None:
            if await self.files.find_one({"_id": sid}, {"_id": 1}):
                return sid
            # Chunks left by a crash in the middle of an earlier upload would clash with the new ones.
            await self.chunks.delete_many({"files_id": sid})
        meta = dict(metadata or {})
        meta.update({"mime_type": mime_type, "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)})
        # FileExists: stored meanwhile by a concurrent worker (same id, same content).
        # The client's per-operation timeout (INBOX_MONGO_TIMEOUT_MS) would bound the whole upload, which
        # GridFS counts as one operation: a file of up to 100 MB gets a deadline of its own.
        with contextlib.suppress(FileExists), pymongo.timeout(FILE_TIMEOUT_S):
            await self.bucket.upload_from_stream_with_id(sid, filename or sid, data, metadata=meta)
        return sid

    async def info(self, storage_id: str) -> StoredMedia | None:
        doc = await self.files.find_one({"_id": storage_id})
        return _stored(doc) if doc else None

    async def get(self, storage_id: str) -> tuple[StoredMedia, bytes]:
        """The file whole; raises ``NotFound``."""
        stored, chunks = await self.open(storage_id)
        parts = [part async for part in chunks]
        return stored, b"".join(parts)

    async def open(self, storage_id: str) -> tuple[StoredMedia, AsyncIterator[bytes]]:
        """The file's metadata and an iterator over its chunks (for streaming); raises ``NotFound``."""
        try:
            stream = await self.bucket.open_download_stream(storage_id)
        except NoFile:
            raise NotFound("no such media", {"storage_id": storage_id}) from None
        doc = {"_id": storage_id, "length": stream.length, "filename": stream.filename,
               "uploadDate": stream.upload_date, "metadata": stream.metadata or {}}

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while True:
                    chunk = await stream.readchunk()
                    if not chunk:
                        return
                    yield chunk
            finally:
                await stream.close()

        return _stored(doc), chunks()

    async def delete(self, storage_id: str) -> None:
        with contextlib.suppress(NoFile):
            await self.bucket.delete(storage_id)


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
        await ensure_indexes(self.jobs, [Index([("published", ASCENDING), ("next_at", ASCENDING)], "due")])

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
            try:
                info = await self.graph.media_info(media_id, channel.access_token)
                url = info.get("url")
                if not isinstance(url, str) or not url:
                    raise GraphError(200, MetaError(title="no media URL", message="Meta's answer has no media URL"))
                data, content_type = await self.graph.download(url, channel.access_token)
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
            mime_type = str(info.get("mime_type") or job.get("mime_type") or content_type
                            or "application/octet-stream")
            await self.media_store.put(
                data, mime_type, job.get("filename") or None, storage_id=storage_id,
                metadata={"source": "whatsapp", "media_id": media_id, "wamid": job.get("wamid"),
                          "phone_number_id": job.get("phone_number_id"), "meta_sha256": info.get("sha256")},
            )
            stored = await self.media_store.info(storage_id)
            if stored is None:  # pragma: no cover - just written
                raise RuntimeError(f"media {media_id} vanished after storing")
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
