"""PyMongo's async API against the real database server: round trip, compound index, keyset paging."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient

from inbox_core.errors import InvalidRequest
from inbox_core.mongo import Index, decode_cursor, encode_cursor, ensure_indexes, service_database
from inbox_core.settings import InboxSettings


async def test_round_trip_index_and_keyset_paging(
    mongo_client: AsyncMongoClient[dict[str, Any]], inbox_settings: InboxSettings
) -> None:
    db = service_database(mongo_client, inbox_settings, "core_test")
    coll = db["conversations"]
    await ensure_indexes(coll, [Index([("workspace_id", ASCENDING), ("updated_at", DESCENDING), ("_id", DESCENDING)],
                                      "workspace_recent")])
    names = {ix["name"] for ix in await (await coll.list_indexes()).to_list()}
    assert "workspace_recent" in names

    base = datetime(2026, 1, 1, tzinfo=UTC)
    # Ties on updated_at on purpose: the _id breaks them, so no page skips or repeats one.
    docs = [{"_id": f"c{i:03d}", "workspace_id": "w1", "updated_at": base + timedelta(minutes=i // 3)}
            for i in range(50)]
    docs += [{"_id": f"x{i:03d}", "workspace_id": "w2", "updated_at": base} for i in range(5)]
    await coll.insert_many(docs)
    got = await coll.find_one({"_id": "c007"})
    assert got is not None and got["updated_at"] == docs[7]["updated_at"]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        query: dict[str, Any] = {"workspace_id": "w1"}
        if cursor:
            at, last_id = decode_cursor(cursor, 2)
            query["$or"] = [{"updated_at": {"$lt": at}}, {"updated_at": at, "_id": {"$lt": last_id}}]
        page = await coll.find(query).sort([("updated_at", DESCENDING), ("_id", DESCENDING)]).limit(7).to_list()
        seen += [d["_id"] for d in page]
        if len(page) < 7:
            break
        cursor = encode_cursor([page[-1]["updated_at"], page[-1]["_id"]])
    expected = [d["_id"] for d in sorted(docs[:50], key=lambda d: (d["updated_at"], d["_id"]), reverse=True)]
    assert seen == expected


def test_bad_cursor_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest):
        decode_cursor("not-a-cursor!!", 2)
    with pytest.raises(InvalidRequest):
        decode_cursor(encode_cursor([1, 2, 3]), 2)
