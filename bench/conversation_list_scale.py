"""``make bench-scale``: the conversation list through the gateway at a million conversations.

One workspace with three numbers, seeded straight into the conversations service's database
(insert_many, in the documents' real shape: bench/conversations_list.py's conversations, with their
search_index.py tokens) into a FerretDB whose data is kept under .local/bench-scale/ between runs (a
later run seeds only what is missing), every service running against it (inbox_testkit.stack.Stack,
a Kafka of its own per run). One conversation has real messages (webhooks, written by the consumer):
the one opened. It writes bench/results/conversation_list_gateway.json in conversation_list_gateway.py's
format, with these figures beside their ceilings, measured in the same run:

- the list through the gateway (all, unread, mine, no reply, one number, page 2, search by name and by
  phone): p99 beside 100 ms and beside 2x the raw database queries the service runs for it;
- unread counts per number (CountUnread, and GET /api/numbers): p99 beside 20 ms;
- opening a conversation (it and its 50 newest items): gateway p50 beside 2x the gRPC calls;
- FerretDB's CPU while every service idles: beside 5% of a core;
- inserts and updates per second on a collection with the conversations' typed indexes beside one
  without secondary indexes.

    uv run python bench/conversation_list_scale.py [--size 1000000] [--max-seed-s 3000] [--per-case-s 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
from pymongo import AsyncMongoClient, InsertOne

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conversations_list as seeding
from common import exit_on_sigterm, machine, percentiles, print_table, save, signed_text_webhook, waba_of
from conversation_list_gateway import PAGE, compare, compare_open, raw_search

from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox.conversations.v1 import conversations_pb2_grpc as cgrpc
from inbox.ingest.v1 import ingest_pb2 as ipb
from inbox.ingest.v1 import ingest_pb2_grpc as igrpc
from inbox_conversations import domain, search_index
from inbox_conversations.store import CONVERSATION_INDEXES, LIST_PROJECTION, LIST_SORT
from inbox_core import ids
from inbox_core.mongo import ensure_indexes
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_testkit.infra import Infra
from inbox_testkit.paths import FERRETDB_BIN
from inbox_testkit.ports import free_port
from inbox_testkit.servers import FerretServer, KafkaServer, install
from inbox_testkit.stack import STACK_SECRETS, Stack

ROOT = Path(__file__).resolve().parent.parent
HOME = ROOT / ".local" / "bench-scale"
IDLE_PROFILE = HOME / "ferretdb-idle-cpu.pprof"
STATE = HOME / "state.json"
PREFIX = "bscale"
EMAIL = "scale@bench.test"
PASSWORD = "bench-password-123"
BATCH = 5000
LIST_CEILING_MS = 100.0
COUNT_CEILING_MS = 20.0
IDLE_CPU_CEILING = 0.05
# Surnames made of syllables: a million customers have many names, as real ones do (FIRST x LAST alone
# is 400 names: every search would be one of a few hundred thousand-strong groups).
SYLLABLES = ["ba", "ko", "ri", "mel", "san", "tor", "vi", "lu", "dan", "es", "gar", "mon", "zi", "pe", "ur",
             "hal", "no", "qui", "sel", "ta"]


def surname(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize()


def seeded_conversation(i: int, workspace_id: str, agent_id: str, rng: random.Random,
                        now: datetime) -> tuple[dict[str, Any], list[Any]]:
    """A conversation as the service stores it (one agent of ten is the benchmark's), and the insert of
    its search tokens."""
    doc = seeding.conversation(i, rng, now)
    if doc["assignee_id"] == seeding.AGENTS[3]:
        doc["assignee"], doc["assignee_id"] = {"id": agent_id, "name": "Bench Scale Agent"}, agent_id
    doc.pop("search_tokens", None)  # the array of before search_index.py
    customer = doc["customer"]
    customer["name"] = f"{rng.choice(seeding.FIRST)} {surname(rng)}"
    doc["workspace_id"] = workspace_id
    doc["search_indexed"] = search_index.indexed_for(customer)
    entries = [InsertOne({"_id": f"{workspace_id}|{t}|{doc['_id']}", "k": f"{workspace_id}|{t}", "c": doc["_id"],
                          "v": doc["version"]})
               for t in sorted(search_index.tokens(customer["name"], search_index.phone_of(customer)))]
    return doc, entries


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def seed(db: Any, workspace_id: str, agent_id: str, size: int, max_s: float) -> tuple[int, float]:
    """Seeds up to ``size`` conversations in all (what an earlier run left is kept); (total, seconds)."""
    have = await db["conversations"].count_documents({"workspace_id": workspace_id})
    started = time.monotonic()
    now = datetime.now(UTC)
    i = have
    while i < size and time.monotonic() - started < max_s:
        rng = random.Random(i)
        count = min(BATCH, size - i)
        docs, entries = [], []
        for j in range(count):
            doc, tokens = seeded_conversation(i + j, workspace_id, agent_id, rng, now)
            docs.append(doc)
            entries += tokens
        await db["conversations"].insert_many(docs, ordered=False)
        await db["search_index"].bulk_write(entries, ordered=False)
        i += count
        if (i // BATCH) % 20 == 0:
            took = time.monotonic() - started
            print(f"  seeded {i:,} conversations ({(i - have) / took:,.0f}/s)", flush=True)
    return i, time.monotonic() - started


async def account(stack: Stack) -> tuple[str, str, str]:
    """The benchmark's workspace and agent, made on the first run and kept (the database is)."""
    from inbox_gateway.gateway import Gateway
    from inbox_gateway.settings import GatewaySettings

    state = json.loads(STATE.read_text()) if STATE.exists() else {}
    if not state.get("workspace_id"):
        gateway = Gateway(GatewaySettings(inbox=stack.settings, jwt_secret=STACK_SECRETS["GATEWAY_JWT_SECRET"]),
                          stream=False)
        try:
            await gateway.accounts.ensure_indexes()
            workspace = await gateway.accounts.create_workspace("Bench scale shop", "EUR")
            agent, _ = await gateway.accounts.create_agent(EMAIL, "Bench Scale Agent",
                                                           await gateway.auth.passwords.hash(PASSWORD))
            await gateway.accounts.set_membership(workspace.id, agent.id, "admin")
            state = {"workspace_id": workspace.id, "agent_id": agent.id}
            STATE.write_text(json.dumps(state))
        finally:
            await gateway.client.close()
    async with grpc.aio.insecure_channel(stack.grpc_target("ingest")) as channel:
        for number in seeding.NUMBERS:
            stack.register_number(number, waba_of(number))
            await igrpc.IngestServiceStub(channel).UpsertChannel(ipb.UpsertChannelRequest(channel=ipb.Channel(
                phone_number_id=number, workspace_id=state["workspace_id"], waba_id=waba_of(number),
                display_phone_number=number, name="Bench number"),
                access_token=STACK_SECRETS["SANDBOX_ACCESS_TOKEN"]), timeout=30)
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=60) as client:
        reply = await client.post("/api/auth/login", json={"email": EMAIL, "password": PASSWORD})
        reply.raise_for_status()
        return state["workspace_id"], state["agent_id"], reply.json()["token"]


