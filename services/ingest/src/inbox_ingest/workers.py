"""Background loops of ingest that are not Kafka consumers."""

from __future__ import annotations

import asyncio
import logging

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
