"""Webhook to stream: from the start of Meta's webhook POST to the message's event on ``/api/stream``.

The whole system runs (every service its own process, inbox_testkit.stack.Stack). ``--workspaces``
workspaces, each with one agent and one connected number, hold ``--streams`` open streams between them
(aiohttp streaming clients; an agent with several tabs). Customer messages are posted, signed, at a
steady rate (each rate for ``--seconds``), round robin over the numbers; one stream per workspace
looks for each message's wamid in what it receives, the others just read. Figures per rate: webhooks
answered 200, events seen on the stream within ``--wait`` s after the last post, latency p50/p99/p99.9.

Beside them, in the same run and at the same rate: the webhook's own answer (POST to 200) and the
ceiling of any Kafka pipeline here, a raw aiokafka produce -> consume round trip.

    uv run python bench/webhook_to_stream.py [--rates 5,200,500] [--seconds 15] [--streams 1000]

Where the consumers cannot keep up with a rate, messages not seen within ``--wait`` count as slower
than it (a percentile that falls on them reads ">N ms"), the backlog left is shown (``lag_left``), and
the next rate starts with what is left of it after at most ``--wait`` more seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    Agent,
    Servers,
    consumer_lag,
    ensure_topic,
    exit_on_sigterm,
    machine,
    partitions_of,
    percentiles,
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

WAMID = re.compile(rb"wamid\.bs\.([0-9a-f]{6})\.(\d+)")
CEILING_TOPIC = "bench.roundtrip.v1"


class Streams:
    """The open streams; ``seen[(run, seq)]`` is when a measuring stream first saw that message's wamid."""

    def __init__(self, url: str) -> None:
        self.url = url
        # aiohttp, not httpx: the streams and the load share the machine's cores with what they measure.
        self.client = aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=None, sock_connect=30),
                                            connector=aiohttp.TCPConnector(limit=0))
        self.seen: dict[tuple[str, int], float] = {}
        self.connected = 0
        self.closed = 0
        self.bytes = 0
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, agents: list[Agent], total: int) -> None:
        per_agent = max(1, total // len(agents))
        ready: list[asyncio.Event] = []
        for agent in agents:
            for k in range(per_agent):
                event = asyncio.Event()
                ready.append(event)
                self.tasks.append(asyncio.create_task(self._follow(agent.token, measuring=k == 0, ready=event)))
                if len(self.tasks) % 100 == 0:
                    await asyncio.sleep(0.2)  # let the gateway take them in batches
        await asyncio.wait_for(asyncio.gather(*(e.wait() for e in ready)), timeout=180)

    async def _follow(self, token: str, measuring: bool, ready: asyncio.Event) -> None:
        headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
        try:
            async with self.client.get("/api/stream", headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"stream answered {response.status}: {(await response.read())[:300]!r}")
                self.connected += 1
                ready.set()
                tail = b""
                async for chunk in response.content.iter_any():
                    self.bytes += len(chunk)
                    if not measuring:
                        continue
                    now = time.monotonic()
                    data = tail + chunk
                    for match in WAMID.finditer(data):
                        self.seen.setdefault((match.group(1).decode(), int(match.group(2))), now)
                    tail = data[-64:]
        finally:
            self.closed += 1
            ready.set()

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.client.close()


async def post_at_rate(ingest_url: str, agents: list[Agent], rate: float, seconds: float, run: str
                       ) -> tuple[dict[int, float], list[float], int]:
    """Posts ``rate`` webhooks a second for ``seconds``; returns each answered message's POST start time,
    the POST-to-200 latencies, and the number not answered 200."""
    started: dict[int, float] = {}
    answer_s: list[float] = []
    refused = 0
    total = int(rate * seconds)
    slots = asyncio.Semaphore(512)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                     connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=30)) as client:

        async def one(seq: int) -> None:
            nonlocal refused
            agent = agents[seq % len(agents)]
            wa_id = f"1555{seq % (len(agents) * 5):07d}"
            body, headers = signed_text_webhook(agent.number_id, wa_id, f"wamid.bs.{run}.{seq}", f"order {seq}?")
            async with slots:
                t0 = time.monotonic()
                try:
                    async with client.post(f"{ingest_url}/webhooks/whatsapp", data=body, headers=headers) as response:
                        await response.read()
                    ok = response.status == 200
                except (aiohttp.ClientError, TimeoutError):
                    ok = False
                if ok:
                    started[seq] = t0
                    answer_s.append(time.monotonic() - t0)
                else:
                    refused += 1

        begin = time.monotonic()
        tasks = []
        for seq in range(total):
            tasks.append(asyncio.create_task(one(seq)))
            await asyncio.sleep(max(0.0, begin + (seq + 1) / rate - time.monotonic()))
        # Bounded: what ingest has not answered 10 s after the last post is counted as not answered 200.
        _, late = await asyncio.wait(tasks, timeout=10)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)
    return started, answer_s, refused + len(late)