async def writes_per_s(db: Any, seconds: float) -> list[dict[str, Any]]:
    """Inserts, then updates, of conversation documents for ``seconds`` each: with the conversations'
    typed indexes, and without secondary indexes."""
    rows = []
    rng = random.Random(5)
    now = datetime.now(UTC)
    for label, indexed in (("with the typed indexes", True), ("without secondary indexes", False)):
        name = f"bench_writes_{uuid.uuid4().hex[:6]}"
        collection = db[name]
        await collection.insert_one({"_id": "x"})
        if indexed:
            await ensure_indexes(collection, CONVERSATION_INDEXES)
        inserted: list[str] = []
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            doc = seeding.conversation(len(inserted), rng, now)
            doc.pop("search_tokens", None)
            await collection.insert_one(doc)
            inserted.append(doc["_id"])
        inserts = len(inserted) / (time.monotonic() - started)
        updated = 0
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            cid = inserted[updated % len(inserted)]
            await collection.update_one({"_id": cid}, {
                "$set": {"has_unread": True, "awaiting_reply": True, "last_message.preview": f"m{updated}"},
                "$inc": {"unread_count": 1, "version": 1},
                "$max": {"updated_at": now + timedelta(seconds=updated)}})
            updated += 1
        updates = updated / (time.monotonic() - started)
        await collection.drop()
        rows.append({"case": label, "inserts_per_s": round(inserts), "updates_per_s": round(updates)})
        print(f"  writes {label}: {rows[-1]}", flush=True)
    return rows


async def p99_of(call: Any, budget_s: float) -> dict[str, float]:
    samples: list[float] = []
    deadline = time.monotonic() + budget_s
    while (not samples or time.monotonic() < deadline) and len(samples) < 500:
        t0 = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - t0)
    return {**percentiles(samples), "runs": len(samples)}


