"""SSE memory: the gateway's resident memory per idle ``/api/stream`` connection at 5,000 and 10,000.

A gateway process of its own (``python -m inbox_gateway api``, its open-file limit raised to the hard
limit), part of a whole running system (inbox_testkit.stack.Stack: the database, Kafka, presence for the
stream's heartbeats). Connections are opened by one signed-in agent (plain sockets sending the stream
request; each reads its response headers and then stays idle, as a browser tab in the background). RSS
(VmRSS of /proc/<pid>/status) is read before, at 5,000 and at 10,000 connections, after a short settle.

Beside it, in the same run: the ceiling, the same server (uvicorn) holding the same number of streams
with an ASGI app that only sends keep-alives (bench/empty_sse_app.py).

    uv run python bench/sse_memory.py [--steps 5000,10000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    empty_app_command,
    exit_on_sigterm,
    machine,
    print_table,
    raise_fd_limit,
    save,
    servers,
    start_server,
    system,
    workspaces_with_agents,
)

from inbox_testkit.ports import free_port
from inbox_testkit.processes import rss_kib


def _high_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Connections:
    def __init__(self, port: int, token: str | None) -> None:
        self.port = port
        self.token = token
        self.open: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.failed = 0

    async def _one(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.port), 60)
            auth = f"Authorization: Bearer {self.token}\r\n" if self.token else ""
            writer.write(f"GET /api/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Accept: text/event-stream\r\n\r\n"
                         .encode())
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 120)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(head[:200].decode(errors="replace"))
            self.open.append((reader, writer))
        except (TimeoutError, OSError, RuntimeError, asyncio.IncompleteReadError) as exc:
            self.failed += 1
            if self.failed <= 3:
                print(f"  a connection failed: {exc!r}", flush=True)

    async def grow_to(self, total: int, concurrency: int = 200) -> None:
        while len(self.open) + self.failed < total:
            batch = min(concurrency, total - len(self.open) - self.failed)
            await asyncio.gather(*(self._one() for _ in range(batch)))

    def close(self) -> None:
        for _, writer in self.open:
            writer.close()
        self.open.clear()


async def measure_server(name: str, pid: int, port: int, token: str | None, steps: list[int],
                         settle_s: float) -> dict[str, Any]:
    warm = Connections(port, token)
    await warm.grow_to(50)
    warm.close()
    await asyncio.sleep(settle_s)
    base = rss_kib(pid)
    connections = Connections(port, token)
    points = []
    for step in steps:
        started = time.monotonic()
        await connections.grow_to(step)
        opened_s = time.monotonic() - started
        await asyncio.sleep(settle_s)
        rss = rss_kib(pid)
        points.append({"server": name, "connections": len(connections.open), "failed": connections.failed,
                       "rss_mib": round(rss / 1024, 1), "base_mib": round(base / 1024, 1),
                       "kib_per_connection": round((rss - base) / max(1, len(connections.open)), 1),
                       "open_s": round(opened_s, 1)})
        print(f"  {points[-1]}", flush=True)
    connections.close()
    return {"base_kib": base, "points": points}


async def measure(stack: Any, steps: list[int], settle_s: float, logs: Path) -> dict[str, Any]:
    (agent,) = await workspaces_with_agents(stack, 1)
    gateway_port, empty_port = free_port(), free_port()
    # An ops port of its own too: the stack's gateway holds the one in stack.env.
    env = {**stack.env, "GATEWAY_HTTP_PORT": str(gateway_port), "GATEWAY_OPS_PORT": str(free_port()),
           "INBOX_LOG_LEVEL": "WARNING"}
    gateway = start_server([sys.executable, "-m", "inbox_gateway", "api"], env, gateway_port, logs / "sse-gateway.log",
                           within_s=90, preexec_fn=_high_fd_limit)
    empty = start_server(empty_app_command("empty_sse_app:app", empty_port), env, empty_port, logs / "sse-empty.log",
                         within_s=90, preexec_fn=_high_fd_limit)
    try:
        gw = await measure_server("gateway /api/stream", gateway.pid, gateway_port, agent.token, steps, settle_s)
        ceiling = await measure_server("ceiling: uvicorn, keep-alives only", empty.pid, empty_port, None, steps,
                                       settle_s)
    finally:
        for proc in (gateway, empty):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
    return {"gateway": gw, "ceiling": ceiling}


def main() -> None:
    exit_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", default="5000,10000")
    parser.add_argument("--settle", type=float, default=5.0)
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    limit = raise_fd_limit(max(steps) + 1000)
    if limit < max(steps) + 100:
        raise SystemExit(f"the open-file limit is {limit}: too low for {max(steps)} connections")
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    with servers() as srv, system(srv, "sse", {"GATEWAY_LOGIN_MAX_PER_IP": "100000"}) as stack:
        result = asyncio.run(measure(stack, steps, args.settle, logs))
    rows = result["gateway"]["points"] + result["ceiling"]["points"]
    print(f"machine: {machine()}")
    print_table("SSE memory per idle connection", rows,
                ["server", "connections", "failed", "base_mib", "rss_mib", "kib_per_connection", "open_s"])
    summary = []
    for point in result["gateway"]["points"]:
        ceiling = next((c for c in result["ceiling"]["points"] if c["connections"] == point["connections"]), None)
        summary.append({"metric": f"SSE memory per idle connection @ {point['connections']:,}",
                        "value": point["kib_per_connection"], "unit": "KiB",
                        "ceiling": ceiling["kib_per_connection"] if ceiling else None,
                        "ceiling_is": "uvicorn holding keep-alive-only streams",
                        "note": f"gateway RSS {point['base_mib']} -> {point['rss_mib']} MiB; {point['failed']} failed"})
    print("saved", save("sse_memory", {"steps": steps, **result, "rows": rows, "summary": summary}))


if __name__ == "__main__":
    main()
