"""PyMongo's async API against the real database server: round trip, compound index, keyset paging."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient

from inbox_core.errors import InvalidRequest
from inbox_core.mongo import Index, decode_cursor, encode_cursor, ensure_indexes, service_database
from inbox_core.settings import InboxSettings
from inbox_testkit.infra import Infra


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


async def test_single_document_updates_are_atomic_across_clients(infra: Infra, inbox_settings: InboxSettings) -> None:
    """What the services rely on from MongoDB: concurrent updates of one document from several
    connections (several processes in production) never lose each other's changes: each $inc counts,
    a conditional update has one winner, and $set of one field keeps the others' fields."""
    clients: list[AsyncMongoClient[dict[str, Any]]] = [AsyncMongoClient(infra.mongo_url, tz_aware=True)
                                                       for _ in range(4)]
    try:
        colls = [service_database(c, inbox_settings, "core_atomic")["counters"] for c in clients]
        await colls[0].insert_one({"_id": "c", "n": 0, "claimed_by": None})
        rounds = 50

        async def increment(k: int) -> None:
            for i in range(rounds):
                await colls[k].update_one({"_id": "c"}, {"$inc": {"n": 1}, "$set": {f"field_{k}_{i}": True}})

        async def claim(k: int) -> bool:
            result = await colls[k].update_one({"_id": "c", "claimed_by": None}, {"$set": {"claimed_by": k}})
            return result.modified_count == 1

        await asyncio.gather(*(increment(k) for k in range(len(colls))))
        wins = await asyncio.gather(*(claim(k) for k in range(len(colls))))
        doc = await colls[0].find_one({"_id": "c"})
        assert doc is not None
        fields = sum(1 for key in doc if key.startswith("field_"))
        print(f"{len(colls)} clients x {rounds} updates: n = {doc['n']}, fields {fields}, claim winners {sum(wins)}")
        assert doc["n"] == len(colls) * rounds
        assert fields == len(colls) * rounds
        assert sum(wins) == 1 and doc["claimed_by"] == wins.index(True)
    finally:
        for client in clients:
            await client.close()


async def test_filters_naming_ids_among_other_conditions_match_exactly(
    mongo_client: AsyncMongoClient[dict[str, Any]], inbox_settings: InboxSettings
) -> None:
    """An _id equality or $in list beside other conditions (our FerretDB build reads only those rows, as
    MongoDB's _id index does) still matches by the whole filter, in finds, updates and deletes."""
    coll = service_database(mongo_client, inbox_settings, "core_ids")["things"]
    await coll.insert_many([{"_id": f"t{i}", "n": i, "even": i % 2 == 0} for i in range(10)])
    some = [f"t{i}" for i in (1, 2, 3, 4, 99)]
    found = await coll.find({"_id": {"$in": some}, "even": True}).sort("_id", ASCENDING).to_list()
    assert [d["_id"] for d in found] == ["t2", "t4"]
    assert await coll.find_one({"_id": "t3", "even": True}) is None
    assert (await coll.find_one({"_id": "t3", "n": {"$gt": 2}}) or {}).get("n") == 3
    assert await coll.count_documents({"_id": {"$in": some}, "n": {"$lt": 3}}) == 2
    updated = await coll.update_many({"_id": {"$in": some}, "even": False}, {"$set": {"seen": True}})
    assert updated.modified_count == 2
    assert sorted(d["_id"] for d in await coll.find({"seen": True}).to_list()) == ["t1", "t3"]
    deleted = await coll.delete_many({"_id": {"$in": some}, "n": {"$gte": 3}})
    assert deleted.deleted_count == 2
    assert await coll.count_documents({}) == 8


def test_timeouts_and_lost_connections_are_the_database_being_unavailable_other_errors_are_not() -> None:
    from pymongo.errors import (
        AutoReconnect,
        DuplicateKeyError,
        ExecutionTimeout,
        NetworkTimeout,
        OperationFailure,
        ServerSelectionTimeoutError,
    )

    from inbox_core.grpc_server import dependency_unavailable
    from inbox_core.kafka import is_transient
    from inbox_core.mongo import database_unavailable

    away = [ExecutionTimeout("operation exceeded time limit", 50), NetworkTimeout("timed out"),
            ServerSelectionTimeoutError("no server"), AutoReconnect("connection reset")]
    bugs = [OperationFailure("bad query", 2), DuplicateKeyError("E11000", 11000)]
    assert [database_unavailable(e) for e in away] == [True] * 4
    assert [database_unavailable(e) for e in bugs] == [False] * 2
    # The same answer for gRPC (UNAVAILABLE, not INTERNAL) and for consumers (retry, not dead-letter).
    assert all(dependency_unavailable(e) and is_transient(e) for e in away)
    assert not any(dependency_unavailable(e) or is_transient(e) for e in bugs)
