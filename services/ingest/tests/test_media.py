"""Media: the GridFS store on the real database, inbound media jobs, fetching from the sandbox Graph API."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from inbox_core.errors import NotFound
from inbox_core.events import Event, utcnow
from inbox_core.events.whatsapp import Media, MediaStored, MediaUnavailable, MessageReceived
from inbox_ingest.media import MediaFetcher, MediaJobs, MediaStore, MediaTooLarge


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


async def test_write_stores_chunks_as_they_arrive_and_stops_past_its_limit(ingest_db: Any) -> None:
    store = MediaStore(ingest_db, chunk_size=64 * 1024)
    sid = f"up-{uuid.uuid4().hex}"
    halfway = asyncio.Event()
    go_on = asyncio.Event()
    pieces = [os.urandom(200_000) for _ in range(12)]  # 2.4 MB in pieces that straddle chunk boundaries

    async def body() -> AsyncIterator[bytes]:
        for n, piece in enumerate(pieces):
            if n == 8:
                halfway.set()
                await go_on.wait()
            yield piece

    writing = asyncio.create_task(store.write(body(), "application/pdf", "big.pdf", storage_id=sid))
    await asyncio.wait_for(halfway.wait(), 30)
    # In the database before the body has ended (streamed, not collected), and not yet a file.
    assert await store.chunks.count_documents({"files_id": sid}) >= 16  # a batch of 1 MiB at least
    assert await store.info(sid) is None
    assert await store.partial.find_one({"_id": sid}) is not None, "an upload in progress is marked"
    go_on.set()
    stored = await writing
    data = b"".join(pieces)
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (await store.get(sid))[1] == data
    assert await store.partial.find_one({"_id": sid}) is None

    read = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal read
        while True:
            read += 1
            yield b"x" * 100_000

    too_big = f"up-{uuid.uuid4().hex}"
    with pytest.raises(MediaTooLarge) as refused:
        await store.write(endless(), "text/plain", storage_id=too_big, max_bytes=1_000_000,
                          too_large="over the limit")
    assert refused.value.message == "over the limit" and refused.value.http_status == 413
    assert read == 11, "it stops reading at the limit"
    assert await store.chunks.count_documents({"files_id": too_big}) == 0, "nothing of it is kept"
    assert await store.info(too_big) is None and await store.partial.find_one({"_id": too_big}) is None


def _message(media_id: str | None, *, type_: str = "image", pnid: str = "pn-x",
             sent_at: datetime | None = None, mime_type: str = "image/png") -> Event:
    payload = MessageReceived(
        wamid=f"wamid.{uuid.uuid4().hex}", waba_id="waba-x", phone_number_id=pnid, wa_id="15550001111",
        timestamp=sent_at or utcnow(), type=type_,
        media=Media(media_id=media_id, mime_type=mime_type) if media_id is not None else None,
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


async def test_inbound_media_over_metas_limit_for_its_type_is_unavailable_with_the_reason(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    # A 6 MB file sent as an image (Meta's image limit is 5 MB), and a 600 KB sticker (500 KB).
    oversize = {
        "image": await sandbox.upload(ingest_env.channel, b"%PDF" + os.urandom(6 * 1024 * 1024), "application/pdf"),
        "sticker": await sandbox.upload(ingest_env.channel, b"%PDF" + os.urandom(600 * 1024), "application/pdf"),
    }
    jobs = MediaJobs(ingest_env.db)
    for kind, media_id in oversize.items():
        assert await jobs.record(_message(media_id, type_=kind, pnid=ingest_env.channel.phone_number_id))
    fetcher = MediaFetcher(ingest_env.store, ingest_env.graph, ingest_env.media_store, ingest_env.broker,
                           ingest_env.settings, events_topic=events_topic)
    assert await fetcher.run_once() == 2

    for kind, limit in (("image", "5 MB"), ("sticker", "500 KB")):
        media_id = oversize[kind]
        [event] = await collect(events_topic, lambda e, m=media_id: e.type == "whatsapp.media.unavailable"
                                and e.data.get("media_id") == m)
        reason = event.payload(MediaUnavailable).reason
        assert f"larger than Meta's limit for {kind} files, {limit}" in reason, reason
        job = await jobs.get(media_id)
        assert job is not None and job["state"] == "unavailable" and job["attempts"] == 1, "refused, not retried"
        assert await ingest_env.media_store.info(f"wa-media-{media_id}") is None
        assert await ingest_env.media_store.chunks.count_documents({"files_id": f"wa-media-{media_id}"}) == 0


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


async def test_files_written_by_a_gridfs_driver_are_read_too(ingest_db: Any) -> None:
    # Files stored before chunks had derived ids (PyMongo's GridIn gives them ObjectIds) stay readable.
    store = MediaStore(ingest_db, chunk_size=64 * 1024)
    data = os.urandom(200_000)
    sid = f"up-{uuid.uuid4().hex}"
    await store.bucket.upload_from_stream_with_id(sid, "old.pdf", data, metadata={"mime_type": "application/pdf"})
    stored, chunks = await store.open(sid)
    assert b"".join([c async for c in chunks]) == data and stored.size == len(data)
