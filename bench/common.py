"""What every benchmark shares: the real servers, the machine's description, percentiles, results.

Benchmarks are not tests: they print figures beside a ceiling measured in the same run (machines here
are noisy, so only the ratio means much) and write them as JSON under bench/results/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inbox_core.topics import ensure_topics

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass
class Servers:
    kafka_bootstrap: str
    mongo_url: str
    # The servers' own processes, where this run started them (for their CPU time, see usage()).
    pids: dict[str, int] = field(default_factory=dict)


@contextmanager
def servers(ferret_debug_port: int = 0) -> Iterator[Servers]:
    """Running servers from INBOX_TEST_KAFKA / INBOX_TEST_MONGO_URL, or our own on free ports (FerretDB with
    its debug server on ``ferret_debug_port``, for a CPU profile, when not 0)."""
    kafka_env, mongo_env = os.environ.get("INBOX_TEST_KAFKA"), os.environ.get("INBOX_TEST_MONGO_URL")
    if kafka_env and mongo_env:
        asyncio.run(ensure_topics(kafka_env))
        yield Servers(kafka_env, mongo_env)
        return
    from inbox_testkit.infra import local_infra

    with local_infra("inbox-bench-", ferret_debug_port) as servers:
        asyncio.run(ensure_topics(servers.kafka_bootstrap))
        pids = {name: pid for name, server in (("kafka", servers.kafka), ("ferretdb", servers.ferret))
                if server is not None and (pid := server.process.pid()) is not None}
        yield Servers(servers.kafka_bootstrap, servers.mongo_url, pids)


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        pass
    return {"cores": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "python": platform.python_version(), "platform": platform.platform()}


def percentiles(samples_s: list[float]) -> dict[str, float]:
    if not samples_s:
        return {"p50_ms": float("nan"), "p99_ms": float("nan"), "p999_ms": float("nan")}
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": round(at(0.5), 2), "p99_ms": round(at(0.99), 2), "p999_ms": round(at(0.999), 2),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 2)}


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    print(f"\n{title}")
    widths = [max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(w) for c, w in zip(columns, widths, strict=True)))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "" if value is None else str(value)


def save(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    result = {"benchmark": name, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "machine": machine(), **result}
    path.write_text(json.dumps(result, indent=2, default=str))
    return path


# --- The whole system, for the benchmarks that go through every service ------------------------------------
# (Added for bench/run_all.py and the system benchmarks; the functions above are unchanged.)


def raise_fd_limit(wanted: int = 65536) -> int:
    """Raises this process's open-file limit as far as the hard limit allows; returns the new soft limit."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(wanted, hard) if hard != resource.RLIM_INFINITY else wanted
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_server(cmd: list[str], env: dict[str, str], port: int, log: Path, within_s: float,
                 preexec_fn: Callable[[], None] | None = None) -> subprocess.Popen[bytes]:
    """Starts ``cmd`` in the repository's root, its output into ``log``, and waits until it listens on
    ``port``; fails with the log's end when it exits first or is not listening within ``within_s``."""
    from inbox_testkit.paths import REPO_ROOT
    from inbox_testkit.ports import port_open

    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                                preexec_fn=preexec_fn)
    deadline = time.monotonic() + within_s
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{cmd} did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)
    return proc


def empty_app_command(app: str, port: int) -> list[str]:
    """uvicorn serving one of the ceilings' empty apps beside this file (``empty_webhook_app:app``)."""
    return [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(__file__).parent), "--port", str(port),
            "--log-level", "warning", "--no-access-log", app]


@contextmanager
def system(srv: Servers, name: str, extra_env: dict[str, str] | None = None) -> Iterator[Any]:
    """Every service as its own process (inbox_testkit.stack.Stack) against ``srv``, with a database
    prefix of its own; ``extra_env`` reaches every service (the Stack copies this process's environment).
    With INBOX_BENCH_KEEP_LOGS=1 the services' folder (their logs) is kept and named at the end."""
    import uuid

    from inbox_core.settings import InboxSettings
    from inbox_testkit.infra import Infra
    from inbox_testkit.stack import Stack

    saved = {k: os.environ.get(k) for k in (extra_env or {})}
    os.environ.update(extra_env or {})
    settings = InboxSettings(kafka_bootstrap=srv.kafka_bootstrap, mongo_url=srv.mongo_url,
                             db_prefix=f"b{name[:6]}{uuid.uuid4().hex[:6]}")
    home = Path(tempfile.mkdtemp(prefix=f"inbox-bench-{name}-"))
    _patient_startup()
    stack = Stack(Infra(srv.kafka_bootstrap, srv.mongo_url, "bench"), settings, home)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if os.environ.get("INBOX_BENCH_KEEP_LOGS") == "1":
            print(f"the services' logs are kept in {home}", flush=True)
        else:
            shutil.rmtree(home, ignore_errors=True)


