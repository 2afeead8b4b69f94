"""Media retention on the real database: old finished jobs, unsent uploads and partial uploads go; recent
ones, unfinished jobs, sent or kept uploads and customers' files stay; a round is bounded."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from inbox_core.events import utcnow
from inbox_ingest.media import MediaStore
from inbox_ingest.media_retention import MediaRetention
from inbox_ingest.settings import IngestSettings

SETTINGS = dict(meta_app_secret="s", meta_verify_token="t", media_job_retention_days=14,
                unsent_upload_retention_days=30, partial_upload_retention_hours=24, media_retention_batch=500)


def _settings(**overrides: Any) -> IngestSettings:
    return IngestSettings.model_validate({**SETTINGS, **overrides})


def _store(db: Any) -> MediaStore:
    # A bucket of its own per test: the counts of a round are this test's alone.
    return MediaStore(db, bucket=f"media_{uuid.uuid4().hex[:8]}", chunk_size=1024)


async def _aged(store: MediaStore, days: float, **metadata: Any) -> str:
    storage_id = await store.put(b"%PDF" + uuid.uuid4().bytes * 300, "application/pdf",
                                 metadata={"workspace_id": "ws-r", **metadata})
    await store.files.update_one({"_id": storage_id}, {"$set": {"uploadDate": utcnow() - timedelta(days=days)}})
    return storage_id


async def test_old_unsent_uploads_go_recent_sent_kept_and_customers_files_stay(ingest_db: Any) -> None:
    store = _store(ingest_db)
    old_unsent = await _aged(store, 31, source="upload")
    from_before_sources = await _aged(store, 31)  # stored before uploads named their source
    recent_unsent = await _aged(store, 29, source="upload")
    old_sent = await _aged(store, 31, source="upload")
    await store.mark_sent(old_sent)
    old_kept = await _aged(store, 31, source="upload")
    await store.mark_kept(old_kept)
    customers = await _aged(store, 400, source="whatsapp", media_id="m-1")

    purged = await MediaRetention(store, _settings()).run_once()

    assert purged.uploads == 2
    for gone in (old_unsent, from_before_sources):
        assert await store.info(gone) is None
        assert await store.chunks.count_documents({"files_id": gone}) == 0, "its chunks go with it"
    for kept in (recent_unsent, old_sent, old_kept, customers):
        stored, data = await store.get(kept)
        assert stored.size == len(data) > 0
    assert (await MediaRetention(store, _settings()).run_once()).uploads == 0


async def test_finished_jobs_go_after_their_days_unfinished_and_recent_ones_stay(ingest_db: Any) -> None:
    store = _store(ingest_db)
    jobs = ingest_db["media_jobs"]
    now = utcnow()
    tag = uuid.uuid4().hex
    docs = {
        "old_finished": {"published": True, "published_at": now - timedelta(days=15), "state": "stored"},
        "recent_finished": {"published": True, "published_at": now - timedelta(days=13), "state": "stored"},
        "old_unpublished": {"published": False, "next_at": now - timedelta(days=20), "state": "stored",
                            "created_at": now - timedelta(days=20)},
    }
    await jobs.insert_many([{"_id": f"{tag}-{name}", **doc} for name, doc in docs.items()])

    await MediaRetention(store, _settings()).run_once()

    left = {d["_id"].removeprefix(f"{tag}-") async for d in jobs.find({"_id": {"$regex": f"^{tag}-"}})}
    assert left == {"recent_finished", "old_unpublished"}


async def test_partial_uploads_left_by_a_crash_are_purged_after_their_hours(ingest_db: Any) -> None:
    store = _store(ingest_db)
    now = utcnow()
    # What a process killed mid-upload leaves: chunks and the in-progress mark, no files document.
    for sid, hours in (("up-crashed-old", 25), ("up-crashed-recent", 1)):
        await store.chunks.insert_many([{"files_id": sid, "n": n, "data": b"x" * 1024} for n in range(3)])
        await store.partial.insert_one({"_id": sid, "started_at": now - timedelta(hours=hours)})
    finished = await store.put(b"whole", "text/plain")
    # A mark whose removal failed after the file was written: only the mark goes.
    await store.partial.insert_one({"_id": finished, "started_at": now - timedelta(hours=30)})

    purged = await MediaRetention(store, _settings()).run_once()

    assert purged.partial == 2
    assert await store.chunks.count_documents({"files_id": "up-crashed-old"}) == 0
    assert await store.chunks.count_documents({"files_id": "up-crashed-recent"}) == 3
    assert await store.partial.find_one({"_id": "up-crashed-recent"}) is not None
    assert (await store.get(finished))[1] == b"whole"
    assert await store.partial.find_one({"_id": finished}) is None


async def test_a_round_purges_at_most_a_batch(ingest_db: Any) -> None:
    store = _store(ingest_db)
    old = [await _aged(store, 40, source="upload") for _ in range(5)]
    retention = MediaRetention(store, _settings(media_retention_batch=2))

    rounds = [(await retention.run_once()).uploads for _ in range(4)]

    assert rounds == [2, 2, 1, 0]
    assert [await store.info(sid) for sid in old] == [None] * 5
