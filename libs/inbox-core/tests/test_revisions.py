"""Revisioned documents on the real database and Kafka: concurrent writers each decide on the truth, a
projection left behind is caught up, and the relay publishes what a crash left unpublished, once."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from inbox_core.events import Event, EventData, event_type
from inbox_core.kafka import make_broker
from inbox_core.mongo import Document, service_database
from inbox_core.revisions import Outgoing, RevisionedCollection, revision_id
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_testkit.commands import DatabaseCommands
from inbox_testkit.infra import Infra


@event_type("test.counter.bumped")
class CounterBumped(EventData):
    n: int


@pytest.fixture
async def topic(infra: Infra) -> str:
    name = f"test.revisions.{uuid.uuid4().hex[:10]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(name, 1)])
    return name


@pytest.fixture
async def collection(mongo_client: AsyncMongoClient[dict[str, Any]], inbox_settings: InboxSettings,
                     topic: str) -> AsyncIterator[RevisionedCollection]:
    broker: KafkaBroker = make_broker(inbox_settings, "test", registry=None, telemetry=False)
    await broker.start()
    db = service_database(mongo_client, inbox_settings, "revisions_test")
    collection = RevisionedCollection(db, "counters", broker)
    await collection.ensure_indexes()
    yield collection
    await broker.stop()
    await mongo_client.drop_database(db.name)


def bump(topic: str) -> Any:
    def decide(current: Document | None, version: int) -> tuple[Document, list[Outgoing]]:
        n = (current or {}).get("n", 0) + 1
        event = Event.of(CounterBumped(n=n), id=f"c1:v{version}")
        return {"n": n}, [Outgoing(topic, "c1", event)]

    return decide


async def _published_ids(infra: Infra, topic: str) -> list[str]:
    consumer = AIOKafkaConsumer(bootstrap_servers=infra.kafka_bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        ids: list[str] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                ids.extend(Event.from_bytes(r.value).id for r in records)
        return ids
    finally:
        await consumer.stop()


async def test_concurrent_writers_never_lose_a_change(
    collection: RevisionedCollection, infra: Infra, topic: str
) -> None:
    await asyncio.gather(*(collection.apply("c1", bump(topic)) for _ in range(20)))
    doc = await collection.get("c1")
    assert doc is not None and doc["n"] == 20 and doc["version"] == 20
    revisions = await collection.revisions.find().sort("_id").to_list()
    assert [r["state"]["n"] for r in revisions] == list(range(1, 21))
    assert all(r["published"] for r in revisions)
    assert sorted(await _published_ids(infra, topic)) == sorted(f"c1:v{v}" for v in range(1, 21))


async def test_a_projection_left_behind_is_caught_up_by_the_next_change(
    collection: RevisionedCollection, topic: str
) -> None:
    for _ in range(3):
        await collection.apply("c1", bump(topic))
    # As after a lost write: the projection shows version 1 while revision 3 is the truth.
    first = await collection.revisions.find_one({"_id": revision_id("c1", 1)})
    assert first is not None
    await collection.docs.replace_one({"_id": "c1"}, {"_id": "c1", **first["state"], "version": 1})
    doc = await collection.apply("c1", bump(topic))
    assert doc is not None and (doc["n"], doc["version"]) == (4, 4)
    assert await collection.docs.find_one({"_id": "c1"}) == {"_id": "c1", "n": 4, "version": 4}
    # "No change" is also decided on the truth, not on a stale projection.
    await collection.docs.replace_one({"_id": "c1"}, {"_id": "c1", **first["state"], "version": 1})
    unchanged = await collection.apply("c1", lambda current, version: None)
    assert unchanged is not None and unchanged["version"] == 4


async def test_the_relay_publishes_what_a_crash_left_once(
    collection: RevisionedCollection, infra: Infra, topic: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def crash(*_: object) -> None:
        raise asyncio.CancelledError

    monkeypatch.setattr(collection, "materialise", crash)
    with pytest.raises(asyncio.CancelledError):
        await collection.apply("c1", bump(topic))
    monkeypatch.undo()
    assert await collection.docs.find_one({"_id": "c1"}) is None
    assert (await collection.get("c1")) == {"_id": "c1", "n": 1, "version": 1}  # read from the revision
    assert await collection.relay_once(min_age_s=3600) == 0  # too young: its writer may still be at it
    assert await collection.relay_once(min_age_s=0) == 1
    assert await collection.relay_once(min_age_s=0) == 0
    assert await collection.docs.find_one({"_id": "c1"}) == {"_id": "c1", "n": 1, "version": 1}
    assert await _published_ids(infra, topic) == ["c1:v1"]


async def test_a_poison_revision_is_parked_with_its_reason_and_the_ones_behind_it_publish(
    collection: RevisionedCollection, infra: Infra, topic: str
) -> None:
    """Two revisions that can never be published as they are (an event over Kafka's size limit, an event
    that cannot be read) are tried, parked with their reason after three rounds, and never hold up the
    revisions behind them; an operator's replay, once the cause is fixed, publishes one after all."""
    from datetime import timedelta

    from inbox_core.outbox import OUTBOX_PARKED
    from inbox_core.revisions import Revision, now_ms

    created = now_ms() - timedelta(minutes=5)
    big = Revision("big", 1, {"n": 1}, [Outgoing(topic, "big", Event(type="test.big", data={"x": "x" * 1_100_000}))],
                   created_at=created)
    await collection.revisions.insert_one(big.to_doc())
    unreadable = Revision("bad", 1, {"n": 1}, [], created_at=created + timedelta(seconds=1)).to_doc()
    unreadable["events"] = [{"topic": topic, "key": "bad", "event": {"type": 5}}]
    await collection.revisions.insert_one(unreadable)
    behind = [Revision(f"ok{i}", 1, {"n": i}, [Outgoing(topic, f"ok{i}", Event.of(CounterBumped(n=i), id=f"ok{i}"))],
                       created_at=created + timedelta(seconds=2 + i)) for i in range(3)]
    for revision in behind:
        await collection.revisions.insert_one(revision.to_doc())
    parked_before = OUTBOX_PARKED.labels("counters")._value.get()

    assert await collection.relay_once(min_age_s=0) == 5
    # Side by side (each document its lane), so in any order across documents.
    assert sorted(await _published_ids(infra, topic)) == ["ok0", "ok1", "ok2"], "the ones behind went on at once"
    assert await collection.relay_once(min_age_s=0) == 2  # the two poison ones, tried again
    assert await collection.relay_once(min_age_s=0) == 2
    assert await collection.relay_once(min_age_s=0) == 0, "parked after three failures: no longer tried"
    parked = {d["entry_id"]: d for d in await collection.parking.listed("counters")}
    assert sorted(parked) == [revision_id("bad", 1), revision_id("big", 1)]
    assert parked[revision_id("big", 1)]["error_type"] == "MessageSizeTooLargeError"
    assert parked[revision_id("bad", 1)]["error_type"] == "ValidationError"
    assert parked[revision_id("big", 1)]["attempts"] == 3
    assert OUTBOX_PARKED.labels("counters")._value.get() == parked_before + 2

    # The unreadable one is repaired, then replayed: it goes out; the other stays parked.
    good = Event.of(CounterBumped(n=9), id="bad-fixed").model_dump(mode="json")
    await collection.revisions.update_one({"_id": revision_id("bad", 1)},
                                          {"$set": {"events": [{"topic": topic, "key": "bad", "event": good}]}})
    assert await collection.parking.request_replay([f"counters:{revision_id('bad', 1)}"]) == 1
    assert await collection.relay_once(min_age_s=0) == 1
    assert (await _published_ids(infra, topic))[3:] == ["bad-fixed"]
    assert [d["entry_id"] for d in await collection.parking.listed("counters")] == [revision_id("big", 1)]
    assert (await collection.revisions.find_one({"_id": revision_id("bad", 1)}))["published"] is True


