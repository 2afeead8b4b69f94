"""ListConversations: p50/p99 per filter and search, through the servicer, next to the raw database
query for the same page, at growing numbers of conversations.

    uv run python bench/conversations_list.py                 # 100,000 conversations
    uv run python bench/conversations_list.py 20000           # another N
    uv run python bench/conversations_list.py --full          # 1,000,000
    options: --mongo-url URL (default $INBOX_BENCH_MONGO_URL; without one, a private FerretDB is
               started on a free port in a temporary folder, as the test suite does, and stopped after)
             --checkpoints 10000,50000 (also measure on the way up), --budget-s 60 (measuring, per size),
             --max-seed-s 1200 (stop seeding there and report the size reached), --keep (do not drop the db),
             --save (write the figures to bench/results/conversations_list.json)

Conversations are seeded straight into the database (insert_many in batches) with the fields the
service maintains (and their search_index.py entries, made by its own code), for one workspace
with three numbers and ten agents. Each case calls the gRPC servicer in-process (request -> protobuf
response, the real store code) and runs the same find (filter, sort, limit, projection) directly,
alternately, in the same run; the table shows both and their ratio, and the index the server's query
planner chose (MongoDB's winning plan; on FerretDB with our index-pushdown.patch, the SQLite query
plan). Measuring time per size is bounded by --budget-s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient

from inbox.conversations.v1 import conversations_pb2 as pb
from inbox_conversations import domain, search_index
from inbox_conversations.outbox import Publisher
from inbox_conversations.rpc import ConversationsRpc
from inbox_conversations.store import LIST_PROJECTION, LIST_SORT, ConversationsStore
from inbox_testkit.ports import free_port
from inbox_testkit.servers import FerretServer, install

WORKSPACE = "ws_bench"
NUMBERS = ["100000000001", "100000000002", "100000000003"]
AGENTS = [f"ag_{i}" for i in range(10)]
FIRST = ["José", "María", "Ana", "Luis", "Chloé", "Zoë", "Ahmed", "Olga", "Mateo", "Sofía", "Noah", "Émile",
         "Aisha", "Ivan", "Lucía", "Marco", "Björn", "Inés", "Yusuf", "Hana"]
LAST = ["García", "Müller", "Rossi", "Dubois", "Kowalski", "Silva", "Nakamura", "O'Brien", "Novák", "Öztürk",
        "Jensen", "Fernández", "Smith", "Ivanova", "Kim", "Haddad", "Costa", "Łukasz", "Petrov", "Martín"]
BATCH = 5000
RESULTS = Path(__file__).resolve().parent / "results"
PAGE = 30


def machine() -> str:
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return f"{platform.machine()} {os.cpu_count()} cores, {mem} RAM, Python {platform.python_version()}"


def conversation(i: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
    wa_id = f"{rng.choice(['34', '44', '49', '1', '55'])}{rng.randrange(10**8, 10**10)}"
    phone = f"+{wa_id}"
    updated = now - timedelta(seconds=rng.randrange(90 * 86400), milliseconds=rng.randrange(1000))
    unread = rng.random() < 0.2
    awaiting = unread or rng.random() < 0.25
    assignee = rng.choice(AGENTS) if rng.random() < 0.3 else None
    direction = "in" if awaiting else "out"
    last_at = domain.to_ms(updated)
    return {
        "_id": f"cnv_{i:012d}{uuid.uuid4().hex[:12]}",
        "workspace_id": WORKSPACE,
        "number_id": NUMBERS[i % len(NUMBERS)],
        "customer": {"id": f"cus_{i:024d}", "wa_id": wa_id, "user_id": None, "name": name, "phone": phone,
                     "version": 1},
        "search_indexed": search_index.indexed_for({"name": name, "phone": phone}),
        "last_message": {"id": f"msg_{i:024d}", "direction": direction, "type": "text",
                         "preview": "Hello, is this still available?" if direction == "in" else "Yes, it is!",
                         "at": last_at, **({} if direction == "in" else {"status": "read", "status_rank": 3})},
        "unread_count": rng.randrange(1, 5) if unread else 0,
        "has_unread": unread,
        "awaiting_reply": awaiting,
        "assignee": {"id": assignee, "name": assignee.upper()} if assignee else None,
        "assignee_id": assignee,
        "status": "open",
        "window_expires_at": last_at + timedelta(hours=24) if direction == "in" else None,
        "updated_at": last_at,
        "created_at": last_at - timedelta(days=1),
        "version": 3,
        "announced": True,
    }


def search_entries(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation's search_index.py documents, as SearchIndex.sync writes them."""
    customer, ws = doc["customer"], doc["workspace_id"]
    return [{"_id": f"{ws}|{t}|{doc['_id']}", "k": f"{ws}|{t}", "c": doc["_id"], "v": doc["version"]}
            for t in sorted(search_index.tokens(customer["name"], search_index.phone_of(customer)))]


