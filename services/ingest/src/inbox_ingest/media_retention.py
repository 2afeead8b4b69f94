"""Retention of media: what ingest stores and nothing refers to any more is purged, a bounded batch a round.

- finished media jobs (``media_jobs`` whose outcome was published) older than
  ``INGEST_MEDIA_JOB_RETENTION_DAYS``: the job only dedupes a redelivered message event, and a job made
  again for one finds its file stored and publishes the same outcome (same event id);
- unsent uploads: an agent's upload never sent to Meta (``metadata.sent_at``, set by the sender) nor kept
  by a library item (``metadata.kept_at``, set by ``KeepMedia``), older than
  ``INGEST_UNSENT_UPLOAD_RETENTION_DAYS``. Files from customers (``source: whatsapp``) are messages and stay;
- partial uploads: chunks of an upload that never finished (a crash mid-write; ``media.partial``),
  older than ``INGEST_PARTIAL_UPLOAD_RETENTION_HOURS``.

No TTL index (FerretDB has none): a loop deletes by date, at most ``INGEST_MEDIA_RETENTION_BATCH`` of
each kind per round; a full batch means more is due, so the next round follows at once.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from inbox_core.events import utcnow
from inbox_ingest.domain.media import retention_cutoff
from inbox_ingest.media import MediaStore
from inbox_ingest.settings import IngestSettings

log = logging.getLogger("inbox.ingest.media_retention")

# Between rounds when the last one had a full batch (more is due).
_CATCH_UP_PAUSE_S = 1.0


@dataclass(frozen=True)
class Purged:
    jobs: int = 0
    uploads: int = 0
    partial: int = 0

    @property
    def total(self) -> int:
        return self.jobs + self.uploads + self.partial


class MediaRetention:
    def __init__(self, media: MediaStore, settings: IngestSettings) -> None:
        self.media = media
        self.jobs = media.db["media_jobs"]
        self.settings = settings

    async def run_once(self, now: datetime | None = None) -> Purged:
        """One round: up to a batch of each kind; returns how many of each went."""
        now = now or utcnow()
        s = self.settings
        await self.media.ensure_indexes()
        return Purged(
            jobs=await self.purge_finished_jobs(retention_cutoff(now, s.media_job_retention_days)),
            uploads=await self.purge_unsent_uploads(retention_cutoff(now, s.unsent_upload_retention_days)),
            partial=await self.purge_partial_uploads(now - timedelta(hours=s.partial_upload_retention_hours)),
        )

    async def purge_finished_jobs(self, before: datetime) -> int:
        docs = self.jobs.find({"published": True, "published_at": {"$lt": before}}, {"_id": 1})
        ids = [d["_id"] async for d in docs.limit(self.settings.media_retention_batch)]
        if not ids:
            return 0
        result = await self.jobs.delete_many({"_id": {"$in": ids}, "published": True})
        return int(result.deleted_count)

    async def purge_unsent_uploads(self, before: datetime) -> int:
        query = {"uploadDate": {"$lt": before}, "metadata.source": {"$ne": "whatsapp"},
                 "metadata.sent_at": {"$exists": False}, "metadata.kept_at": {"$exists": False}}
        docs = self.media.files.find(query, {"_id": 1}).limit(self.settings.media_retention_batch)
        ids = [str(d["_id"]) async for d in docs]
        for storage_id in ids:
            await self.media.delete(storage_id)
        return len(ids)

    async def purge_partial_uploads(self, before: datetime) -> int:
        docs = self.media.partial.find({"started_at": {"$lt": before}}, {"_id": 1})
        ids = [str(d["_id"]) async for d in docs.limit(self.settings.media_retention_batch)]
        for storage_id in ids:
            if await self.media.files.find_one({"_id": storage_id}, {"_id": 1}) is None:
                await self.media.chunks.delete_many({"files_id": storage_id})
            await self.media.partial.delete_one({"_id": storage_id})  # finished after all: only the marker
        return len(ids)


async def media_retention_loop(retention: MediaRetention, settings: IngestSettings) -> None:
    """Purges forever (wrap in a TaskComponent); errors are logged, the next round tries again."""
    while True:
        pause = settings.media_retention_interval_s
        try:
            purged = await retention.run_once()
            if purged.total:
                log.info("purged %d finished media jobs, %d unsent uploads, %d partial uploads",
                         purged.jobs, purged.uploads, purged.partial)
            if max(purged.jobs, purged.uploads, purged.partial) >= settings.media_retention_batch:
                pause = _CATCH_UP_PAUSE_S
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away: the next round
            log.warning("media retention round failed: %r", exc)
        await asyncio.sleep(pause)