async def measure(stack: Stack, ferret: FerretServer, size: int, max_seed_s: float, per_case_s: float,
                  messages: int) -> dict[str, Any]:
    workspace_id, agent_id, token = await account(stack)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongo_url, tz_aware=True)
    db = client[f"{PREFIX}_conversations"]
    http = httpx.AsyncClient(base_url=stack.url("gateway"), timeout=120, headers={"Authorization": f"Bearer {token}"})
    channel = grpc.aio.insecure_channel(stack.grpc_target("conversations"))
    conversations = cgrpc.ConversationsServiceStub(channel)
    try:
        for n in seeding.NUMBERS:
            await db["numbers"].update_one({"_id": f"{workspace_id}:{n}"}, {
                "$setOnInsert": {"workspace_id": workspace_id, "number_id": n}}, upsert=True)
        total, seed_s = await seed(db, workspace_id, agent_id, size, max_seed_s)
        print(f"  {total:,} conversations ({seed_s:.0f} s seeding in this run)", flush=True)
        # The opened conversation: real messages, written by the consumer from real webhooks.
        wa_id = "15550009999"
        opened_id = ids.conversation_id(workspace_id, seeding.NUMBERS[0], wa_id)
        async with httpx.AsyncClient(timeout=60) as poster:
            for n in range(messages):
                body, headers = signed_text_webhook(seeding.NUMBERS[0], wa_id, f"wamid.open.{n}", f"message {n}")
                (await poster.post(f"{stack.url('ingest')}/webhooks/whatsapp", content=body,
                                   headers=headers)).raise_for_status()
        deadline = time.monotonic() + 300
        while await db["timeline"].count_documents({"conversation_id": opened_id}) < messages:
            if time.monotonic() > deadline:
                raise RuntimeError("the opened conversation's messages did not arrive")
            await asyncio.sleep(0.5)

        sample = await db["conversations"].find_one({"workspace_id": workspace_id, "_id": {"$ne": opened_id}},
                                                    sort=[("_id", 1)])
        assert sample is not None
        name = sample["customer"]["name"].split()[-1]  # a customer's surname
        phone = domain.digits(sample["customer"]["phone"])[-7:]
        first = domain.fold(sample["customer"]["name"].split()[0])[:3]  # a common first name's prefix
        numbers = {"$in": seeding.NUMBERS}
        cases: list[tuple[str, dict[str, Any], dict[str, Any], Any]] = [
            ("list: all", {"limit": PAGE}, {}, {}),
            ("list: unread", {"limit": PAGE, "filter": "unread"}, {"filter": cpb.CONVERSATION_FILTER_UNREAD},
             {"has_unread": True}),
            ("list: no reply", {"limit": PAGE, "filter": "no_reply"},
             {"filter": cpb.CONVERSATION_FILTER_NO_REPLY}, {"awaiting_reply": True}),
            ("list: one number", {"limit": PAGE, "number": seeding.NUMBERS[1]},
             {"number_ids": [seeding.NUMBERS[1]]}, {"number_id": seeding.NUMBERS[1]}),
            (f"list: search name '{name}'", {"limit": PAGE, "q": name}, {"query": name}, name),
            (f"list: search phone '{phone}'", {"limit": PAGE, "q": phone}, {"query": phone}, phone),
            (f"list: search broad '{first}'", {"limit": PAGE, "q": first}, {"query": first}, first),
        ]
        rows: list[dict[str, Any]] = []
        for label, params, grpc_fields, extra in cases:
            if isinstance(extra, str):
                raw: Any = lambda q=extra: raw_search(db, workspace_id, q)  # noqa: E731
            else:
                find = {"workspace_id": workspace_id, "number_id": numbers, "status": "open", **extra}
                raw = lambda q=find: db["conversations"].find(q, LIST_PROJECTION).sort(LIST_SORT).limit(  # noqa: E731
                    PAGE + 1).to_list(None)
            rows.append(await compare(label, per_case_s, lambda p=params: http.get("/api/conversations", params=p),
                                      lambda f=grpc_fields: conversations.ListConversations(
                                          cpb.ListConversationsRequest(workspace_id=workspace_id, limit=PAGE, **f),
                                          timeout=120), raw))
        agent = agent_id
        rows.append(await compare("list: mine", per_case_s, lambda: http.get("/api/conversations", params={
            "limit": PAGE, "filter": "mine"}), lambda: conversations.ListConversations(cpb.ListConversationsRequest(
                workspace_id=workspace_id, limit=PAGE, filter=cpb.CONVERSATION_FILTER_MINE, agent_id=agent),
                timeout=120), lambda: db["conversations"].find(
                    {"workspace_id": workspace_id, "number_id": numbers, "status": "open", "assignee_id": agent},
                    LIST_PROJECTION).sort(LIST_SORT).limit(PAGE + 1).to_list(None)))
        cursor = (await http.get("/api/conversations", params={"limit": PAGE})).json()["next_cursor"]
        service_page = await conversations.ListConversations(cpb.ListConversationsRequest(
            workspace_id=workspace_id, limit=PAGE), timeout=120)  # the service's own cursor (the gateway wraps it)
        last = await db["conversations"].find_one({"_id": service_page.items[-1].id})
        assert last is not None
        at = last["updated_at"]
        rows.append(await compare(
            "list: page 2 (cursor)", per_case_s,
            lambda: http.get("/api/conversations", params={"limit": PAGE, "cursor": cursor}),
            lambda: conversations.ListConversations(cpb.ListConversationsRequest(
                workspace_id=workspace_id, limit=PAGE, cursor=service_page.next_cursor), timeout=120),
            lambda: db["conversations"].find({"workspace_id": workspace_id, "number_id": numbers,
                                              "status": "open", "updated_at": {"$lte": at},
                                              "$nor": [{"updated_at": at, "_id": {"$gte": last["_id"]}}]},
                                             LIST_PROJECTION).sort(LIST_SORT).limit(PAGE + 1).to_list(None)))
        rows.append(await compare_open(http, conversations, db, workspace_id, opened_id, messages, per_case_s))

        counts = {
            "grpc CountUnread (every number)": await p99_of(lambda: conversations.CountUnread(
                cpb.CountUnreadRequest(workspace_id=workspace_id), timeout=60), per_case_s),
            "gateway GET /api/numbers": await p99_of(lambda: http.get("/api/numbers"), per_case_s),
        }
        for label, figures in counts.items():
            print(f"  unread counts, {label}: {figures}", flush=True)

        writes = await writes_per_s(client["bscale_writes"], max(3.0, per_case_s / 2))

        pid = ferret.process.pid()
        assert pid is not None
        await asyncio.sleep(20)  # the services' own start-up work and the measurements' tail settle
        requests0 = await ferret_requests(ferret)
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        if ferret.debug_port:  # --profile-idle: where the idle CPU goes, beside the same 30 s
            async with httpx.AsyncClient(timeout=60) as debug:
                profile = await debug.get(f"http://127.0.0.1:{ferret.debug_port}/debug/pprof/profile",
                                          params={"seconds": 30})
            IDLE_PROFILE.write_bytes(profile.content)
        else:
            await asyncio.sleep(30)
        idle_cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0)
        print(f"  FerretDB idle CPU: {idle_cpu:.1%} of a core", flush=True)
        if ferret.debug_port:
            took = time.monotonic() - t0
            requests1 = await ferret_requests(ferret)
            busiest = sorted(((n - requests0.get(c, 0)) / took, c) for c, n in requests1.items())[::-1][:8]
            print("  FerretDB commands per second while idle: "
                  + ", ".join(f"{c} {r:.1f}" for r, c in busiest if r > 0), flush=True)
            print(f"  CPU profile: {IDLE_PROFILE} (go tool pprof -top {FERRETDB_BIN} {IDLE_PROFILE})", flush=True)
        return {"sizes": [{"conversations": total, "rows": rows}], "target": size, "seeded": total,
                "seed_s": round(seed_s, 1), "seed_per_s": round((total / seed_s) if seed_s else 0),
                "stop": "" if total >= size else f"seeding stopped at {total:,} (--max-seed-s {max_seed_s:.0f})",
                "unread_counts": counts, "writes": writes, "idle_cpu_of_a_core": round(idle_cpu, 4)}
    finally:
        await http.aclose()
        await channel.close()
        await client.close()


