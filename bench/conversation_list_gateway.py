"""The conversation list and opening a conversation through the gateway, on the way up to 1M conversations.

The whole system runs (inbox_testkit.stack.Stack). Conversations are seeded straight into the
conversations service's database with bench/conversations_list.py's documents (the fields the service
maintains, search tokens from its own domain code) for one workspace of the gateway with three
connected numbers, and measured at each of ``--sizes`` on the way up. It stops growing when seeding the
next size does not fit ``--max-seed-s``, or when the gateway no longer answers the list within its
deadline (503); the output then says which N was the largest measured. One conversation with
``--messages`` real messages (posted as webhooks, so the consumer wrote them) is the one opened.

For each case, three measurements alternate in the same run: the raw database query the service runs
(the ceiling), the gRPC call to the conversations service alone, and the gateway (HTTP + auth + gRPC +
database + JSON).

    uv run python bench/conversation_list_gateway.py [--sizes 1000,5000,20000,100000,1000000]
                                                     [--max-seed-s 150] [--per-size-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
from pymongo import AsyncMongoClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conversations_list as seeding
from common import (
    exit_on_sigterm,
    machine,
    percentiles,
    print_table,
    save,
    servers,
    signed_text_webhook,
    system,
    waba_of,
    workspaces_with_agents,
)

from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox.conversations.v1 import conversations_pb2_grpc as cgrpc
from inbox.ingest.v1 import ingest_pb2 as ipb
from inbox.ingest.v1 import ingest_pb2_grpc as igrpc
from inbox_conversations import search_index
from inbox_conversations.store import LIST_PROJECTION, LIST_SORT, TIMELINE_SORT
from inbox_core import ids
from inbox_testkit.stack import STACK_SECRETS

PAGE = 30
BATCH = 5000


class Seeder:
    """Inserts bench/conversations_list.py's conversation documents in batches, up to a size or a time."""

    def __init__(self, db: Any, workspace_id: str) -> None:
        seeding.WORKSPACE = workspace_id  # its documents take the workspace from this module constant
        self.db = db
        self.workspace_id = workspace_id
        self.rng = random.Random(42)
        self.now = datetime.now(UTC)
        self.seeded = 0
        self.seconds = 0.0

    async def grow_to(self, size: int, max_s: float) -> tuple[int, float]:
        """Seeds up to ``size`` conversations in all, for at most ``max_s``; returns (added, seconds)."""
        if self.seeded == 0:
            for n in seeding.NUMBERS:  # the service may know some already (the opened conversation's messages)
                await self.db["numbers"].update_one({"_id": f"{self.workspace_id}:{n}"}, {
                    "$setOnInsert": {"workspace_id": self.workspace_id, "number_id": n}}, upsert=True)
        added, started = 0, time.monotonic()
        while self.seeded < size and time.monotonic() - started < max_s:
            count = min(BATCH, size - self.seeded)
            await self.db["conversations"].insert_many(
                [seeding.conversation(self.seeded + j, self.rng, self.now) for j in range(count)], ordered=False)
            self.seeded += count
            added += count
        took = time.monotonic() - started
        self.seconds += took
        return added, took

    def rate(self) -> float:
        return self.seeded / self.seconds if self.seconds else 0.0


async def timed(samples: list[float], call: Any) -> Any:
    t0 = time.perf_counter()
    result = await call()
    samples.append(time.perf_counter() - t0)
    return result


