"""Inserts made at once go to the database together (inbox_core.inserts), on the real database: each
caller learns its own document's fate (inserted, a duplicate by _id or by another unique key, or its own
error), and concurrent inserts share a few insert commands."""

import asyncio
import uuid
from typing import Any

import pytest
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.errors import WriteError

from inbox_core.inserts import Inserts
from inbox_testkit.commands import DatabaseCommands
from inbox_testkit.infra import Infra


async def test_concurrent_inserts_share_commands_and_each_gets_its_own_answer(infra: Infra) -> None:
    commands = DatabaseCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, event_listeners=[commands])
    db = client[f"t{uuid.uuid4().hex[:10]}_inserts"]
    try:
        items = db["items"]
        await items.create_index([("wamid", ASCENDING)], unique=True, sparse=True, name="by_wamid")
        await items.insert_many([{"_id": f"old-{n}", "wamid": f"w-old-{n}"} for n in range(5)])
        inserts = Inserts(items, max_documents=20)
        docs = ([{"_id": f"new-{n}", "wamid": f"w-new-{n}"} for n in range(40)]
                + [{"_id": f"old-{n}"} for n in range(5)]  # the same _id
                + [{"_id": f"other-{n}", "wamid": f"w-old-{n}"} for n in range(5)])  # the same wamid
        commands.clear()
        answers = await asyncio.gather(*(inserts.insert(d) for d in docs))
        assert answers == [True] * 40 + [False] * 10
        assert 2 <= commands.count("insert") <= 4  # the first alone, then the rest 20 at a time
        assert await items.count_documents({}) == 45

        # One document the database refuses (nested arrays: FerretDB; a field name with a $ prefix: both
        # refuse one or the other) fails its own caller only.
        bad = {"_id": "bad", "a": [[1, 2]], "$bad": 1}
        good = [inserts.insert({"_id": f"late-{n}"}) for n in range(3)]
        results = await asyncio.gather(inserts.insert(bad), *good, return_exceptions=True)
        assert isinstance(results[0], WriteError)
        assert results[1:] == [True, True, True]
        assert await items.find_one({"_id": "bad"}) is None
    finally:
        await client.drop_database(db.name)
        await client.close()


async def test_a_failed_command_reaches_every_caller(infra: Infra) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, serverSelectionTimeoutMS=300)
    await client.close()  # every command now fails as a whole
    inserts = Inserts(client["x"]["y"])
    results = await asyncio.gather(*(inserts.insert({"_id": n}) for n in range(3)), return_exceptions=True)
    assert all(isinstance(r, Exception) and not isinstance(r, WriteError) for r in results)
    with pytest.raises(Exception):  # noqa: B017 - whatever PyMongo raises for a closed client
        await inserts.insert({"_id": 9})
