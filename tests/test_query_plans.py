"""EXPLAIN guards: every hot query of the services, as their own code issues it, is served by its index
on our FerretDB build (deploy/local/ferretdb/index-pushdown.patch), with no full scan and no temporary
B-tree for the sort, so that a change in a query or in the generated SQL cannot silently turn one back
into a scan of the collection.

The commands are captured from the stores' real calls (PyMongo command monitoring) and explained on
the same server; FerretDB's SQLite backend answers explain with SQLite's EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient, monitoring

from inbox_conversations import search_index
from inbox_conversations.domain import parse_query
from inbox_conversations.store import ConversationsStore, ListQuery
from inbox_conversations.usecases.reading import Reading
from inbox_core.revisions import Revision, RevisionedCollection
from inbox_presence.store import PresenceStore
from inbox_testkit.infra import FerretPair

T0 = datetime(2026, 3, 1, tzinfo=UTC)
NUMBERS = ["n1", "n2", "n3"]
STATUSES = ["open", "resolved", "snoozed"]
# what a command sends besides its query
SESSION_FIELDS = {"lsid", "$db", "$clusterTime", "$readPreference", "txnNumber", "batchSize", "singleBatch"}


class Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name in ("find", "aggregate"):
            self.seen.append({k: v for k, v in event.command.items() if k not in SESSION_FIELDS})

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def client(ferret_pair: FerretPair) -> AsyncIterator[tuple[AsyncMongoClient[dict[str, Any]], Commands]]:
    commands = Commands()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        ferret_pair.pushdown, tz_aware=True, event_listeners=[commands])
    yield client, commands
    await client.close()


async def plans(client: AsyncMongoClient[dict[str, Any]], commands: Commands, db: str,
                call: Awaitable[Any]) -> list[tuple[dict[str, Any], list[str]]]:
    """The queries the call issued, each with its plan."""
    commands.seen.clear()
    await call
    found = list(commands.seen)
    assert found, "the call issued no query"
    result = []
    for command in found:
        explained = await client[db].command("explain", command, verbosity="queryPlanner")
        result.append((command, [str(line) for line in explained["queryPlanner"]["Plan"]]))
    return result


def assert_indexed(found: list[tuple[dict[str, Any], list[str]]], index: str) -> None:
    """The last query of the call (the one it is about) searches ``index``; none of its queries scans a
    table or sorts in a temporary B-tree."""
    for command, plan in found:
        text = "\n".join(plan)
        assert "TEMP B-TREE" not in text, (command, plan)
        assert not re.search(r"detail=SCAN ", text), (command, plan)
        assert "USING INDEX" in text or "USING COVERING INDEX" in text, (command, plan)
    command, plan = found[-1]
    assert re.search(rf"USING (COVERING )?INDEX \S+_{index}\b", "\n".join(plan)), (index, command, plan)


async def seed_conversations(store: ConversationsStore) -> None:
    await store.ensure_indexes()
    conversations = [{
        "_id": f"c{i:03d}", "workspace_id": "w1", "number_id": NUMBERS[i % 3],
        "customer": {"id": f"cu{i % 7}", "name": f"Name {i}", "phone": f"+4930{i:04d}", "version": 1},
        "search_tokens": [f"name{i}", "name"], "last_message": None, "unread_count": i % 2,
        "has_unread": i % 2 == 1, "awaiting_reply": i % 2 == 0, "assignee": None,
        "assignee_id": "a1" if i % 2 == 0 else None, "status": STATUSES[i // 3 % 3],
        "snoozed_until": T0 + timedelta(minutes=i) if i // 3 % 3 == 2 else None,
        "updated_at": T0 + timedelta(minutes=i // 2),
        "created_at": T0, "version": 1, **({"outbox_at": T0, "outbox": {"e1": {}}} if i % 10 == 0 else {}),
    } for i in range(60)]
    await store.conversations.insert_many(conversations)
    await store.timeline.insert_many([{
        "_id": f"m{i:03d}", "conversation_id": f"c{i % 5:03d}", "workspace_id": "w1", "kind": "message",
        "at": T0 + timedelta(seconds=i // 3), "arrival": i, "seq": i // 5 + 1,
        **({"wamid": f"wamid.{i}"} if i % 2 else {}),
    } for i in range(80)])
    for number in NUMBERS:
        await store.repos.numbers.ensure("w1", number)


@pytest.mark.parametrize("status", ["open", "resolved", "snoozed", "any"])
@pytest.mark.parametrize("numbers", [["n2"], NUMBERS], ids=["one-number", "every-number"])
@pytest.mark.parametrize(("filter_", "index"), [("all", "list_status_all"), ("unread", "list_status_unread"),
                                                ("mine", "list_status_mine"), ("no_reply", "list_status_no_reply")])
async def test_the_conversation_list_reads_its_index_in_order(
        client: tuple[AsyncMongoClient[dict[str, Any]], Commands], numbers: list[str], filter_: str,
        index: str, status: str) -> None:
    """Every filter under every status filter ("any": one query per status, each on the index)."""
    mongo, commands = client
    store = ConversationsStore(mongo["plans_list"])
    await seed_conversations(store)
    query = ListQuery("w1", numbers, filter=filter_, agent_id="a1", status=status, limit=1)
    first, cursor = await store.repos.conversations.page(query, numbers)
    assert len(first) == 1 and cursor, "the guard needs a second page"

    found = await plans(mongo, commands, "plans_list", store.repos.conversations.page(query, numbers))
    assert len(found) == (3 if status == "any" else 1)
    for each in found:
        assert_indexed([each], index)
    second = ListQuery("w1", numbers, filter=filter_, agent_id="a1", status=status, cursor=cursor, limit=1)
    for each in await plans(mongo, commands, "plans_list", store.repos.conversations.page(second, numbers)):
        assert_indexed([each], index)
    await mongo.drop_database("plans_list")


@pytest.mark.parametrize("numbers", [["n2"], NUMBERS], ids=["one-number", "every-number"])
async def test_a_search_reads_the_search_index_range_then_its_conversations_by_id(
        client: tuple[AsyncMongoClient[dict[str, Any]], Commands], numbers: list[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Name prefix and phone digits: a count of each term's range on search_index's key, a read of the
    narrowest range, then the candidates by _id; a term broader than CANDIDATES_MAX reads the list's own
    index in order."""
    mongo, commands = client
    db = "plans_search"
    store = ConversationsStore(mongo[db])
    await seed_conversations(store)
    await store.repos.search.marks.delete_many({})
    assert await store.repos.search.backfill() == 60
    for text, expected, terms in (("name 1", 11, 2), ("4930001", 10, 1)):
        query = ListQuery("w1", numbers, search=parse_query(text), limit=100)
        every = ListQuery("w1", numbers, search=parse_query(text), status="any", limit=100)
        found, _ = await Reading(store.repos).page(every, numbers)
        assert len(found) == (expected if numbers == NUMBERS else len([c for c in found if c["number_id"] == "n2"]))
        assert len(found) > 0
        searched = await plans(mongo, commands, db, Reading(store.repos).page(query, numbers))
        # each term's count, the narrowest range, then the (open) conversations
        assert len(searched) == terms + 2, searched
        assert_indexed(searched[:terms + 1], "by_key")
        assert all("aggregate" in command for command, _ in searched[:terms]), searched
        assert_indexed(searched[terms + 1:], "_id_")
        searched = await plans(mongo, commands, db, Reading(store.repos).page(every, numbers))
        assert len(searched) == terms + 4, searched  # "any": the conversations of each status
        assert_indexed(searched[:terms + 1], "by_key")
        for each in searched[terms + 1:]:
            assert_indexed([each], "_id_")
    monkeypatch.setattr(search_index, "CANDIDATES_MAX", 1)
    broad = ListQuery("w1", numbers, search=parse_query("name"), limit=3)
    found = await plans(mongo, commands, db, Reading(store.repos).page(broad, numbers))
    assert_indexed(found[:1], "by_key")
    assert_indexed(found[1:], "list_status_all")
    await mongo.drop_database(db)