async def measure(stack: Any, checkpoints: list[int], max_seed_s: float, per_size_s: float,
                  messages: int) -> dict[str, Any]:
    (agent,) = await workspaces_with_agents(stack, 1, number_ids=[seeding.NUMBERS[0]])
    workspace_id = agent.workspace_id
    async with grpc.aio.insecure_channel(stack.grpc_target("ingest")) as channel:
        for number in seeding.NUMBERS[1:]:
            stack.register_number(number, waba_of(number))
            await igrpc.IngestServiceStub(channel).UpsertChannel(ipb.UpsertChannelRequest(channel=ipb.Channel(
                phone_number_id=number, workspace_id=workspace_id, waba_id=waba_of(number)),
                access_token=STACK_SECRETS["SANDBOX_ACCESS_TOKEN"]), timeout=10)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongo_url, tz_aware=True)
    db = client[f"{stack.settings.db_prefix}_conversations"]
    http = httpx.AsyncClient(base_url=stack.url("gateway"), timeout=120,
                             headers={"Authorization": f"Bearer {agent.token}"})
    channel = grpc.aio.insecure_channel(stack.grpc_target("conversations"))
    conversations = cgrpc.ConversationsServiceStub(channel)
    try:
        # The conversation that is opened: real messages, written by the consumer from real webhooks.
        wa_id = "15550009999"
        async with httpx.AsyncClient(timeout=30) as poster:
            for n in range(messages):
                body, headers = signed_text_webhook(seeding.NUMBERS[0], wa_id, f"wamid.open.{n}", f"message {n}")
                (await poster.post(f"{stack.url('ingest')}/webhooks/whatsapp", content=body,
                                   headers=headers)).raise_for_status()
        opened_id = ids.conversation_id(workspace_id, seeding.NUMBERS[0], wa_id)
        deadline = time.monotonic() + 120
        while await db["timeline"].count_documents({"conversation_id": opened_id}) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError("the opened conversation's messages did not arrive")
            await asyncio.sleep(0.5)

        name = seeding.domain.fold(random.Random(3).choice(seeding.FIRST))[:3]
        numbers = {"$in": seeding.NUMBERS}
        cases: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
            ("list: all", {"limit": PAGE}, {}, {}),
            ("list: unread", {"limit": PAGE, "filter": "unread"},
             {"filter": cpb.CONVERSATION_FILTER_UNREAD}, {"has_unread": True}),
            ("list: no reply", {"limit": PAGE, "filter": "no_reply"},
             {"filter": cpb.CONVERSATION_FILTER_NO_REPLY}, {"awaiting_reply": True}),
            (f"list: search '{name}'", {"limit": PAGE, "q": name}, {"query": name}, {"search": name}),
        ]
        sizes: list[dict[str, Any]] = []
        seeded, seed_s, stop = 1, 0.0, ""
        seeder = Seeder(db, workspace_id)
        for size in checkpoints:
            left = max_seed_s - seed_s
            added, took = await seeder.grow_to(size, left)
            seeded, seed_s = seeded + added, seed_s + took
            total = await db["conversations"].count_documents({"workspace_id": workspace_id})
            print(f"  {total:,} conversations (seeded at {seeder.rate():,.0f}/s)", flush=True)
            rows: list[dict[str, Any]] = []
            for label, params, grpc_fields, extra in cases:
                find = {"workspace_id": workspace_id, "number_id": numbers, "status": "open", **extra}
                # A search's raw queries are the search index's range, then its conversations by _id.
                raw: Any = (lambda q=extra["search"]: raw_search(db, workspace_id, q)) if "search" in extra else (
                    lambda q=find: db["conversations"].find(q, LIST_PROJECTION).sort(LIST_SORT).limit(PAGE + 1)
                    .to_list(None))
                rows.append(await compare(label, per_size_s / (len(cases) + 2),
                                          lambda p=params: http.get("/api/conversations", params=p),
                                          lambda f=grpc_fields: conversations.ListConversations(
                                              cpb.ListConversationsRequest(workspace_id=workspace_id, limit=PAGE, **f),
                                              timeout=120),
                                          raw))
            first_page = await http.get("/api/conversations", params={"limit": PAGE})
            cursor = first_page.json().get("next_cursor") if first_page.status_code == 200 else None
            if cursor:
                rows.append(await compare("list: page 2 (cursor)", per_size_s / (len(cases) + 2),
                                          lambda c=cursor: http.get("/api/conversations",
                                                                    params={"limit": PAGE, "cursor": c}), None, None))
            rows.append(await compare_open(http, conversations, db, workspace_id, opened_id, messages,
                                           per_size_s / (len(cases) + 2)))
            sizes.append({"conversations": total, "rows": rows})
            if any(row["errors"] for row in rows):
                stop = (f"stopped growing at {total:,}: the gateway no longer answers the list within its "
                        "deadline (503)")
            elif total < size:
                stop = f"stopped growing at {total:,}: seeding {size:,} did not fit --max-seed-s {max_seed_s:.0f}"
            if stop:
                break
        return {"sizes": sizes, "target": checkpoints[-1], "seeded": seeded, "seed_s": round(seed_s, 1),
                "seed_per_s": round(seeder.rate()), "stop": stop}
    finally:
        await http.aclose()
        await channel.close()
        await client.close()


async def raw_search(db: Any, workspace_id: str, query: str) -> list[Any]:
    """The queries the store runs for a search (search_index.py, then the list), written out by hand."""
    best = await seeding.search_candidates(db, workspace_id, query)
    find: dict[str, Any] = {"workspace_id": workspace_id, "number_id": {"$in": seeding.NUMBERS}, "status": "open"}
    if best == []:
        return []
    if best is not None:
        find["_id"] = {"$in": best}
    return list(await db["conversations"].find(find, LIST_PROJECTION).sort(LIST_SORT).limit(
        PAGE + 1 if best is not None else search_index.SCAN_MAX).to_list(None))


