"""The search index (search_index.py) on the real database: exact after name and phone changes,
idempotent under redelivery, healed after a sync cut short, backfilled for older databases, and the
broad-term path (the list read and checked row by row) pages through every match exactly once."""

from __future__ import annotations

from typing import Any

import pytest
from conversations_testkit import Env, ago, list_ids
from test_elsewhere import customer_event

from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1.conversations_pb2_grpc import ConversationsServiceStub
from inbox_conversations import search_index
from inbox_conversations.search_index import SearchIndex, tokens

WA = "34600111222"


async def keys_of(env: Env, conversation_id: str) -> set[str]:
    docs = await env.store.repos.search.entries.find({"c": conversation_id}).to_list(None)
    return {d["k"].removeprefix(f"{env.workspace}|") for d in docs}


def test_tokens_are_name_words_and_phone_suffixes() -> None:
    assert tokens("José Ñúñez-García", "+34 600 111") == {
        "n:jose", "n:nunez", "n:garcia", "p:34600111", "p:4600111", "p:600111", "p:00111", "p:0111", "p:111"}
    assert tokens("", "12") == set()
    long = "x" * 40
    assert tokens(long, "") == {"n:" + "x" * search_index.MAX_WORD}


def test_term_range_holds_exactly_the_keys_with_that_prefix() -> None:
    low, high = search_index.term_range("ws", "n:mar")
    inside = ["ws|n:mar", "ws|n:maria", "ws|n:marz", "ws|n:mar\U0010ffff"]
    outside = ["ws|n:ma", "ws|n:mas", "ws|n:maq", "ws|n:mb", "ws|p:mar", "wt|n:mar"]
    assert all(low <= k < high for k in inside)
    assert not any(low <= k < high for k in outside)


async def test_a_name_change_replaces_its_tokens_and_redelivery_changes_nothing(env: Env) -> None:
    await env.deliver(env.message(WA, profile_name="Ada Lovelace"))
    conv = await env.conversation(WA)
    assert await keys_of(env, conv["_id"]) == tokens("Ada Lovelace", "+" + WA)
    event = customer_event(env, "Grace Hopper", 3, phone="+44 700 900 800")
    await env.handlers.on_customer_event(event)
    expected = tokens("Grace Hopper", "+44 700 900 800")
    assert await keys_of(env, conv["_id"]) == expected
    count = await env.store.repos.search.entries.count_documents({"c": conv["_id"]})
    await env.handlers.on_customer_event(event)  # redelivered
    await env.deliver(env.message(WA, profile_name="ada"))  # a later WhatsApp profile name does not win
    assert await keys_of(env, conv["_id"]) == expected
    assert await env.store.repos.search.entries.count_documents({"c": conv["_id"]}) == count


async def test_a_sync_cut_short_is_finished_by_the_next_message(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message(WA, profile_name="Ada Lovelace"))
    conv = await env.conversation(WA)
    # As after a crash between the name's write and its tokens: the tokens of the old name, not marked.
    await env.store.repos.search.entries.delete_many({"c": conv["_id"]})
    await env.store.conversations.update_one({"_id": conv["_id"]}, {"$unset": {"search_indexed": 1}})
    assert await list_ids(stub, env, query="lovelace") == []
    await env.deliver(env.message(WA, profile_name="Ada Lovelace"))
    assert await list_ids(stub, env, query="lovelace") == [conv["_id"]]


async def test_a_sync_cut_short_after_its_tokens_takes_them_as_they_are(env: Env) -> None:
    """The first sync inserts (no upserts); a retry finds its own tokens there and ignores the duplicates."""
    await env.deliver(env.message(WA, profile_name="Ada Lovelace"))
    conv = await env.conversation(WA)
    count = await env.store.repos.search.entries.count_documents({"c": conv["_id"]})
    await env.store.conversations.update_one({"_id": conv["_id"]}, {"$unset": {"search_indexed": 1}})
    await env.deliver(env.message(WA, profile_name="Ada Lovelace"))
    assert await keys_of(env, conv["_id"]) == tokens("Ada Lovelace", "+" + WA)
    assert await env.store.repos.search.entries.count_documents({"c": conv["_id"]}) == count
    assert (await env.conversation(WA)).get("search_indexed")


async def test_backfill_indexes_conversations_from_before_the_index(env: Env, stub: ConversationsServiceStub) -> None:
    await env.deliver(env.message(WA, profile_name="Ada Lovelace"))
    conv = await env.conversation(WA)
    await env.store.repos.search.entries.delete_many({"c": conv["_id"]})
    await env.store.conversations.update_one({"_id": conv["_id"]}, {"$unset": {"search_indexed": 1}})
    index = SearchIndex(env.store.db)
    assert await index.backfill() == 0  # this database was indexed from its start: marked
    await index.marks.delete_many({})  # as a database from before the index is
    assert await index.backfill() == 1
    assert await list_ids(stub, env, query="ada") == [conv["_id"]]
    assert await index.backfill() == 0  # once


async def test_a_broad_term_pages_through_every_match_once(env: Env, stub: ConversationsServiceStub,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Past CANDIDATES_MAX the list is read and checked row by row, at most SCAN_MAX rows a request: a
    page may be short, and following the cursors still gives every match, newest first, once."""
    people = [(f"3460000{i:04d}", "Maria Lopez" if i % 3 == 0 else f"Other {i}") for i in range(21)]
    for i, (wa_id, name) in enumerate(people):
        await env.deliver(env.message(wa_id, profile_name=name, at=ago(minutes=100 - i)))
    expected = [env.conversation_id(w) for w, name in reversed(people) if name.startswith("Maria")]
    narrow = await list_ids(stub, env, query="mari", limit=100)
    assert narrow == expected
    monkeypatch.setattr(search_index, "CANDIDATES_MAX", 2)
    monkeypatch.setattr(search_index, "SCAN_MAX", 5)
    seen: list[str] = []
    cursor = ""
    pages = 0
    while True:
        reply: Any = await stub.ListConversations(pb.ListConversationsRequest(
            workspace_id=env.workspace, query="mari", limit=2, cursor=cursor))
        seen += [c.id for c in reply.items]
        pages += 1
        cursor = reply.next_cursor
        if not cursor:
            break
    assert seen == expected
    assert pages > len(expected) // 2  # short pages happened


async def test_a_range_is_never_read_in_part(env: Env, stub: ConversationsServiceStub,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """One customer's three words fill the first entries of the range "mar"; the conversation whose
    only entry comes after them is still found (reading a range up to a limit would have lost it)."""
    await env.deliver(env.message("34600000001", profile_name="Mar Mara Marb", at=ago(minutes=2)))
    await env.deliver(env.message("34600000002", profile_name="Marz Lopez", at=ago(minutes=1)))
    expected = [env.conversation_id("34600000002"), env.conversation_id("34600000001")]
    for candidates_max in (1, 4):  # the broad path (4 entries > 1), then the narrow one (4 <= 4)
        monkeypatch.setattr(search_index, "CANDIDATES_MAX", candidates_max)
        assert await list_ids(stub, env, query="mar", limit=10) == expected
