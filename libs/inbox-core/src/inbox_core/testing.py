"""The test harness: real Kafka and a real MongoDB-compatible server for the whole pytest session.

Where they come from, in order:
1. ``INBOX_TEST_KAFKA`` / ``INBOX_TEST_MONGO_URL``: servers that are already running;
2. a reachable Docker engine: testcontainers (Kafka in KRaft mode and a pinned ``mongo:7``);
3. otherwise the project's own local servers (deploy/local: Kafka from Maven Central, FerretDB built
   with Go) started on free ports in a temporary folder and stopped at the end.
All three paths run the same tests. Loaded as a pytest plugin by the repository's root conftest.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from inbox_core.devinfra import (
    REPO_ROOT,
    FerretServer,
    KafkaServer,
    free_port,
    install,
    install_ferretdb,
    port_open,
    wait_ready,
)
from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics

# Meta's own webhook examples, the project's fixtures (their README says where each comes from).
META_WEBHOOK_SAMPLES = REPO_ROOT / "tests" / "fixtures" / "meta-webhooks"


@dataclass
class Infra:
    kafka_bootstrap: str
    mongo_url: str
    kind: str
    # Set for the local servers only: fault tests stop and start them.
    kafka: KafkaServer | None = None
    ferret: FerretServer | None = None
    home: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _docker_available() -> bool:
    if os.environ.get("INBOX_TEST_NO_DOCKER") or shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def infra() -> Iterator[Infra]:
    kafka_env, mongo_env = os.environ.get("INBOX_TEST_KAFKA"), os.environ.get("INBOX_TEST_MONGO_URL")
    with ExitStack() as stack:
        if kafka_env and mongo_env:
            found = Infra(kafka_env, mongo_env, "external")
        elif _docker_available():
            from testcontainers.kafka import KafkaContainer
            from testcontainers.mongodb import MongoDbContainer

            kafka_c = stack.enter_context(KafkaContainer("confluentinc/cp-kafka:7.7.1").with_kraft())
            mongo_c = stack.enter_context(MongoDbContainer("mongo:7.0.14"))
            found = Infra(kafka_c.get_bootstrap_server(), mongo_c.get_connection_url(), "testcontainers")
        else:
            found = stack.enter_context(local_infra("inbox-test-"))
        asyncio.run(ensure_topics(found.kafka_bootstrap))
        yield found


@contextmanager
def local_infra(prefix: str) -> Iterator[Infra]:
    """A Kafka broker and a FerretDB server of this project's own, on free ports in a new temporary folder
    (``prefix``), stopped and removed on exit."""
    install()
    home = Path(tempfile.mkdtemp(prefix=prefix))
    kafka, ferret = KafkaServer(home, free_port()), FerretServer(home, free_port())
    try:
        ferret.start()
        kafka.start()
        yield Infra(kafka.bootstrap, ferret.url, "local", kafka=kafka, ferret=ferret, home=home)
    finally:
        kafka.stop()
        ferret.stop()
        shutil.rmtree(home, ignore_errors=True)


@dataclass
class FerretPair:
    """Two servers of our FerretDB build: ``pushdown`` as the suite runs it, ``reference`` started with
    --test-disable-pushdown (the handler filters and sorts every document itself)."""

    pushdown: str
    reference: str


@pytest.fixture(scope="session")
def ferret_pair() -> Iterator[FerretPair]:
    """Our own pair whatever server the suite runs against: the tests of our FerretDB patches need it."""
    install_ferretdb()
    home = Path(tempfile.mkdtemp(prefix="inbox-ferret-pair-"))
    servers = [FerretServer(home / "pushdown", free_port()),
               FerretServer(home / "reference", free_port(), ["--test-disable-pushdown"])]
    try:
        for server in servers:
            server.start()
        yield FerretPair(servers[0].url, servers[1].url)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def inbox_settings(infra: Infra) -> InboxSettings:
    """Settings pointing at the test servers, with a database prefix of its own for each test."""
    return InboxSettings(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongo_url=infra.mongo_url,
        db_prefix=f"t{uuid.uuid4().hex[:10]}",
    )


@pytest.fixture
async def mongo_client(infra: Infra) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongo_url, tz_aware=True)
    yield client
    await client.close()


def service_env(infra: Infra, settings: InboxSettings, **extra: str) -> dict[str, str]:
    """The environment a service subprocess needs to run against the test servers."""
    env = {
        **os.environ,
        "INBOX_KAFKA_BOOTSTRAP": infra.kafka_bootstrap,
        "INBOX_MONGO_URL": infra.mongo_url,
        "INBOX_DB_PREFIX": settings.db_prefix,
        "INBOX_GROUP_PREFIX": settings.group_prefix or f"{settings.db_prefix}-",
        "INBOX_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    """A service started as its own process (``python -m inbox_<name> <role>``), as in production."""

    name: str
    role: str
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", f"inbox_{self.name}", self.role],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
            )
        return self

    def wait_port(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.output()}")
            if port_open(port):
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not open port {port} in {timeout}s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-5000:] if self.log.exists() else ""

    def terminate(self, timeout: float = 40.0) -> int:
        assert self.proc is not None
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class TopicReader:
    """Reads what is published to a topic from the moment it started (every partition, no group)."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        from aiokafka import AIOKafkaConsumer

        self.topic = topic
        self.bootstrap = bootstrap
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        self.records: list[Any] = []

    async def __aenter__(self) -> TopicReader:
        from aiokafka import TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            (described,) = await admin.describe_topics([self.topic])
        finally:
            await admin.close()
        partitions = sorted(p["partition"] for p in described.get("partitions", []))
        if not partitions:
            raise RuntimeError(f"topic {self.topic} does not exist")
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self.consumer.assign(tps)
        ends = await self.consumer.end_offsets(tps)
        for tp in tps:
            self.consumer.seek(tp, ends[tp])
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def read(self, until: Any = None, within: float = 20.0, settle: float = 0.0) -> list[Any]:
        """Collects records until ``until(records)`` is true (or the timeout passes), then keeps
        reading ``settle`` seconds more so that an unexpected extra record would be seen too."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and not (until and until(self.records)):
            batch = await self.consumer.getmany(timeout_ms=200)
            for records in batch.values():
                self.records.extend(records)
        settle_end = time.monotonic() + settle
        while time.monotonic() < settle_end:
            batch = await self.consumer.getmany(timeout_ms=100)
            for records in batch.values():
                self.records.extend(records)
        return self.records

    def events(self) -> list[Any]:
        from inbox_core.events import Event

        return [Event.from_bytes(r.value) for r in self.records]


async def start_group_at_end(bootstrap: str, group: str, topics: list[str]) -> None:
    """Commits the topics' current ends for a new consumer group, so that it reads only what comes next
    (in a test session the real topics already hold every earlier test's events)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    partitions = [TopicPartition(d["topic"], p["partition"]) for d in described for p in d["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.commit(await consumer.end_offsets(partitions))
    finally:
        await consumer.stop()


def _run_in_thread(coro: Any) -> None:
    """asyncio.run in a thread of its own: callers may be inside a running event loop (Playwright's)."""
    import threading

    failure: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(coro)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


# The workers' consumer groups and their topics (the k8s manifest tests check them against the code).
STACK_GROUPS: dict[str, list[str]] = {
    "inbox-conversations": ["whatsapp.events.v1", "inbox.orders.v1", "inbox.customers.v1"],
    "inbox-customers": ["whatsapp.events.v1", "inbox.orders.v1"],
    "inbox-ingest-sender": ["whatsapp.commands.v1"],
    "inbox-ingest-media": ["whatsapp.events.v1"],
}

STACK_SECRETS = {
    "GATEWAY_JWT_SECRET": "stack-jwt-secret-0123456789abcdef",
    "INGEST_META_APP_SECRET": "stack-app-secret",
    "INGEST_META_VERIFY_TOKEN": "stack-verify-token",
    "SANDBOX_META_APP_SECRET": "stack-app-secret",
    "SANDBOX_ACCESS_TOKEN": "stack-access-token",
}


@dataclass
class Stack:
    """The whole system, every service as its own process (as in production), with the sandbox
    standing in for Meta, against the test servers. Ports are free ones, chosen at start."""

    infra: Infra
    settings: InboxSettings
    home: Path
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    # Settings of this stack's own (a shorter timeout, ...), over the defaults above.
    extra_env: dict[str, str] = field(default_factory=dict)

    SERVICES = ("conversations", "customers", "orders", "presence", "ingest", "sandbox", "gateway")

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service + '_http']}"

    def grpc_target(self, service: str) -> str:
        return f"127.0.0.1:{self.ports[service + '_grpc']}"

    def start(self) -> Stack:
        p = self.ports
        for name in ("conversations", "customers", "orders", "presence"):
            p[f"{name}_grpc"], p[f"{name}_ops"] = free_port(), free_port()
        for name in ("ingest", "sandbox", "gateway"):
            p[f"{name}_http"] = free_port()
        p["ingest_grpc"], p["ingest_ops"], p["ingest_api_ops"], p["gateway_ops"] = (free_port(), free_port(),
                                                                                  free_port(), free_port())
        env = service_env(self.infra, self.settings, **STACK_SECRETS)
        env.update({
            "INBOX_LOG_LEVEL": "INFO",
            "INGEST_GRAPH_API_BASE_URL": f"http://127.0.0.1:{p['sandbox_http']}/graph/v24.0",
            "SANDBOX_WEBHOOK_URL": f"http://127.0.0.1:{p['ingest_http']}/webhooks/whatsapp",
            "GATEWAY_INGEST_TARGET": f"127.0.0.1:{p['ingest_grpc']}",
            "INGEST_WORKER_OPS_PORT": str(p["ingest_ops"]),
            "INGEST_OPS_PORT": str(p["ingest_api_ops"]),
            # Plain HTTP on loopback: a Secure cookie would not be sent back.
            "GATEWAY_COOKIE_SECURE": "false",
        })
        for name in ("conversations", "customers", "orders", "presence", "ingest", "sandbox", "gateway"):
            upper = name.upper()
            for kind in ("grpc", "ops", "http"):
                if f"{name}_{kind}" in p and (name, kind) != ("ingest", "ops"):  # ingest's is the worker's
                    env[f"{upper}_{kind.upper()}_PORT"] = str(p[f"{name}_{kind}"])
            if f"{name}_grpc" in p and name != "gateway":
                env[f"GATEWAY_{upper}_TARGET"] = f"127.0.0.1:{p[f'{name}_grpc']}"
        env.update(self.extra_env)
        self.env = env
        # A new deployment's workers would replay the topics from the start; a test stack starts at the end.
        prefix = env["INBOX_GROUP_PREFIX"]
        for group, topics in STACK_GROUPS.items():
            _run_in_thread(start_group_at_end(self.infra.kafka_bootstrap, prefix + group, topics))
        for name in self.SERVICES:
            self.processes[name] = ServiceProcess(name, "all", env, self.home / f"{name}.log").start()
        for name in self.SERVICES:
            port = self.ready_port(name)
            self.processes[name].wait_port(port, timeout=90)
            self.wait_ready(name, port)
        return self

    def ready_port(self, key: str) -> int:
        """Where a process answers /internal/ready: its ops port (ingest's API has its own beside the
        worker's); the sandbox has only its one HTTP port."""
        if key == "ingest":
            return self.ports["ingest_api_ops"]
        return self.ports.get(f"{key}_ops") or self.ports[f"{key}_http"]

    def wait_ready(self, name: str, port: int, timeout: float = 90.0) -> None:
        if not wait_ready(port, timeout):
            raise RuntimeError(f"{name} not ready in {timeout}s:\n{self.processes[name].output()}")

    def register_number(self, phone_number_id: str, waba_id: str, display_phone_number: str = "",
                        name: str = "Test shop") -> None:
        """Makes the sandbox (Meta's stand-in) serve this number under this business account, so that
        connecting it passes ingest's ownership check (the stack's access token is good for every number)."""
        import httpx

        answer = httpx.post(f"{self.url('sandbox')}/sandbox/numbers", timeout=20, json={
            "phone_number_id": phone_number_id, "waba_id": waba_id,
            "display_phone_number": display_phone_number or phone_number_id, "verified_name": name})
        answer.raise_for_status()

    def admin(self, *args: str) -> dict[str, Any]:
        """The gateway's admin command (``python -m inbox_gateway admin ...``) against this stack; its JSON answer."""
        done = subprocess.run([sys.executable, "-m", "inbox_gateway", "admin", *args], env=self.env, cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"gateway admin {args[0]} failed: {done.stderr[-2000:]}")
        answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        return answer

    def stop(self) -> None:
        for name in reversed(self.SERVICES):
            process = self.processes.get(name)
            if process is not None and process.proc is not None and process.proc.poll() is None:
                # terminate() kills it when it does not stop in time.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.terminate(timeout=30)

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{p.output()}" for n, p in self.processes.items())


