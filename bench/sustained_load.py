"""Sustained load through every service, with the consumers' lag sampled throughout and after.

The whole system runs (inbox_testkit.stack.Stack). For ``--seconds`` a mix is offered at ``--rate``
events per second: customer messages as signed webhooks to ingest (whatsapp.events.v1, consumed by
conversations and customers; the conversations' events streamed by the gateway to ``--streams`` open
streams), orders created through the orders service (inbox.orders.v1, consumed by conversations and
customers) and composing signals through presence (inbox.presence.v1, streamed). Every
``--sample`` seconds, and for ``--after`` seconds after the load, each consumer group's lag (end
offsets minus committed offsets) is read from Kafka.

Beside it, in the same run: the ceiling of any consumer here, a raw aiokafka consumer (no handler)
reading the same whatsapp.events.v1 records from the start, and the offered rate itself.

    uv run python bench/sustained_load.py [--rate 1000] [--seconds 60] [--after 30] [--profile-db]

``--profile-db`` starts FerretDB with its debug server and saves its CPU profile over the load's second
half to ``results/sustained_load-ferretdb-cpu.pprof`` (``go tool pprof -top .local/bin/ferretdb <file>``).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import httpx
from aiokafka import AIOKafkaConsumer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Agent,
    Servers,
    consumer_lag,
    exit_on_sigterm,
    machine,
    print_table,
    print_usage,
    raise_fd_limit,
    save,
    servers,
    signed_text_webhook,
    system,
    usage,
    usage_rows,
    workspaces_with_agents,
)

from inbox.common.v1 import common_pb2
from inbox.orders.v1 import orders_pb2 as opb
from inbox.orders.v1 import orders_pb2_grpc as ogrpc
from inbox.presence.v1 import presence_pb2 as ppb
from inbox.presence.v1 import presence_pb2_grpc as pgrpc
from inbox_core import ids
from inbox_core.topics import WHATSAPP_EVENTS
from inbox_testkit.ports import free_port

DB_PROFILE = Path(__file__).resolve().parent / "results" / "sustained_load-ferretdb-cpu.pprof"
MIX = (("webhook", 0.90), ("order", 0.05), ("composing", 0.05))


class Load:
    def __init__(self, stack: Any, agents: list[Agent], run: str) -> None:
        self.stack = stack
        self.agents = agents
        self.run = run
        self.done: dict[str, int] = {"webhook": 0, "order": 0, "composing": 0}
        self.failed: dict[str, int] = {"webhook": 0, "order": 0, "composing": 0}
        self.reasons: Counter[str] = Counter()  # why requests failed: "webhook 503", "order DEADLINE_EXCEEDED"
        # aiohttp, not httpx: the load shares the machine's cores with the system it measures.
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                          connector=aiohttp.TCPConnector(limit=256, keepalive_timeout=30))
        self.channels = [grpc.aio.insecure_channel(stack.grpc_target(n)) for n in ("orders", "presence")]
        self.orders = ogrpc.OrdersServiceStub(self.channels[0])
        self.presence = pgrpc.PresenceServiceStub(self.channels[1])

    async def close(self) -> None:
        await self.http.close()
        for channel in self.channels:
            await channel.close()

    async def one(self, kind: str, seq: int) -> None:
        agent = self.agents[seq % len(self.agents)]
        wa_id = f"1666{seq % (len(self.agents) * 20):07d}"
        conversation = ids.conversation_id(agent.workspace_id, agent.number_id, wa_id)
        try:
            if kind == "webhook":
                body, headers = signed_text_webhook(agent.number_id, wa_id, f"wamid.sl.{self.run}.{seq}", f"m {seq}")
                async with self.http.post(f"{self.stack.url('ingest')}/webhooks/whatsapp", data=body,
                                          headers=headers) as response:
                    await response.read()
                ok = response.status == 200
                if not ok:
                    self.reasons[f"webhook {response.status}"] += 1
            elif kind == "order":
                await self.orders.Create(opb.CreateOrderRequest(
                    workspace_id=agent.workspace_id, conversation_id=conversation,
                    customer_id=ids.customer_id(agent.workspace_id, wa_id),
                    items=[opb.OrderItem(sku="SKU-1", name="Item", quantity=1, unit_price="19.90")],
                    idempotency_key=f"{self.run}-{seq}", created_by=common_pb2.Actor(id="bench", name="Bench"),
                    currency="EUR"), timeout=30)
                ok = True
            else:
                await self.presence.SetComposing(ppb.SetComposingRequest(
                    workspace_id=agent.workspace_id, agent=common_pb2.Actor(id=f"agent-{seq % 7}", name="Bench"),
                    conversation_id=conversation, composing=True), timeout=30)
                ok = True
        except (aiohttp.ClientError, TimeoutError) as exc:
            ok = False
            self.reasons[f"{kind} {type(exc).__name__}"] += 1
        except grpc.aio.AioRpcError as exc:
            ok = False
            self.reasons[f"{kind} {exc.code().name}"] += 1
        self.done[kind] += ok
        self.failed[kind] += not ok


async def drain_streams(url: str, agents: list[Agent], count: int
                        ) -> tuple[list[asyncio.Task[None]], dict[str, int], aiohttp.ClientSession]:
    counters = {"bytes": 0, "open": 0}
    session = aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                                    connector=aiohttp.TCPConnector(limit=0))

    async def follow(token: str) -> None:
        try:
            async with session.get("/api/stream", headers={"Authorization": f"Bearer {token}"}) as r:
                counters["open"] += 1
                async for chunk in r.content.iter_any():
                    counters["bytes"] += len(chunk)
        finally:
            counters["open"] -= 1

    tasks = [asyncio.create_task(follow(agents[n % len(agents)].token)) for n in range(count)]
    return tasks, counters, session


async def raw_drain_rate(bootstrap: str, limit_s: float = 15.0) -> dict[str, Any]:
    """The consumer ceiling: a no-op consumer group reading whatsapp.events.v1 from the start."""
    consumer = AIOKafkaConsumer(WHATSAPP_EVENTS.name, bootstrap_servers=bootstrap,
                                group_id=f"bench-raw-{uuid.uuid4().hex}", auto_offset_reset="earliest",
                                enable_auto_commit=False, max_poll_records=1000)
    await consumer.start()
    try:
        count, started, idle_since = 0, time.monotonic(), time.monotonic()
        while time.monotonic() - started < limit_s and time.monotonic() - idle_since < 2:
            batch = await consumer.getmany(timeout_ms=500, max_records=5000)
            n = sum(len(records) for records in batch.values())
            if n:
                count += n
                idle_since = time.monotonic()
        elapsed = max(1e-6, idle_since - started)
        return {"records": count, "per_s": round(count / elapsed, 1)}
    finally:
        await consumer.stop()


async def profile_database(debug_port: int, delay_s: float, seconds: float) -> None:
    """FerretDB's CPU profile (Go's pprof) over ``seconds``, after ``delay_s``, saved beside the results."""
    await asyncio.sleep(delay_s)
    async with httpx.AsyncClient(timeout=seconds + 30) as debug:
        response = await debug.get(f"http://127.0.0.1:{debug_port}/debug/pprof/profile",
                                   params={"seconds": int(seconds)})
    response.raise_for_status()
    DB_PROFILE.write_bytes(response.content)
    print(f"  FerretDB CPU profile: {DB_PROFILE} (go tool pprof -top .local/bin/ferretdb {DB_PROFILE})", flush=True)


async def measure(stack: Any, srv: Servers, rate: float, seconds: float, after_s: float, sample_s: float,
                  stream_count: int, workspace_count: int, db_debug_port: int = 0) -> dict[str, Any]:
    agents = await workspaces_with_agents(stack, workspace_count)
    before = await asyncio.to_thread(usage, stack, srv)
    tasks, stream_counters, streams = await drain_streams(stack.url("gateway"), agents, stream_count)
    load = Load(stack, agents, uuid.uuid4().hex[:6])
    bootstrap, prefix = stack.settings.kafka_bootstrap, stack.settings.db_prefix
    samples: list[dict[str, Any]] = []
    rng = random.Random(1)
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    in_flight: set[asyncio.Task[None]] = set()
    slots = 256
    skipped = 0
    begin = time.monotonic()

    async def sampler(until: float) -> None:
        while time.monotonic() < until:
            lag = await consumer_lag(bootstrap, prefix)
            samples.append({"t_s": round(time.monotonic() - begin, 1), **{g.removeprefix(prefix): v
                                                                          for g, v in lag.items()}})
            await asyncio.sleep(sample_s)

    sampling = asyncio.create_task(sampler(begin + seconds + after_s))
    profiling = asyncio.create_task(profile_database(db_debug_port, seconds / 2, max(1.0, seconds / 2 - 1))) \
        if db_debug_port else None
    try:
        seq = 0
        while time.monotonic() - begin < seconds:
            seq += 1
            if len(in_flight) >= slots:
                skipped += 1  # the system does not keep up: offered but not sent (no unbounded queue here)
            else:
                task = asyncio.create_task(load.one(rng.choices(kinds, weights)[0], seq))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            await asyncio.sleep(max(0.0, begin + seq / rate - time.monotonic()))
        await asyncio.gather(*in_flight)
        load_s = time.monotonic() - begin
        await sampling
        after = await asyncio.to_thread(usage, stack, srv)
        if profiling is not None:
            await profiling
    finally:
        await load.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await streams.close()
    ceiling = await raw_drain_rate(bootstrap)
    # Per message of the mix handled (webhooks, orders, composing signals alike).
    used = usage_rows(before, after, sum(load.done.values()))
    return {"offered": seq, "skipped": skipped, "done": load.done, "failed": load.failed,
            "failure_reasons": dict(load.reasons), "load_s": round(load_s, 1),
            "samples": samples, "ceiling_raw_consumer": ceiling, "stream_bytes": stream_counters["bytes"],
            "usage": used}


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=1000.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--after", type=float, default=30.0)
    parser.add_argument("--sample", type=float, default=3.0)
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--workspaces", type=int, default=10)
    parser.add_argument("--profile-db", action="store_true", help="save FerretDB's CPU profile over the load")
    args = parser.parse_args()
    raise_fd_limit()
    db_debug_port = free_port() if args.profile_db else 0
    with servers(db_debug_port) as srv, system(srv, "sustained", {"GATEWAY_LOGIN_MAX_PER_IP": "100000"}) as stack:
        result = asyncio.run(measure(stack, srv, args.rate, args.seconds, args.after, args.sample, args.streams,
                                     args.workspaces, db_debug_port))
    samples = result["samples"]
    groups = sorted({k for s in samples for k in s if k != "t_s"})
    print(f"machine: {machine()}; offered {args.rate:g} events/s for {args.seconds:.0f} s "
          f"({result['offered']} events, {result['skipped']} not sent: {256} already in flight), "
          f"done {result['done']}, failed {result['failed']} {result['failure_reasons'] or ''}")
    print_table("consumer lag (messages left), sampled", samples, ["t_s", *groups])
    done = sum(result["done"].values())
    accepted = round(done / result["load_s"], 1)
    last = samples[-1] if samples else {}
    peak = {g: max((s.get(g, 0) for s in samples), default=0) for g in groups}
    # When each consumer's lag was back to zero after the load (None: not within the run).
    drained = {g: next((round(s["t_s"] - result["load_s"], 1) for s in samples
                        if s["t_s"] >= result["load_s"] and not s.get(g)), None) for g in groups}
    left = sum(v for k, v in last.items() if k != "t_s")
    # Through every service: what was accepted, over the time until the slowest consumer had handled it
    # all; when one had not by the end of the run, what was handled by then (a lower bound).
    if all(v is not None for v in drained.values()):
        achieved = round(done / (result["load_s"] + max([0.0, *(v or 0.0 for v in drained.values())])), 1)
    else:
        achieved = round(max(0, done - max(last.get(g, 0) for g in groups)) / (result["load_s"] + args.after), 1)
    rows = [{"path": "sustained mix (webhooks, orders, composing)", "offered_per_s": args.rate,
             "accepted_per_s": accepted, "achieved_per_s": achieved, "peak_lag": max(peak.values(), default=0),
             "lag_after": left},
            {"path": "ceiling: raw consumer of whatsapp.events.v1", "achieved_per_s":
             result["ceiling_raw_consumer"]["per_s"]}]
    print_table("sustained load (achieved: through every service, until the slowest consumer caught up)", rows,
                ["path", "offered_per_s", "accepted_per_s", "achieved_per_s", "peak_lag", "lag_after"])
    for group in groups:
        print(f"  {group}: peak lag {peak[group]}, {args.after:.0f} s after the load {last.get(group, 0)}")
    print_usage(result["usage"], done)
    print("  lag back to 0 after the load (s, ceiling 30):", drained)
    summary = [{"metric": f"sustained: events/s through every service (offered {args.rate:g}/s)",
                "value": achieved, "unit": "/s", "ceiling": args.rate, "ceiling_is": "offered rate",
                "note": f"lag peak {rows[0]['peak_lag']}, {args.after:.0f} s after: {rows[0]['lag_after']}; raw "
                        f"consumer drains {result['ceiling_raw_consumer']['per_s']}/s"}]
    print("saved", save("sustained_load", {"rate": args.rate, "seconds": args.seconds, "after": args.after,
                                            **result, "rows": rows, "peak_lag": peak, "summary": summary}))


if __name__ == "__main__":
    main()