STARTUP_S = float(os.environ.get("INBOX_BENCH_STARTUP_S", "300"))


def _patient_startup() -> None:
    """Gives each service STARTUP_S to open its port (the Stack's 90 s is short on a shared, loaded
    machine, where seven services importing and joining their consumer groups at once take longer)."""
    from inbox_testkit.processes import ServiceProcess

    original = ServiceProcess.wait_port
    if getattr(original, "patient", False):
        return

    def wait_port(self: Any, port: int, timeout: float = 90) -> None:
        original(self, port, timeout=max(timeout, STARTUP_S))

    wait_port.patient = True  # type: ignore[attr-defined]
    ServiceProcess.wait_port = wait_port  # type: ignore[method-assign]


@dataclass
class Agent:
    workspace_id: str
    email: str
    token: str
    number_id: str


BENCH_PASSWORD = "bench-password-123"  # agents of throwaway benchmark workspaces


def waba_of(number: str) -> str:
    """The business account of a benchmark's number (one each; numeric, as Meta's ids are)."""
    return f"7{number}"


async def workspaces_with_agents(stack: Any, count: int, number_ids: list[str] | None = None,
                                 password: str = BENCH_PASSWORD) -> list[Agent]:
    """``count`` workspaces made by the gateway's own account code, one agent in each (signed in over
    HTTP, so each has a real session token) and one WhatsApp number connected to each through ingest."""
    import uuid

    import grpc
    import httpx

    from inbox.ingest.v1 import ingest_pb2 as ipb
    from inbox.ingest.v1 import ingest_pb2_grpc as igrpc
    from inbox_gateway.gateway import Gateway
    from inbox_gateway.settings import GatewaySettings
    from inbox_testkit.stack import STACK_SECRETS

    settings = GatewaySettings(inbox=stack.settings, jwt_secret=STACK_SECRETS["GATEWAY_JWT_SECRET"])
    gateway = Gateway(settings, stream=False)
    numbers = number_ids or [f"9{n:014d}" for n in range(1, count + 1)]
    made: list[tuple[str, str, str]] = []
    try:
        await gateway.accounts.ensure_indexes()
        password_hash = await gateway.auth.passwords.hash(password)
        run = uuid.uuid4().hex[:6]
        for n in range(count):
            workspace = await gateway.accounts.create_workspace(f"Bench shop {n}", "EUR")
            email = f"agent{n}.{run}@bench.test"
            agent, _ = await gateway.accounts.create_agent(email, f"Bench Agent {n}", password_hash)
            await gateway.accounts.set_membership(workspace.id, agent.id, "admin")
            made.append((workspace.id, email, numbers[n]))
    finally:
        await gateway.client.close()
    async with grpc.aio.insecure_channel(stack.grpc_target("ingest")) as channel:
        ingest = igrpc.IngestServiceStub(channel)
        for workspace_id, _, number in made:
            stack.register_number(number, waba_of(number))
            await ingest.UpsertChannel(ipb.UpsertChannelRequest(channel=ipb.Channel(
                phone_number_id=number, workspace_id=workspace_id, waba_id=waba_of(number),
                display_phone_number=number, name="Bench number"),
                access_token=STACK_SECRETS["SANDBOX_ACCESS_TOKEN"]), timeout=10)
    agents = []
    async with httpx.AsyncClient(base_url=stack.url("gateway"), timeout=60) as client:
        for workspace_id, email, number in made:
            reply = await client.post("/api/auth/login", json={"email": email, "password": password})
            reply.raise_for_status()
            agents.append(Agent(workspace_id, email, reply.json()["token"], number))
    return agents


def signed_text_webhook(number: str, wa_id: str, wamid: str, text: str, name: str = "Bench Customer",
                        ts: int | None = None) -> tuple[bytes, dict[str, str]]:
    """A customer's text message as Meta posts it, with its signature header for the Stack's app secret."""
    from inbox_sandbox.domain.signing import signature
    from inbox_testkit.stack import STACK_SECRETS

    body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": f"WABA{number}", "changes": [{
        "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": number, "phone_number_id": number},
            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
            "messages": [{"from": wa_id, "id": wamid, "timestamp": str(ts or int(time.time())), "type": "text",
                          "text": {"body": text}}]}}]}]}, separators=(",", ":")).encode()
    return body, {"X-Hub-Signature-256": signature(STACK_SECRETS["INGEST_META_APP_SECRET"], body),
                  "Content-Type": "application/json"}