def summary_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    size = result["sizes"][-1]["conversations"]
    out = []
    for row in result["sizes"][-1]["rows"]:
        if row["case"].startswith("list"):
            raw99 = row["raw_db_p99_ms"]
            ceiling = min(LIST_CEILING_MS, 2 * raw99) if raw99 else LIST_CEILING_MS
            out.append({"metric": f"gateway {row['case']} p99 @ {size:,}", "value": row["gateway_p99_ms"],
                        "unit": "ms", "ceiling": round(ceiling, 2),
                        "ceiling_is": "min(100 ms, 2x the raw queries' p99)",
                        "note": f"raw p99 {raw99} ms; gRPC p50 {row['grpc_p50_ms']} ms; "
                                f"gateway p50 {row['gateway_p50_ms']} ms"
                                + (f"; errors {row['errors']}" if row["errors"] else "")})
        else:
            out.append({"metric": f"gateway {row['case']} p50 @ {size:,}", "value": row["gateway_p50_ms"],
                        "unit": "ms", "ceiling": round(2 * row["grpc_p50_ms"], 2),
                        "ceiling_is": "2x the gRPC calls' p50",
                        "note": f"raw p50 {row['raw_db_p50_ms']} ms; gateway p99 {row['gateway_p99_ms']} ms"})
    for label, figures in result["unread_counts"].items():
        out.append({"metric": f"unread counts, {label} p99 @ {size:,}", "value": figures["p99_ms"], "unit": "ms",
                    "ceiling": COUNT_CEILING_MS, "ceiling_is": "20 ms", "note": f"p50 {figures['p50_ms']} ms"})
    out.append({"metric": f"FerretDB idle CPU, every service running @ {size:,}",
                "value": round(100 * result["idle_cpu_of_a_core"], 2), "unit": "% of a core",
                "ceiling": 100 * IDLE_CPU_CEILING, "ceiling_is": "5% of a core"})
    typed, plain = result["writes"]
    for kind in ("inserts", "updates"):
        out.append({"metric": f"conversation {kind}/s with the typed indexes", "value": typed[f"{kind}_per_s"],
                    "unit": "/s", "ceiling": plain[f"{kind}_per_s"],
                    "ceiling_is": "the same without secondary indexes"})
    return out