async def compare_open(http: Any, conversations: Any, db: Any, workspace_id: str, opened_id: str, messages: int,
                       budget_s: float) -> dict[str, Any]:
    """Opening a conversation with its 50 newest items: the gateway's two requests beside the two gRPC
    calls and the two raw queries behind them."""
    return await compare(
        f"open: conversation + timeline ({messages} msgs)", budget_s,
        lambda: asyncio.gather(http.get(f"/api/conversations/{opened_id}"),
                               http.get(f"/api/conversations/{opened_id}/timeline", params={"limit": 50})),
        lambda: asyncio.gather(
            conversations.GetConversation(cpb.GetConversationRequest(
                workspace_id=workspace_id, conversation_id=opened_id), timeout=60),
            conversations.GetTimeline(cpb.GetTimelineRequest(
                workspace_id=workspace_id, conversation_id=opened_id, limit=50), timeout=60)),
        lambda: asyncio.gather(
            db["conversations"].find_one({"_id": opened_id}, LIST_PROJECTION),
            db["timeline"].find({"conversation_id": opened_id}, {"outbox": 0}).sort(TIMELINE_SORT)
            .limit(51).to_list(None)))


async def compare(label: str, budget_s: float, gateway: Any, grpc_call: Any, raw: Any) -> dict[str, Any]:
    g: list[float] = []
    r: list[float] = []
    d: list[float] = []
    errors: dict[str, int] = {}
    deadline = time.monotonic() + budget_s
    # The gateway last in each round: a request it gives up on (503 past its deadline) still runs in the
    # service for a while, and should delay the next round rather than the other two measurements of this one.
    while (not g or time.monotonic() < deadline) and len(g) < 300:
        if raw is not None:
            await timed(d, raw)
        if grpc_call is not None:
            try:
                await timed(r, grpc_call)
            except grpc.aio.AioRpcError as exc:
                errors[f"gRPC {exc.code().name}"] = errors.get(f"gRPC {exc.code().name}", 0) + 1
        reply = await timed(g, gateway)
        for item in reply if isinstance(reply, list) else [reply]:
            if item.status_code != 200:  # e.g. 503 when the service's answer takes longer than the deadline
                errors[f"gateway {item.status_code}"] = errors.get(f"gateway {item.status_code}", 0) + 1
    gp, rp, dp = percentiles(g), percentiles(r), percentiles(d)
    row = {"case": label, "runs": len(g), "gateway_p50_ms": gp["p50_ms"], "gateway_p99_ms": gp["p99_ms"],
           "grpc_p50_ms": rp["p50_ms"] if r else None, "raw_db_p50_ms": dp["p50_ms"] if d else None,
           "raw_db_p99_ms": dp["p99_ms"] if d else None, "errors": errors or None}
    row["vs_raw_p50"] = round(gp["p50_ms"] / dp["p50_ms"], 2) if d and dp["p50_ms"] else None
    print(f"  {row}", flush=True)
    return row


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,5000,20000,100000,1000000",
                        help="conversation counts measured on the way up (the last is the goal)")
    parser.add_argument("--max-seed-s", type=float, default=150.0, help="seeding time for all sizes together")
    parser.add_argument("--per-size-s", type=float, default=30.0, help="measuring time per size")
    parser.add_argument("--messages", type=int, default=60)
    args = parser.parse_args()
    checkpoints = sorted(int(x) for x in args.sizes.split(","))
    with servers() as srv, system(srv, "list") as stack:
        result = asyncio.run(measure(stack, checkpoints, args.max_seed_s, args.per_size_s, args.messages))
    print(f"machine: {machine()}; one workspace, {len(seeding.NUMBERS)} numbers; seeding at "
          f"{result['seed_per_s']:,}/s")
    for size in result["sizes"]:
        print_table(f"conversation list and open-conversation at {size['conversations']:,} conversations",
                    size["rows"], ["case", "runs", "gateway_p50_ms", "gateway_p99_ms", "grpc_p50_ms", "raw_db_p50_ms",
                                   "raw_db_p99_ms", "vs_raw_p50", "errors"])
    largest = result["sizes"][-1]["conversations"] if result["sizes"] else 0
    if largest < result["target"]:
        print(f"NOT measured at {result['target']:,} conversations: {result['stop'] or 'time budget'}; "
              f"the largest N measured is {largest:,}")
    summary = []
    for size in result["sizes"][-2:]:  # the largest sizes measured (the last one may be past the deadline)
        for row in size["rows"]:
            if row["case"].startswith(("list: all", "open")):
                summary.append({
                    "metric": f"gateway {row['case']} p50 @ {size['conversations']:,} conversations",
                    "value": row["gateway_p50_ms"], "unit": "ms", "ceiling": row["raw_db_p50_ms"],
                    "ceiling_is": "raw database query p50",
                    "note": f"p99 {row['gateway_p99_ms']} ms; gRPC alone p50 {row['grpc_p50_ms']} ms"
                            + (f"; errors {row['errors']}" if row["errors"] else "")})
    if largest < result["target"]:
        summary.append({"metric": f"list at {result['target']:,} conversations", "value": "not measured",
                        "note": f"{result['stop'] or 'time budget'}; largest N measured {largest:,}"})
    print("saved", save("conversation_list_gateway", {**result, "summary": summary}))


if __name__ == "__main__":
    main()