async def kafka_roundtrip(bootstrap: str, rate: float, seconds: float) -> dict[str, Any]:
    """The ceiling: produce (acks=all) -> consume on a plain topic at the same rate; latency per record."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await producer.start()
    await consumer.start()
    try:
        await ensure_topic(bootstrap, CEILING_TOPIC, partitions=1)
        tps = [TopicPartition(CEILING_TOPIC, p) for p in await partitions_of(bootstrap, CEILING_TOPIC)]
        consumer.assign(tps)
        await consumer.seek_to_end(*tps)
        for tp in tps:
            await consumer.position(tp)
        sent: dict[bytes, float] = {}
        latencies: list[float] = []
        total = int(rate * seconds)

        async def produce() -> None:
            begin = time.monotonic()
            pending = []
            for seq in range(total):
                key = str(seq).encode()
                sent[key] = time.monotonic()
                pending.append(await producer.send(CEILING_TOPIC, b"x" * 600, key=key))
                await asyncio.sleep(max(0.0, begin + (seq + 1) / rate - time.monotonic()))
            await asyncio.gather(*pending)

        producing = asyncio.create_task(produce())
        deadline = time.monotonic() + seconds + 30
        while len(latencies) < total and time.monotonic() < deadline:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                now = time.monotonic()
                latencies.extend(now - sent[r.key] for r in records if r.key in sent)
        await producing
        return {"sent": total, "seen": len(latencies), **percentiles(latencies)}
    finally:
        await consumer.stop()
        await producer.stop()


async def caught_up(stack: Any, within_s: float) -> int:
    """Waits (at most ``within_s``) until no consumer group of the stack has anything left; returns the lag."""
    deadline = time.monotonic() + within_s
    while True:
        lag = sum((await consumer_lag(stack.settings.kafka_bootstrap, stack.settings.db_prefix)).values())
        if not lag or time.monotonic() > deadline:
            return lag
        await asyncio.sleep(1)


def censored_percentiles(seen_s: list[float], unseen: int, wait_s: float) -> dict[str, Any]:
    """p50/p99/p99.9 over every message, those not seen within the wait counted as longer than it:
    a figure that falls on one of them is shown as ">N ms"."""
    ordered = sorted(seen_s) + [float("inf")] * unseen
    if not ordered:
        return {"p50_ms": None, "p99_ms": None, "p999_ms": None}
    out: dict[str, Any] = {}
    for name, q in (("p50_ms", 0.5), ("p99_ms", 0.99), ("p999_ms", 0.999)):
        value = ordered[min(len(ordered) - 1, int(q * len(ordered)))]
        out[name] = round(value * 1000, 1) if value != float("inf") else f">{wait_s * 1000:.0f}"
    return out


async def measure(stack: Any, srv: Servers, rates: list[float], seconds: float, stream_count: int,
                  workspace_count: int, wait_s: float) -> dict[str, Any]:
    agents = await workspaces_with_agents(stack, workspace_count)
    streams = Streams(stack.url("gateway"))
    opened = time.monotonic()
    await streams.open(agents, stream_count)
    print(f"{streams.connected} streams open ({streams.closed} closed) in {time.monotonic() - opened:.0f} s "
          f"over {len(agents)} workspaces", flush=True)
    rows: list[dict[str, Any]] = []
    used: dict[str, list[dict[str, Any]]] = {}
    try:
        # A warm-up: the first message of each customer creates its conversation and customer.
        await post_at_rate(stack.url("ingest"), agents, 20, 5, "000000")
        await caught_up(stack, 90)
        for rate in rates:
            run = uuid.uuid4().hex[:6]
            before = await asyncio.to_thread(usage, stack, srv)
            t0 = time.monotonic()
            started, answer_s, refused = await post_at_rate(stack.url("ingest"), agents, rate, seconds, run)
            posted_s = time.monotonic() - t0
            deadline = time.monotonic() + wait_s
            while time.monotonic() < deadline and any((run, s) not in streams.seen for s in started):
                await asyncio.sleep(0.5)
            latencies = [streams.seen[(run, s)] - t for s, t in started.items() if (run, s) in streams.seen]
            # Messages not seen within the wait count as slower than it (censored), so that a saturated
            # pipeline does not show the latency of only its first messages.
            censored = censored_percentiles(latencies, len(started) - len(latencies), wait_s)
            lag = await consumer_lag(stack.settings.kafka_bootstrap, stack.settings.db_prefix)
            rows.append({"path": f"webhook -> stream @ {rate:g}/s", "offered_per_s": rate,
                         "answered_200": len(started), "per_s": round(len(started) / posted_s, 1),
                         "refused": refused, "seen": len(latencies), "unseen": len(started) - len(latencies),
                         **censored, "streams_open": streams.connected - streams.closed,
                         "lag_left": sum(lag.values())})
            answer = percentiles(answer_s)
            rows.append({"path": f"  webhook POST -> 200 @ {rate:g}/s", "offered_per_s": rate,
                         "answered_200": len(started), "per_s": round(len(started) / posted_s, 1),
                         "refused": refused, **answer})
            ceiling = await kafka_roundtrip(stack.settings.kafka_bootstrap, rate, min(seconds, 10))
            rows.append({"path": f"  ceiling: raw Kafka produce -> consume @ {rate:g}/s", "offered_per_s": rate,
                         "answered_200": ceiling["sent"], "seen": ceiling["seen"],
                         **{k: v for k, v in ceiling.items() if k.endswith("_ms")}})
            print(f"  {rate:g}/s: {rows[-3]}", flush=True)
            # Let the consumers catch up (bounded) before the next rate, so rates do not add up.
            await caught_up(stack, wait_s)
            used[f"{rate:g}"] = usage_rows(before, await asyncio.to_thread(usage, stack, srv), len(started))
            print_usage(used[f"{rate:g}"], len(started))
    finally:
        await streams.close()
    return {"rows": rows, "streams": stream_count, "workspaces": workspace_count,
            "stream_bytes": streams.bytes, "usage": used}


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="5,200,500")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--wait", type=float, default=30.0, help="how long to wait for events after the posts")
    args = parser.parse_args()
    raise_fd_limit()
    rates = [float(r) for r in args.rates.split(",")]
    with servers() as srv, system(srv, "stream", {"GATEWAY_LOGIN_MAX_PER_IP": "100000"}) as stack:
        result = asyncio.run(measure(stack, srv, rates, args.seconds, args.streams, args.workspaces, args.wait))
    rows = result["rows"]
    print(f"machine: {machine()}; {args.streams} streams over {args.workspaces} workspaces; "
          f"{args.seconds:.0f} s per rate")
    print_table("webhook to stream", rows, ["path", "offered_per_s", "answered_200", "per_s", "refused", "seen",
                                            "unseen", "p50_ms", "p99_ms", "p999_ms", "lag_left"])
    summary = []
    for row in rows:
        if row["path"].startswith("webhook -> stream"):
            rate = row["offered_per_s"]
            ceiling = next(r for r in rows if r["path"].startswith("  ceiling") and r["offered_per_s"] == rate)
            summary.append({"metric": f"webhook->stream p99 @ {rate:g}/s, {args.streams} streams",
                            "value": row["p99_ms"], "unit": "ms", "ceiling": ceiling["p99_ms"],
                            "ceiling_is": "raw Kafka produce->consume p99",
                            "note": f"p50 {row['p50_ms']} ms, p99.9 {row['p999_ms']} ms; {row['per_s']}/s "
                                    f"answered; {row['unseen']} not seen within {args.wait:.0f} s"})
    for rate, used in result["usage"].items():
        print(f"@ {rate}/s:")
        print_usage(used, next((r["answered_200"] for r in rows if r["path"] == f"webhook -> stream @ {rate}/s"), 0))
    print("saved", save("webhook_to_stream", {"seconds": args.seconds, "streams": args.streams,
                                               "workspaces": args.workspaces, "rows": rows, "summary": summary,
                                               "usage": result["usage"]}))


if __name__ == "__main__":
    main()