async def ferret_requests(ferret: FerretServer) -> dict[str, float]:
    """FerretDB's requests so far per command (its debug server's Prometheus counters); {} when it is off."""
    if not ferret.debug_port:
        return {}
    async with httpx.AsyncClient(timeout=30) as debug:
        text = (await debug.get(f"http://127.0.0.1:{ferret.debug_port}/debug/metrics")).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("ferretdb_client_requests_total{"):
            labels, value = line.rsplit(" ", 1)
            command = labels.split('command="', 1)[1].split('"', 1)[0] if 'command="' in labels else "?"
            counts[command] = counts.get(command, 0) + float(value)
    return counts


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--max-seed-s", type=float, default=3000.0, help="seeding time of this run")
    parser.add_argument("--per-case-s", type=float, default=8.0)
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--fresh", action="store_true", help="start from an empty database")
    parser.add_argument("--profile-idle", action="store_true",
                        help=f"FerretDB's CPU profile and commands while idle (to {IDLE_PROFILE})")
    args = parser.parse_args()
    install()
    if args.fresh:
        shutil.rmtree(HOME, ignore_errors=True)
    HOME.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="inbox-bench-scale-"))
    ferret = FerretServer(HOME, free_port(), debug_port=free_port() if args.profile_idle else 0)
    kafka = KafkaServer(scratch, free_port())
    stack = None
    try:
        ferret.start()
        kafka.start()
        asyncio.run(ensure_topics(kafka.bootstrap))
        settings = InboxSettings(kafka_bootstrap=kafka.bootstrap, mongo_url=ferret.url, db_prefix=PREFIX)
        (scratch / "stack").mkdir()
        stack = Stack(Infra(kafka.bootstrap, ferret.url, "bench"), settings, scratch / "stack")
        stack.start()
        result = asyncio.run(measure(stack, ferret, args.size, args.max_seed_s, args.per_case_s, args.messages))
    finally:
        if stack is not None:
            stack.stop()
        kafka.stop()
        ferret.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    size = result["sizes"][-1]["conversations"]
    print(f"machine: {machine()}; one workspace, {len(seeding.NUMBERS)} numbers")
    print_table(f"conversation list and open-conversation at {size:,} conversations", result["sizes"][-1]["rows"],
                ["case", "runs", "gateway_p50_ms", "gateway_p99_ms", "grpc_p50_ms", "raw_db_p50_ms", "raw_db_p99_ms",
                 "vs_raw_p50", "errors"])
    summary = summary_of(result)
    print_table("beside their ceilings", summary, ["metric", "value", "unit", "ceiling", "ceiling_is", "note"])
    if size < args.size:
        print(f"NOT measured at {args.size:,} conversations: {result['stop']}")
    print("saved", save("conversation_list_gateway", {**result, "summary": summary}))


if __name__ == "__main__":
    main()