async def test_unread_counts_timeline_customer_and_outbox_queries_use_their_indexes(
        client: tuple[AsyncMongoClient[dict[str, Any]], Commands]) -> None:
    mongo, commands = client
    db = "plans_conversations"
    store = ConversationsStore(mongo[db])
    await seed_conversations(store)

    # the number selector's unread counts (rpc.CountUnread), as the repository asks them
    for query in await count_queries(store, mongo, commands, db):
        assert_indexed([query], "list_status_unread")

    # auto-assignment's open conversations per online agent (usecases/routing.py)
    seeded_mine = sum(i % 2 == 0 and STATUSES[i // 3 % 3] == "open" for i in range(60))
    assert await store.repos.conversations.count_open_assigned("w1", NUMBERS, ["a1", "a2"]) == {
        "a1": seeded_mine, "a2": 0}
    found = await plans(mongo, commands, db, store.repos.conversations.count_open_assigned("w1", NUMBERS, ["a1"]))
    assert len(found) == len(NUMBERS)
    for query in found:
        assert_indexed([query], "list_status_mine")

    # the waker's query for ended snoozes
    assert len(await store.repos.conversations.due_snoozes(T0 + timedelta(minutes=30), 100)) > 0
    assert_indexed(await plans(mongo, commands, db, store.repos.conversations.due_snoozes(T0, 100)), "snooze_due")

    items, before = await store.repos.timeline.page("c001", "", 5)
    assert len(items) == 5 and before
    assert_indexed(await plans(mongo, commands, db, store.repos.timeline.page("c001", "", 5)), "timeline_seq")
    assert_indexed(await plans(mongo, commands, db, store.repos.timeline.page("c001", before, 5)), "timeline_seq")
    # The double-reply guard, on every send that carries after_seq.
    assert_indexed(await plans(mongo, commands, db, store.repos.timeline.reply_by_another_after("c001", 3, "a1")),
                   "timeline_seq")

    # A customer's new version: the copies changed, then every conversation showing it read whole (its
    # search entries and its event come from that read).
    customer = {"id": "cu3", "version": 2, "name": "New", "phone": "+1"}
    assert_indexed(await plans(mongo, commands, db, store.repos.conversations.apply_customer(customer)), "by_customer")
    assert_indexed(await plans(mongo, commands, db, store.repos.conversations.showing_customer_version("cu3", 2)),
                   "by_customer")

    for collection in ("conversations", "timeline"):
        poll = store.outbox_leftovers(collection, T0 + timedelta(seconds=1))
        assert_indexed(await plans(mongo, commands, db, poll), "outbox")
    await mongo.drop_database(db)


async def count_queries(store: ConversationsStore, mongo: AsyncMongoClient[dict[str, Any]], commands: Commands,
                        db: str) -> list[tuple[dict[str, Any], list[str]]]:
    counts = await store.repos.conversations.count_unread("w1", NUMBERS)
    seeded = [(i % 3, i % 2 == 1 and STATUSES[i // 3 % 3] == "open") for i in range(60)]
    assert counts == [sum(unread for number, unread in seeded if number == n) for n in range(3)]
    return await plans(mongo, commands, db, store.repos.conversations.count_unread("w1", NUMBERS))


async def test_revision_and_presence_queries_use_their_indexes(
        client: tuple[AsyncMongoClient[dict[str, Any]], Commands]) -> None:
    mongo, commands = client
    db = "plans_state"
    things = RevisionedCollection(mongo[db], "things", KafkaBroker())
    await things.ensure_indexes()
    for version in range(1, 4):
        await things.commit(Revision("t1", version, {"n": version}))
        await things.commit(Revision("t2", version, {"n": version}, published=True))
    latest = await things.latest("t1")
    assert latest is not None and latest.version == 3
    assert_indexed(await plans(mongo, commands, db, things.latest("t1")), "latest")
    commands.seen.clear()
    await things.revisions.find({"published": False, "created_at": {"$lte": datetime.now(UTC)}}).sort(
        [("created_at", 1), ("_id", 1)]).limit(200).to_list()  # relay_once's query, without publishing
    assert_indexed([(c, [str(x) for x in (await mongo[db].command("explain", c))["queryPlanner"]["Plan"]])
                    for c in commands.seen], "unpublished")

    presence = PresenceStore(mongo[db])
    await presence.ensure_indexes()
    await presence.states.insert_many([{
        "_id": f"s{i}", "key": f"w1:a{i % 4}:viewing:c{i % 3}", "kind": "viewing", "workspace_id": "w1",
        "agent_id": f"a{i % 4}", "agent_name": "", "conversation_id": f"c{i % 3}", "since": T0,
        "expires_at": T0 + timedelta(seconds=i), "last_seen": T0,
    } for i in range(12)])
    assert_indexed(await plans(mongo, commands, db, presence.find("w1:a1:viewing:c1")), "one_session_per_key")
    assert_indexed(await plans(mongo, commands, db, presence.visible("w1", ["viewing"], T0)), "workspace_kind")
    assert_indexed(await plans(mongo, commands, db, presence.of_agent("w1", "a1", "viewing")), "workspace_agent")
    assert_indexed(await plans(mongo, commands, db, presence.expired(T0 + timedelta(seconds=5), 10)), "expiry")
    assert_indexed(await plans(mongo, commands, db, presence.pending_of("s1")), "session")
    assert_indexed(await plans(mongo, commands, db, presence.pending_sessions_of("w1:a1:viewing:c1")), "state_key")
    assert_indexed(await plans(mongo, commands, db, presence.due(T0, 10)), "relay_after")
    await mongo.drop_database(db)