@dataclass
class GraphStandIn:
    """The sandbox (Meta's stand-in) served in-process, for tests that need the Graph API without the whole
    stack: ``graph_url`` is ingest's base URL; ``register`` makes a number of a business account exist, its
    token good for that number only (so a token of another number proves nothing)."""

    graph_url: str
    sandbox: Any

    def register(self, phone_number_id: str, waba_id: str, access_token: str) -> None:
        from inbox_sandbox.settings import NumberConfig

        self.sandbox.state.add_number(NumberConfig(phone_number_id=phone_number_id, waba_id=waba_id,
                                                   display_phone_number=phone_number_id, access_token=access_token))


@contextlib.asynccontextmanager
async def graph_stand_in() -> AsyncIterator[GraphStandIn]:
    from pydantic import SecretStr

    from inbox_core.runtime import HttpComponent
    from inbox_sandbox.http import create_app
    from inbox_sandbox.sandbox import Sandbox
    from inbox_sandbox.settings import SandboxSettings

    settings = SandboxSettings(meta_app_secret=SecretStr(secrets.token_hex(16)), numbers=[], access_token=None,
                               webhook_url=f"http://127.0.0.1:{free_port()}/nowhere", status_delays_ms=(0, 0, 0),
                               auto_read=False)
    sandbox = Sandbox(settings)
    port = free_port()
    component = HttpComponent("graph-stand-in", create_app(settings, sandbox=sandbox), port, host="127.0.0.1")
    await component.start()
    try:
        yield GraphStandIn(f"http://127.0.0.1:{port}/graph/v24.0", sandbox)
    finally:
        await component.stop()


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS of /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
