"""Background loops of ingest that are not Kafka consumers."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from inbox_core.events import utcnow
from inbox_ingest.store import IngestStore

log = logging.getLogger("inbox.ingest.workers")


async def purge_seen_loop(store: IngestStore, every_s: float = 3600.0) -> None:
    """Forgets webhook event ids past the dedupe window (no TTL index: FerretDB has none)."""
    while True:
        try:
            purged = await store.purge_seen()
            if purged:
                log.info("purged %d expired webhook ids", purged)
        except Exception as exc:
            log.warning("purge of webhook ids failed: %r", exc)
        await asyncio.sleep(every_s)


async def purge_unrouted_loop(store: IngestStore, retention: timedelta, every_s: float = 600.0,
                              batch: int = 500) -> None:
    """Expires unrouted events older than ``retention``, ``batch`` at a time (no TTL index: FerretDB)."""
    while True:
        try:
            purged = 0
            while (deleted := await store.purge_unrouted(utcnow() - retention, batch)) > 0:
                purged += deleted
                if deleted < batch:
                    break
            if purged:
                log.info("expired %d unrouted events", purged)
        except Exception as exc:
            log.warning("expiry of unrouted events failed: %r", exc)
        await asyncio.sleep(every_s)
