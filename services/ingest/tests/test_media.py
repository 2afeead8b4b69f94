"""Media: the GridFS store on the real database, inbound media jobs, fetching from the sandbox Graph API."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest

from inbox_core.errors import NotFound
from inbox_core.events import Event, utcnow
from inbox_core.events.whatsapp import Media, MediaStored, MediaUnavailable, MessageReceived
from inbox_ingest.media import MediaFetcher, MediaJobs, MediaStore


async def test_store_round_trip_streaming_and_idempotent_put(ingest_db: Any) -> None:
    store = MediaStore(ingest_db, chunk_size=64 * 1024)
    data = os.urandom(300_000)  # several chunks
    sid = await store.put(data, "application/pdf", "invoice.pdf")
    assert sid.startswith("up-")
    stored, whole = await store.get(sid)
    assert whole == data
    assert (stored.mime_type, stored.size, stored.filename) == ("application/pdf", len(data), "invoice.pdf")
    assert stored.sha256 == hashlib.sha256(data).hexdigest()

    info, chunks = await store.open(sid)
    parts = [c async for c in chunks]
    assert len(parts) > 1, "open() streams chunk by chunk"
    assert b"".join(parts) == data and info.size == len(data)

    # A given id is written once: a second put with other bytes leaves the first file.
    fixed = f"wa-media-{uuid.uuid4().hex}"
    assert await store.put(b"first", "image/jpeg", storage_id=fixed) == fixed
    assert await store.put(b"second", "image/jpeg", storage_id=fixed) == fixed
    assert (await store.get(fixed))[1] == b"first"

    with pytest.raises(NotFound):
        await store.get("no-such-file")
    assert await store.info("no-such-file") is None


async def test_put_after_a_crash_mid_upload_replaces_orphan_chunks(ingest_db: Any) -> None:
    store = MediaStore(ingest_db)
    sid = f"wa-media-{uuid.uuid4().hex}"
    # What a process killed mid-upload leaves: chunks without a files document.
    await store.chunks.insert_one({"files_id": sid, "n": 0, "data": b"partial"})
    await store.put(b"complete file", "image/png", storage_id=sid)
    assert (await store.get(sid))[1] == b"complete file"


def _message(media_id: str | None, *, type_: str = "image", pnid: str = "pn-x",
             sent_at: datetime | None = None) -> Event:
    payload = MessageReceived(
        wamid=f"wamid.{uuid.uuid4().hex}", waba_id="waba-x", phone_number_id=pnid, wa_id="15550001111",
        timestamp=sent_at or utcnow(), type=type_,
        media=Media(media_id=media_id, mime_type="image/png") if media_id is not None else None,
    )
    return Event.of(payload, workspace_id="ws-1")


async def test_jobs_recorded_once_per_media_id_and_only_for_media(ingest_db: Any) -> None:
    jobs = MediaJobs(ingest_db)
    media_id = uuid.uuid4().hex
    event = _message(media_id)
    assert await jobs.record(event) is True
    assert await jobs.record(event) is False, "a redelivered event does not make a second job"
    job = await jobs.get(media_id)
    assert job is not None
    assert job["storage_id"] == f"wa-media-{media_id}"
    assert job["key"] == "pn-x:15550001111"
    assert job["workspace_id"] == "ws-1"
    assert job["state"] == "pending" and job["published"] is False

    assert await jobs.record(_message(None, type_="text")) is False
    other = Event.of(MediaUnavailable(media_id="m", reason="x"))
    assert await jobs.record(other) is False


# The fetches against the sandbox: see the fixtures in conftest.py.


async def test_inbound_media_is_fetched_stored_and_published(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(2048)
    media_id = await sandbox.upload(ingest_env.channel, content, "image/png")
    event = _message(media_id, pnid=ingest_env.channel.phone_number_id)
    jobs = MediaJobs(ingest_env.db)
    assert await jobs.record(event)

    fetcher = MediaFetcher(ingest_env.store, ingest_env.graph, ingest_env.media_store, ingest_env.broker,
                           ingest_env.settings, events_topic=events_topic)
    assert await fetcher.run_once() == 1

    storage_id = f"wa-media-{media_id}"
    stored, data = await ingest_env.media_store.get(storage_id)
    assert data == content
    assert stored.mime_type == "image/png"

    published = await collect(events_topic, lambda e: e.type == "whatsapp.media.stored"
                              and e.data.get("media_id") == media_id)
    assert len(published) == 1
    out = published[0].payload(MediaStored)
    assert out.storage_id == storage_id
    assert out.size == len(content)
    assert out.wamid == event.data["wamid"]
    assert published[0].workspace_id == "ws-1"
    job = await jobs.get(media_id)
    assert job is not None and job["state"] == "stored" and job["published"] is True
    assert await fetcher.run_once() == 0, "a finished job is not fetched again"


async def test_failed_download_is_retried_with_backoff_then_unavailable(
    ingest_env: Any, events_topic: str, collect: Any, dead_graph: Any,
) -> None:
    settings = ingest_env.settings.model_copy(update={
        "media_max_attempts": 3, "media_retry_base_s": 0.2, "media_retry_max_s": 1.0})
    media_id = uuid.uuid4().hex
    jobs = MediaJobs(ingest_env.db)
    await jobs.record(_message(media_id, pnid=ingest_env.channel.phone_number_id))
    fetcher = MediaFetcher(ingest_env.store, dead_graph, ingest_env.media_store, ingest_env.broker, settings,
                           events_topic=events_topic)

    assert await fetcher.run_once() == 1
    job = await jobs.get(media_id)
    assert job is not None and job["attempts"] == 1 and job["state"] == "pending"
    first_retry = job["next_at"]
    assert await fetcher.run_once() == 0, "not due again before its backoff"

    attempts_seen = [1]
    deadline = asyncio.get_running_loop().time() + 15
    while asyncio.get_running_loop().time() < deadline:
        await fetcher.run_once()
        job = await jobs.get(media_id)
        assert job is not None
        if job["attempts"] != attempts_seen[-1]:
            attempts_seen.append(job["attempts"])
        if job["published"]:
            break
        await asyncio.sleep(0.05)
    assert job is not None and job["state"] == "unavailable"
    assert attempts_seen == [1, 2, 3]
    assert job["next_at"] > first_retry, "the backoff grows"

    published = await collect(events_topic, lambda e: e.type == "whatsapp.media.unavailable"
                              and e.data.get("media_id") == media_id)
    assert len(published) == 1
    out = published[0].payload(MediaUnavailable)
    assert out.attempts == 3
    assert "3 times" in out.reason


async def test_media_past_metas_retention_is_unavailable_without_a_call(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    media_id = await sandbox.upload(ingest_env.channel, b"old file", "image/png")
    jobs = MediaJobs(ingest_env.db)
    await jobs.record(_message(media_id, pnid=ingest_env.channel.phone_number_id,
                               sent_at=utcnow() - timedelta(days=8)))
    fetcher = MediaFetcher(ingest_env.store, ingest_env.graph, ingest_env.media_store, ingest_env.broker,
                           ingest_env.settings, events_topic=events_topic)
    assert await fetcher.run_once() == 1
    assert await sandbox.requests(f"/{media_id}", method="GET") == []
    published = await collect(events_topic, lambda e: e.data.get("media_id") == media_id)
    assert [e.type for e in published] == ["whatsapp.media.unavailable"]
    assert "7-day" in published[0].data["reason"]
