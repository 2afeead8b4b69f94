"""Webhook dedupe under load: webhooks that arrive while a dedupe query runs share the next one, and each
still learns exactly which of its own ids are new (against the real database)."""

import asyncio
import uuid
from typing import Any

from pymongo import AsyncMongoClient

from inbox_core.mongo import service_database
from inbox_core.settings import InboxSettings
from inbox_ingest.store import IngestStore
from inbox_testkit.commands import DatabaseCommands
from inbox_testkit.infra import Infra


async def test_concurrent_webhooks_share_dedupe_queries_and_each_gets_its_own_answer(infra: Infra) -> None:
    settings = InboxSettings(db_prefix=f"t{uuid.uuid4().hex[:10]}")
    finds = DatabaseCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, tz_aware=True,
                                                                event_listeners=[finds])
    store = IngestStore(service_database(client, settings, "ingest"))
    try:
        await store.mark_seen([f"ev-{n}-a" for n in range(0, 60, 3)], days=1)  # every third webhook's first id
        bodies = [[f"ev-{n}-a", f"ev-{n}-b"] for n in range(60)]
        answers = await asyncio.gather(*(store.unseen(ids) for ids in bodies))
        for n, (ids, fresh) in enumerate(zip(bodies, answers, strict=True)):
            assert fresh == ({ids[1]} if n % 3 == 0 else set(ids)), n
        assert 1 <= finds.count("find", "seen_events") <= 2  # the first query, then one for all that arrived meanwhile
        # More ids waiting than one query asks: split, still one answer each.
        class SmallQueries(IngestStore):
            SEEN_QUERY_IDS = 10

        small = SmallQueries(store.db)
        finds.clear()
        answers = await asyncio.gather(*(small.unseen(ids) for ids in bodies))
        assert [len(a) for a in answers] == [1 if n % 3 == 0 else 2 for n in range(60)]
        assert 6 <= finds.count("find", "seen_events") <= 13
    finally:
        await client.drop_database(store.db.name)
        await client.close()