async def test_compaction_keeps_the_latest_and_recent_revisions_whole_and_the_claims_of_the_old_ones(
    collection: RevisionedCollection,
) -> None:
    """Old published revisions that are not their document's latest lose their state and events; the
    latest (what ``get`` and ``apply`` read) and the recent ones stay whole, and an old version's id still
    claims it: a writer with a stale read cannot commit it again."""
    from datetime import timedelta

    from inbox_core.revisions import Revision, VersionTaken, now_ms

    old = now_ms() - timedelta(days=40)
    big = {"orders": {f"ord_{i}": {"stage": "new", "amount": "1.00"} for i in range(200)}}
    for version in range(1, 5):  # a's versions 1-3 are old, 4 is recent
        created = old + timedelta(seconds=version) if version < 4 else now_ms()
        revision = Revision("a", version, {**big, "n": version}, [], published=True, created_at=created)
        await collection.commit(revision)
        await collection.materialise(revision)
    lone = Revision("b", 1, {**big, "n": 1}, [], published=True, created_at=old)  # old, but b's latest
    await collection.commit(lone)
    await collection.materialise(lone)
    unpublished = Revision("c", 1, {"n": 1}, [], created_at=old)
    await collection.commit(unpublished)
    await collection.commit(Revision("c", 2, {"n": 2}, [], published=True, created_at=old + timedelta(seconds=10)))
    await collection.materialise(Revision("c", 2, {"n": 2}))

    size = _revision_bytes
    whole = await size(collection)
    # Oldest first, two a round: b:1 (b's latest, kept) and a:1; then a:2 and a:3; then c:2 (c's latest).
    assert await collection.compact_once(timedelta(days=30), limit=2) == 1  # bounded: a batch a round
    assert await collection.compact_once(timedelta(days=30), limit=2) == 2  # on from where it stopped
    assert await collection.compact_once(timedelta(days=30), limit=2) == 0
    assert await collection.compact_once(timedelta(days=30), limit=2) == 0  # started over: nothing left

    docs = {d["_id"]: d async for d in collection.revisions.find({})}
    for version in (1, 2, 3):
        compacted = docs[revision_id("a", version)]
        assert compacted["compacted"] is True and "state" not in compacted and "events" not in compacted
        assert compacted["version"] == version and compacted["published"] is True
    assert docs[revision_id("a", 4)]["state"]["n"] == 4, "recent: whole"
    assert docs[revision_id("b", 1)]["state"]["n"] == 1, "its document's latest: whole"
    assert docs[revision_id("c", 1)]["state"] == {"n": 1}, "unpublished: the relay still needs it"
    assert (await collection.get("a") or {})["n"] == 4
    with pytest.raises(VersionTaken):
        await collection.commit(Revision("a", 2, {"n": 99}))
    print(f"revisions of documents of 200 orders: {whole} bytes, {await size(collection)} after compaction")


