"""Presence: SetComposing(on) to its ``presence.composing.started`` event on Kafka, p50/p99.

One presence replica in-process (``inbox_presence.__main__.assemble(settings, "api", metrics=False)``,
its gRPC server on a free port), called over gRPC. A reader assigned to every partition of
``inbox.presence.v1`` (from the end) times each call from just before SetComposing(on) for a fresh
conversation id to the arrival of that conversation's ``composing.started``. The calls are sequential
(one agent typing in one conversation after another).

Beside it, in the same run: the SetComposing call alone (gRPC answer), and the ceiling of any event
here, a raw aiokafka produce (acks=all) -> consume round trip on the same topic's reader.

    uv run python bench/presence_composing.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ensure_topic, exit_on_sigterm, machine, partitions_of, percentiles, print_table, save, servers

from inbox.common.v1 import common_pb2
from inbox.presence.v1 import presence_pb2 as ppb
from inbox.presence.v1 import presence_pb2_grpc as pgrpc
from inbox_core.events import Event
from inbox_core.settings import InboxSettings
from inbox_core.topics import PRESENCE
from inbox_presence.__main__ import assemble
from inbox_presence.settings import PresenceSettings

CEILING_TOPIC = "bench.presence-roundtrip.v1"


class Arrivals:
    """Reads a topic from its end; ``wait(key)`` returns when a record with that marker arrived."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.bootstrap = bootstrap
        self.topic = topic
        self.waiting: dict[str, asyncio.Future[float]] = {}
        self.task: asyncio.Task[None] | None = None

    async def start(self, marker: Any) -> None:
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in await partitions_of(self.bootstrap, self.topic)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self.task = asyncio.create_task(self._read(marker))

    async def _read(self, marker: Any) -> None:
        while True:
            for records in (await self.consumer.getmany(timeout_ms=100)).values():
                now = time.monotonic()
                for record in records:
                    key = marker(record)
                    future = self.waiting.get(key) if key else None
                    if future is not None and not future.done():
                        future.set_result(now)

    def expect(self, key: str) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[key] = future
        return future

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
        await self.consumer.stop()


def composing_started(record: Any) -> str | None:
    event = Event.from_bytes(record.value)
    return str(event.data.get("conversation_id")) if event.type == "presence.composing.started" else None


async def measure(bootstrap: str, mongo_url: str, calls: int) -> dict[str, Any]:
    settings = PresenceSettings(inbox=InboxSettings(kafka_bootstrap=bootstrap, mongo_url=mongo_url,
                                                    db_prefix=f"bpres{uuid.uuid4().hex[:6]}"), grpc_port=0)
    presence = assemble(settings, "api", metrics=False)
    parts = presence.components(ops=False)
    for part in parts:
        await part.start()
    assert presence.server is not None
    arrivals = Arrivals(bootstrap, PRESENCE.name)
    await arrivals.start(composing_started)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{presence.server.port}")
    stub = pgrpc.PresenceServiceStub(channel)
    workspace = f"w-{uuid.uuid4().hex[:8]}"
    agent = common_pb2.Actor(id="agent-bench", name="Bench Agent")
    event_s: list[float] = []
    call_s: list[float] = []
    lost = 0
    try:
        for n in range(calls + 10):
            conversation = f"cnv_bench_{uuid.uuid4().hex[:16]}"
            arrived = arrivals.expect(conversation)
            t0 = time.monotonic()
            await stub.SetComposing(ppb.SetComposingRequest(workspace_id=workspace, agent=agent,
                                                            conversation_id=conversation, composing=True), timeout=10)
            t1 = time.monotonic()
            try:
                at = await asyncio.wait_for(arrived, 10)
            except TimeoutError:
                lost += 1
                continue
            if n >= 10:  # the first ten warm up
                call_s.append(t1 - t0)
                event_s.append(at - t0)
            # Stops it, so that the agent has one composing session at a time (as in the UI).
            await stub.SetComposing(ppb.SetComposingRequest(workspace_id=workspace, agent=agent,
                                                            conversation_id=conversation, composing=False), timeout=10)
        ceiling = await kafka_roundtrip(bootstrap, calls)
    finally:
        await channel.close()
        await arrivals.stop()
        for part in reversed(parts):
            await part.stop()
    return {"rows": [
        {"path": "SetComposing(on) -> composing.started on Kafka", "samples": len(event_s), "lost": lost,
         **percentiles(event_s)},
        {"path": "  SetComposing(on) answered (gRPC)", "samples": len(call_s), **percentiles(call_s)},
        {"path": "  ceiling: raw produce (acks=all) -> consume", "samples": ceiling["samples"],
         **{k: v for k, v in ceiling.items() if k.endswith("_ms")}},
    ]}


async def kafka_roundtrip(bootstrap: str, calls: int) -> dict[str, Any]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    await ensure_topic(bootstrap, CEILING_TOPIC, partitions=1)
    arrivals = Arrivals(bootstrap, CEILING_TOPIC)
    await arrivals.start(lambda record: record.key.decode() if record.key else None)
    samples: list[float] = []
    try:
        for n in range(calls):
            key = f"k{n}"
            arrived = arrivals.expect(key)
            t0 = time.monotonic()
            await producer.send_and_wait(CEILING_TOPIC, b"x" * 400, key=key.encode())
            samples.append(await asyncio.wait_for(arrived, 10) - t0)
    finally:
        await arrivals.stop()
        await producer.stop()
    return {"samples": len(samples), **percentiles(samples)}


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    with servers() as srv:
        result = asyncio.run(measure(srv.kafka_bootstrap, srv.mongo_url, args.calls))
    rows = result["rows"]
    print(f"machine: {machine()}; {args.calls} sequential calls")
    print_table("presence: composing to event", rows, ["path", "samples", "lost", "p50_ms", "p99_ms", "p999_ms"])
    summary = [{"metric": "presence SetComposing -> event p99", "value": rows[0]["p99_ms"], "unit": "ms",
                "ceiling": rows[2]["p99_ms"], "ceiling_is": "raw Kafka produce->consume p99",
                "note": f"p50 {rows[0]['p50_ms']} ms (ceiling {rows[2]['p50_ms']} ms); gRPC answer p50 "
                        f"{rows[1]['p50_ms']} ms"}]
    print("saved", save("presence_composing", {"calls": args.calls, "rows": rows, "summary": summary}))


if __name__ == "__main__":
    main()