async def search_candidates(db: Any, workspace_id: str, query: str) -> list[str] | None:
    """The store's candidate read (search_index.SearchIndex.candidates), written out by hand: each term's
    range counted, then the ids of the narrowest, or None when every term is too broad (the list then scans)."""
    parsed = domain.parse_query(query)
    assert parsed is not None
    ranges = [search_index.term_range(workspace_id, token)
              for token in [f"n:{t}" for t in parsed.name_terms] + [f"p:{t}" for t in parsed.phone_terms]]
    # The counts together, as the store asks them (one after another would make the raw figure dearer).
    sizes = await asyncio.gather(*(db["search_index"].count_documents({"k": {"$gte": low, "$lt": high}})
                                   for low, high in ranges))
    if not ranges or min(sizes) > search_index.CANDIDATES_MAX:
        return None
    low, high = ranges[sizes.index(min(sizes))]
    return sorted({d["c"] for d in await db["search_index"].find({"k": {"$gte": low, "$lt": high}},
                                                                 {"c": 1, "_id": 0}).to_list(None)})


def cases(rng: random.Random) -> list[tuple[str, dict[str, Any]]]:
    name_prefix = domain.fold(rng.choice(FIRST))[:3]
    return [
        ("all (every number)", {}),
        ("all, one number", {"number_ids": [NUMBERS[0]]}),
        ("unread", {"filter": pb.CONVERSATION_FILTER_UNREAD}),
        ("mine", {"filter": pb.CONVERSATION_FILTER_MINE, "agent_id": AGENTS[3]}),
        ("no_reply", {"filter": pb.CONVERSATION_FILTER_NO_REPLY}),
        (f"search name '{name_prefix}'", {"query": name_prefix}),
        ("search phone '4567'", {"query": "4567"}),
        ("all, page 2 (cursor)", {"page": 2}),
    ]


def raw_filter(fields: dict[str, Any], cursor_key: tuple[datetime, str] | None) -> dict[str, Any]:
    """The find the store runs for these request fields, written out by hand."""
    numbers = fields.get("number_ids") or NUMBERS
    find: dict[str, Any] = {"workspace_id": WORKSPACE, "number_id": numbers[0] if len(numbers) == 1
                            else {"$in": numbers}, "status": "open"}
    flt = fields.get("filter")
    if flt == pb.CONVERSATION_FILTER_UNREAD:
        find["has_unread"] = True
    elif flt == pb.CONVERSATION_FILTER_MINE:
        find["assignee_id"] = fields["agent_id"]
    elif flt == pb.CONVERSATION_FILTER_NO_REPLY:
        find["awaiting_reply"] = True
    if cursor_key is not None:
        at, last_id = cursor_key
        find["updated_at"] = {"$lte": at}
        find["$nor"] = [{"updated_at": at, "_id": {"$gte": last_id}}]
    return find