async def _revision_bytes(collection: RevisionedCollection) -> int:
    from bson import encode

    return sum([len(encode(d)) async for d in collection.revisions.find({})])


async def test_a_revision_parked_before_the_shared_outbox_is_replayed_too(
    collection: RevisionedCollection, infra: Infra, topic: str
) -> None:
    """Parked documents written before the one outbox hold no entry (revisions) or another shape: a
    replay still puts the revision back, and the relay publishes it."""
    from datetime import timedelta

    from inbox_core.revisions import Revision, now_ms

    old = Revision("old", 1, {"n": 1}, [Outgoing(topic, "old", Event.of(CounterBumped(n=1), id="old-1"))],
                   created_at=now_ms() - timedelta(minutes=5))
    await collection.revisions.insert_one({**old.to_doc(), "parked": True})
    await collection.parking.entries.insert_one({
        "_id": f"counters:{old.id}", "source": "counters", "entry_id": old.id, "attempts": 3, "parked": True,
        "replay": False, "reason": "too large", "first_failed_at": now_ms(), "parked_at": now_ms()})
    assert await collection.relay_once(min_age_s=0) == 0, "parked: not due"
    assert await collection.parking.request_replay([f"counters:{old.id}"]) == 1
    assert await collection.relay_once(min_age_s=0) == 1
    assert await _published_ids(infra, topic) == ["old-1"]
    assert await collection.parking.listed("counters") == []


async def test_a_change_that_changes_nothing_costs_one_read(
    infra: Infra, inbox_settings: InboxSettings, topic: str
) -> None:
    """The decision is made on the latest revision (the truth): nothing more to confirm a "no change"."""
    reads = DatabaseCommands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, tz_aware=True,
                                                                event_listeners=[reads])
    broker: KafkaBroker = make_broker(inbox_settings, "test", registry=None, telemetry=False)
    await broker.start()
    db = service_database(client, inbox_settings, f"revisions_ops_{uuid.uuid4().hex[:6]}")
    try:
        collection = RevisionedCollection(db, "counters", broker)
        await collection.ensure_indexes()
        await collection.apply("c1", bump(topic))
        reads.clear()
        unchanged = await collection.apply("c1", lambda current, version: None)
        assert unchanged is not None and unchanged["n"] == 1
        assert reads.sent == [("find", "counters_revisions")]
    finally:
        await broker.stop()
        await client.drop_database(db.name)
        await client.close()
