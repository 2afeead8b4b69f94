"""Our FerretDB build with index pushdown answers as it does with --test-disable-pushdown (where its
handler filters and sorts every document itself): the same PyMongo reads and writes, on documents of
awkward values in the project's index shapes, give identical results on both servers.
deploy/local/ferretdb/pushdown_test.go does the same below the wire with many more queries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient, ReturnDocument
from pymongo.collection import Collection

from inbox_conversations.store import CONVERSATION_INDEXES
from inbox_testkit.infra import FerretPair

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NUMBERS = [0, -0.0, 0.0, 2**53 - 1, 2**53, 2**53 + 1, float(2**53), 1e21, -1e21, 42, 42.0, -5, 0.5]
STRINGS = ["", "n1", "n2", 'a"b', "a\\b", "x\u2028y", "nul\x00", "nul", "é", "e\u0301", "0123456789abcdef01234567"]
DATES = [EPOCH - timedelta(milliseconds=1), EPOCH, EPOCH + timedelta(milliseconds=1),
         datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 1, 0, 0, 1, tzinfo=UTC)]
OBJECT_IDS = [ObjectId("0" * 24), ObjectId("ff" + "0" * 22)]
SCALARS: list[Any] = [*NUMBERS, *STRINGS, *DATES, *OBJECT_IDS, True, False, None]
MISSING = object()


def pick(r: random.Random, pool: list[Any], arrays: float = 0.05) -> Any:
    if r.random() < arrays:
        return [r.choice(pool), r.choice(pool)]
    return r.choice(pool)


def document(r: random.Random, i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"_id": f"c{i:04d}"}
    fields = {
        "workspace_id": lambda: r.choice(["w1", "w1", "w2", 'w"3']),
        "number_id": lambda: pick(r, [*STRINGS[:4], 7]),
        "updated_at": lambda: pick(r, [*DATES, 3, "x"]),
        "has_unread": lambda: pick(r, [True, False, None, 1]),
        "awaiting_reply": lambda: pick(r, [True, False]),
        "assignee_id": lambda: pick(r, ["a1", "a2", None, *STRINGS[3:6]]),
        "unread_count": lambda: pick(r, NUMBERS, arrays=0),  # $inc needs a number
        "outbox_at": lambda: pick(r, DATES + SCALARS[:3]),
        "search_tokens": lambda: [r.choice(STRINGS), r.choice(STRINGS)],
    }
    for name, value in fields.items():
        if r.random() < 0.9:
            doc[name] = value()
    shape = r.random()
    if shape < 0.05:
        doc["customer"] = [{"id": r.choice(STRINGS)}]  # an array parent of customer.id
    elif shape < 0.1:
        doc["customer"] = r.choice(SCALARS)
    elif shape < 0.95:
        doc["customer"] = {"id": pick(r, STRINGS[:6] + OBJECT_IDS), "version": r.randint(0, 3)}
    return doc


def condition(r: random.Random, field: str) -> Any:
    pool = {"has_unread": [True, False, None], "awaiting_reply": [True, False]}.get(field, SCALARS)
    match r.randrange(7):
        case 0 | 1:
            return r.choice(pool)
        case 2:
            return {"$in": r.sample(pool, min(len(pool), r.randint(1, 3)))}
        case 3 | 4:
            ops = {r.choice(["$gt", "$gte"]): r.choice(SCALARS)}
            if r.random() < 0.5:
                ops[r.choice(["$lt", "$lte"])] = r.choice(SCALARS)
            return ops
        case 5:
            return {"$ne": r.choice(pool)}
        case _:
            return {"$exists": r.random() < 0.5}


def query(r: random.Random) -> dict[str, Any]:
    fields = ["workspace_id", "number_id", "updated_at", "has_unread", "awaiting_reply", "assignee_id",
              "customer.id", "customer.version", "outbox_at", "search_tokens", "unread_count"]
    q: dict[str, Any] = {}
    for field in r.sample(fields, r.randint(0, 4)):
        q[field] = condition(r, field)
    if r.random() < 0.15:
        q["$and"] = [{"updated_at": condition(r, "updated_at")}, {"number_id": condition(r, "number_id")}]
    if r.random() < 0.1:  # the list's keyset: a range and a $nor the handler evaluates
        at = r.choice(DATES)
        q["updated_at"] = {"$lte": at}
        q["$nor"] = [{"updated_at": at, "_id": {"$gte": f"c{r.randrange(300):04d}"}}]
    return q


def sort(r: random.Random) -> list[tuple[str, int]]:
    """1-3 keys, ending with _id so that the order is total (ties are the Go test's business)."""
    keys = r.sample(["updated_at", "number_id", "customer.id", "outbox_at", "unread_count"], r.randint(0, 2))
    return [*((k, r.choice([1, -1])) for k in keys), ("_id", r.choice([1, -1]))]


@pytest.fixture
def collections(ferret_pair: FerretPair) -> Iterator[list[Collection[dict[str, Any]]]]:
    clients: list[MongoClient[dict[str, Any]]] = [MongoClient(url, tz_aware=True)
                                                  for url in (ferret_pair.pushdown, ferret_pair.reference)]
    colls = [client["pushdown_diff"]["conversations"] for client in clients]
    r = random.Random(15)
    docs = [document(r, i) for i in range(300)]
    for coll in colls:
        coll.drop()
        for index in CONVERSATION_INDEXES:
            coll.create_index(list(index.keys), name=index.name, unique=index.unique, **index.options)
        coll.insert_many([dict(d) for d in docs])
    yield colls
    for client in clients:
        client.drop_database("pushdown_diff")
        client.close()


def test_reads_and_writes_match_the_server_without_pushdown(collections: list[Collection[dict[str, Any]]]) -> None:
    pushdown, reference = collections
    # The reference must really filter nothing in its backend, and the pushdown server must push.
    probe = {"find": "conversations", "filter": {"workspace_id": "w1", "number_id": "n1"}}
    assert pushdown.database.command("explain", probe)["filterPushdown"] is True
    assert reference.database.command("explain", probe)["filterPushdown"] is False

    r = random.Random(2026)
    for step in range(400):
        q = query(r)
        what = r.randrange(20)
        label = f"step {step}: {q}"
        if what < 12:
            s, skip, limit = sort(r), r.choice([0, 0, 2]), r.choice([0, 1, 5, 20])
            got, want = ([d for d in c.find(q).sort(s).skip(skip).limit(limit)] for c in (pushdown, reference))
            assert got == want, f"{label} sort {s} skip {skip} limit {limit}"
        elif what < 15:
            assert pushdown.count_documents(q) == reference.count_documents(q), label
            capped = r.choice([1, 3, 50])  # count_documents' limit: a $limit stage the count pushdown takes too
            assert pushdown.count_documents(q, limit=capped) == reference.count_documents(q, limit=capped), label
        elif what < 17:
            update = {"$inc": {"unread_count": 1}, "$set": {"touched": step}}
            got_u, want_u = (c.update_many(q, update) for c in (pushdown, reference))
            assert (got_u.matched_count, got_u.modified_count) == (want_u.matched_count, want_u.modified_count), label
        elif what < 19:
            s = sort(r)
            got_d, want_d = (c.find_one_and_update(q, {"$set": {"picked": step}}, sort=s,
                                                   return_document=ReturnDocument.AFTER)
                             for c in (pushdown, reference))
            assert got_d == want_d, f"{label} sort {s}"
        else:
            q.setdefault("unread_count", {"$gte": 2**53})  # delete a few, not most
            got_n, want_n = (c.delete_many(q).deleted_count for c in (pushdown, reference))
            assert got_n == want_n, label
        if what >= 15:
            assert list(pushdown.find().sort("_id")) == list(reference.find().sort("_id")), label
    assert pushdown.count_documents({}) > 100, "the deletes took most of the collection: a weaker test"