def pct(values: list[float], q: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def plan_of(explain: dict[str, Any]) -> str:
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("indexName"), str):
                names.append(node["indexName"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(explain.get("queryPlanner", {}).get("winningPlan"))
    if names:
        return ",".join(dict.fromkeys(names))
    ferret = explain.get("queryPlanner", {}).get("Plan")
    if ferret:  # SQLite's plan: "SEARCH <collection>_<8 hex> USING INDEX <collection>_<8 hex>_<index>"
        text = "\n".join(map(str, ferret))
        used = [m.group(1) for m in re.finditer(r"USING (?:COVERING )?INDEX \S+?_[0-9a-f]{8}_(\w+)", text)]
        if not used:
            return "scan"
        return ",".join(dict.fromkeys(used)) + (" +temp sort" if "TEMP B-TREE" in text else "")
    return "COLLSCAN"


HEADER = ["case", "rows", "runs", "servicer p50 ms", "p99 ms", "raw db p50 ms", "p99 ms", "ratio p50", "plan"]
WIDTHS = [22, 4, 4, 15, 9, 13, 9, 9, 18]


def print_row(cells: list[str]) -> None:
    print("  ".join(c.ljust(w) for c, w in zip(cells, WIDTHS, strict=True)).rstrip(), flush=True)


async def measure(rpc: ConversationsRpc, store: ConversationsStore, budget_s: float, title: str
                  ) -> list[dict[str, Any]]:
    """Prints one row per case as soon as it is measured (a scanning server takes a while per query)."""
    rng = random.Random(7)
    print(f"\n{title}")
    print_row(HEADER)
    print_row(["-" * w for w in WIDTHS])
    results: list[dict[str, Any]] = []
    all_cases = cases(rng)
    per_case = budget_s / len(all_cases)
    for label, fields in all_cases:
        request_fields = {k: v for k, v in fields.items() if k != "page"}
        cursor, cursor_key = "", None
        for _ in range(fields.get("page", 1) - 1):  # walk to the page first (not timed)
            reply = await rpc.ListConversations(pb.ListConversationsRequest(
                workspace_id=WORKSPACE, limit=PAGE, cursor=cursor, **request_fields))
            cursor = reply.next_cursor
            last = reply.items[-1]
            cursor_key = (last.updated_at.ToDatetime(tzinfo=UTC), last.id)
        request = pb.ListConversationsRequest(workspace_id=WORKSPACE, limit=PAGE, cursor=cursor, **request_fields)
        find = raw_filter(fields, cursor_key)

        async def servicer(request: pb.ListConversationsRequest = request) -> list[str]:
            return [c.id for c in (await rpc.ListConversations(request)).items]

        async def raw(find: dict[str, Any] = find, query: str = fields.get("query", "")) -> list[str]:
            size = PAGE + 1
            if query:  # the candidates from search_index, then those conversations (a broad term: rows checked)
                candidates = await search_candidates(store.db, WORKSPACE, query)
                if candidates is None:
                    size = search_index.SCAN_MAX
                elif not candidates:
                    return []
                else:
                    find = {**find, "_id": {"$in": candidates}}
            docs = await store.conversations.find(find, LIST_PROJECTION).sort(LIST_SORT).limit(size).to_list(None)
            if query:
                parsed = domain.parse_query(query)
                assert parsed is not None
                docs = [d for d in docs if search_index.matches(parsed, d)][:PAGE]
            return [d["_id"] for d in docs[:PAGE]]

        times_s: list[float] = []
        times_r: list[float] = []
        first_page: list[str] = []
        deadline = time.monotonic() + per_case
        # At least one pair (on a server that scans, one pair can take most of the budget).
        while (not times_s or time.monotonic() < deadline) and len(times_s) < 500:
            t0 = time.perf_counter()
            page_s = await servicer()
            t1 = time.perf_counter()
            page_r = await raw()
            t2 = time.perf_counter()
            if not times_s:  # the same page from both, or the comparison means nothing
                assert page_s == page_r, f"{label}: servicer and raw query disagree"
                first_page = page_s
            times_s.append((t1 - t0) * 1000)
            times_r.append((t2 - t1) * 1000)
        explain = await store.db.command("explain", {"find": "conversations", "filter": find,
                                                     "sort": dict(LIST_SORT), "limit": PAGE + 1})
        s50, s99, r50, r99 = pct(times_s, 50), pct(times_s, 99), pct(times_r, 50), pct(times_r, 99)
        plan = plan_of(explain)
        print_row([label, str(len(first_page)), str(len(times_s)), f"{s50:.2f}", f"{s99:.2f}",
                   f"{r50:.2f}", f"{r99:.2f}", f"{s50 / r50:.2f}x" if r50 else "-", plan])
        results.append({"case": label, "rows": len(first_page), "runs": len(times_s), "servicer_p50_ms": s50,
                        "servicer_p99_ms": s99, "raw_p50_ms": r50, "raw_p99_ms": r99, "plan": plan})
    return results


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=100_000)
    parser.add_argument("--full", action="store_true", help="1,000,000 conversations")
    parser.add_argument("--mongo-url", default=os.environ.get("INBOX_BENCH_MONGO_URL") or "")
    parser.add_argument("--checkpoints", default="", help="comma-separated sizes measured on the way up")
    parser.add_argument("--budget-s", type=float, default=120.0, help="measuring time per size")
    parser.add_argument("--max-seed-s", type=float, default=1200.0, help="give up seeding after this long")
    parser.add_argument("--keep", action="store_true", help="keep the database")
    parser.add_argument("--save", action="store_true", help="write bench/results/conversations_list.json")
    args = parser.parse_args(argv)
    target = 1_000_000 if args.full else args.n
    sizes = sorted({int(s) for s in args.checkpoints.split(",") if s.strip()} | {target})
    sizes = [s for s in sizes if 0 < s <= target]

    with contextlib.ExitStack() as stack:
        url = args.mongo_url
        if not url:
            install()
            home = Path(tempfile.mkdtemp(prefix="inbox-bench-"))
            stack.callback(shutil.rmtree, home, True)
            ferret = FerretServer(home, free_port())
            ferret.start()
            stack.callback(ferret.stop)
            url = ferret.url
        return await run(args, url, sizes)


async def run(args: argparse.Namespace, url: str, sizes: list[int]) -> int:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    info = await client.admin.command("buildInfo")
    server = f"FerretDB {info['ferretdbVersion']}" if "ferretdbVersion" in info else f"MongoDB {info.get('version')}"
    db = client[f"bench{uuid.uuid4().hex[:8]}_conversations"]
    store = ConversationsStore(db)
    rpc = ConversationsRpc(store, Publisher(store, None))  # type: ignore[arg-type]  # reads never publish
    print(f"machine: {machine()}")
    print(f"database: {server} at {url} (database {db.name})")
    print(f"sizes: {', '.join(f'{s:,}' for s in sizes)}; page {PAGE}; one workspace, {len(NUMBERS)} numbers")
    try:
        await db["numbers"].insert_many([{"_id": f"{WORKSPACE}:{n}", "workspace_id": WORKSPACE, "number_id": n}
                                         for n in NUMBERS])
        rng = random.Random(42)
        now = datetime.now(UTC)
        report: dict[str, Any] = {"benchmark": "conversations_list", "machine": machine(), "database": server,
                                  "page": PAGE, "at": now.isoformat(), "sizes": []}
        seeded = 0
        seed_started = time.monotonic()
        for size in sizes:
            gave_up = False
            while seeded < size:
                count = min(BATCH, size - seeded)
                docs = [conversation(seeded + j, rng, now) for j in range(count)]
                await db["conversations"].insert_many(docs, ordered=False)
                await db["search_index"].insert_many([e for d in docs for e in search_entries(d)], ordered=False)
                seeded += count
                elapsed = time.monotonic() - seed_started
                if seeded % 50_000 == 0 or seeded == size:
                    print(f"  seeded {seeded:,} in {elapsed:.0f}s ({seeded / elapsed:,.0f}/s)", flush=True)
                if elapsed > args.max_seed_s and seeded < size:
                    print(f"  seeding stopped after {elapsed:.0f}s at {seeded:,} of {size:,} "
                          f"(--max-seed-s); measuring at the size reached", flush=True)
                    gave_up = True
                    break
            # Indexes after the bulk insert (cheaper than maintaining them row by row); idempotent.
            started = time.monotonic()
            await store.ensure_indexes()
            print(f"  indexes ready in {time.monotonic() - started:.0f}s", flush=True)
            started = time.monotonic()
            measured = await measure(rpc, store, args.budget_s,
                                     f"ListConversations at {seeded:,} conversations ({server})")
            report["sizes"].append({"conversations": seeded, "cases": measured})
            print(f"  (measured in {time.monotonic() - started:.0f}s)", flush=True)
            if gave_up:
                break
        if args.save:
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "conversations_list.json").write_text(json.dumps(report, indent=2) + "\n")
            print(f"saved {RESULTS / 'conversations_list.json'}")
    finally:
        if not args.keep:
            await client.drop_database(db.name)
        await client.close()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