async def consumer_lag(bootstrap: str, group_prefix: str) -> dict[str, int]:
    """Per consumer group whose name starts with ``group_prefix``: end offsets minus committed offsets,
    summed over the group's partitions (what is left to consume)."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await admin.start()
    await consumer.start()
    try:
        groups = [g[0] for g in await admin.list_consumer_groups() if str(g[0]).startswith(group_prefix)]
        lags: dict[str, int] = {}
        for group in sorted(groups):
            committed = await admin.list_consumer_group_offsets(group)
            if not committed:
                lags[group] = 0
                continue
            ends = await consumer.end_offsets(list(committed))
            lags[group] = sum(max(0, ends[tp] - meta.offset) for tp, meta in committed.items() if meta.offset >= 0)
        return lags
    finally:
        await consumer.stop()
        await admin.close()


async def ensure_topic(bootstrap: str, name: str, partitions: int = 1) -> None:
    """Creates a benchmark's own topic if it is missing (the ceilings' round trips use one)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        if name not in await admin.list_topics():
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(name=name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def partitions_of(bootstrap: str, topic: str) -> list[int]:
    """The topic's partition numbers (a consumer's own metadata only knows topics it subscribed to)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            (described,) = await admin.describe_topics([topic])
            found = sorted(p["partition"] for p in described.get("partitions") or [])
            if found or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.3)
    finally:
        await admin.close()


def exit_on_sigterm() -> None:
    """SIGTERM (run_all's time limit, or a plain ``kill``) ends the benchmark as an exception would, so that
    its ``with`` blocks stop the services and the servers it started (they run in sessions of their own)."""
    import signal

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


# --- Where the time goes: CPU per process and database operations per service ------------------------------


def _process_tree_cpu_s(root: int) -> float:
    """User + system CPU seconds of a process and every process under it (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0.0) for pid in tree)


def _database_ops(ops_port: int) -> dict[str, float]:
    """Database commands a service has sent, per command and collection (the counts of
    ``inbox_mongo_command_seconds``: find, insert, update, delete, findAndModify, count, aggregate,
    distinct), keyed ``"command collection"``."""
    import httpx

    text = httpx.get(f"http://127.0.0.1:{ops_port}/metrics", timeout=10).text
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith("inbox_mongo_command_seconds_count{"):
            continue
        labels, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        key = f"{found.get('command', '?')} {found.get('collection', '?')}"
        counts[key] = counts.get(key, 0.0) + float(value)
    return counts


# Services whose database operations are counted, and the ops port (a Stack's ``ports`` key) of each.
DATABASE_USERS = {"conversations": "conversations_ops", "customers": "customers_ops", "orders": "orders_ops",
                  "ingest (webhook)": "ingest_api_ops", "ingest (worker)": "ingest_ops"}


def usage(stack: Any, srv: Servers) -> dict[str, Any]:
    """A snapshot: CPU seconds of each service's process and of Kafka and FerretDB (where this run
    started them), and the database operations each service has sent."""
    cpu = {name: _process_tree_cpu_s(process.proc.pid) for name, process in stack.processes.items()
           if process.proc is not None}
    cpu.update({name: _process_tree_cpu_s(pid) for name, pid in srv.pids.items()})
    # The benchmark itself (load, streams read, lag sampled) shares the machine: its CPU is a row too.
    own = os.times()
    cpu["(this benchmark: load and clients)"] = own.user + own.system
    import httpx

    ops: dict[str, dict[str, float]] = {}
    for name, port in DATABASE_USERS.items():
        if port in stack.ports:
            with contextlib.suppress(httpx.HTTPError):  # a port this stack's roles do not serve
                ops[name] = _database_ops(stack.ports[port])
    return {"cpu_s": cpu, "db_ops": ops}


def usage_rows(before: dict[str, Any], after: dict[str, Any],
               messages: int) -> list[dict[str, Any]]:
    """Per process, CPU seconds per 1,000 messages, and per service database operations per message."""
    per = max(1, messages)
    rows: list[dict[str, Any]] = []
    for name in sorted(after["cpu_s"]):
        used = after["cpu_s"][name] - before["cpu_s"].get(name, 0.0)
        row: dict[str, Any] = {"process": name, "cpu_s": round(used, 1),
                               "cpu_s_per_1000": round(used * 1000 / per, 2)}
        rows.append(row)
    for name in sorted(after["db_ops"]):
        if name not in before["db_ops"]:
            continue
        was, now = before["db_ops"][name], after["db_ops"][name]
        each = {key: count - was.get(key, 0.0) for key, count in now.items()}
        ops = sum(each.values())
        rows.append({"process": f"db ops: {name}", "db_ops": int(ops), "db_ops_per_message": round(ops / per, 2)})
        # Which commands they were, the most frequent first (those of at least 0.05 a message).
        for key, count in sorted(each.items(), key=lambda kv: -kv[1]):
            if count / per >= 0.05:
                rows.append({"process": f"  {key}", "db_ops": int(count), "db_ops_per_message": round(count / per, 2)})
    return rows


def print_usage(rows: list[dict[str, Any]], messages: int) -> None:
    print_table(f"where the time goes ({messages} messages; the services run every role in one process)", rows,
                ["process", "cpu_s", "cpu_s_per_1000", "db_ops", "db_ops_per_message"])
