"""Unrouted events (of numbers no workspace has connected) expire: old ones go, recent ones stay, a bounded
batch a round (no TTL index: FerretDB has none)."""

import uuid
from datetime import timedelta
from typing import Any

from pymongo import AsyncMongoClient

from inbox_core.events import Event, utcnow
from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_ingest.store import IngestStore


async def test_old_unrouted_events_expire_and_recent_ones_stay(mongo_client: AsyncMongoClient[dict[str, Any]]) -> None:
    settings = InboxSettings(db_prefix=f"t{uuid.uuid4().hex[:10]}")
    store = IngestStore(service_database(mongo_client, settings, "ingest"))
    await store.ensure_indexes()
    try:
        events = [Event(type="whatsapp.message.received", data={"phone_number_id": f"pn-{i}"}) for i in range(5)]
        await store.record_unrouted([(f"pn-{i}:1", e) for i, e in enumerate(events)])
        now = utcnow()
        ages = [timedelta(days=40), timedelta(days=35), timedelta(days=31), timedelta(days=2), timedelta(0)]
        for event, age in zip(events, ages, strict=True):
            await store.unrouted.update_one({"_id": event.id}, {"$set": {"received_at": now - age}})

        assert await store.purge_unrouted(now - timedelta(days=30), limit=2) == 2  # bounded, oldest first
        assert {d["_id"] for d in await store.list_unrouted(10)} == {e.id for e in events[2:]}
        assert await store.purge_unrouted(now - timedelta(days=30), limit=2) == 1
        assert await store.purge_unrouted(now - timedelta(days=30), limit=2) == 0
        assert [d["_id"] for d in await store.list_unrouted(10)] == [events[4].id, events[3].id]
    finally:
        await mongo_client.drop_database(store.db.name)
