"""The test harness: real Kafka and a real MongoDB-compatible server for the whole pytest session.

Where they come from, in order:
1. ``INBOX_TEST_KAFKA`` / ``INBOX_TEST_MONGO_URL``: servers that are already running;
2. a reachable Docker engine: testcontainers (Kafka in KRaft mode and a pinned ``mongo:7``);
3. otherwise the project's own local servers (deploy/local: Kafka from Maven Central, FerretDB built
   with Go) started on free ports in a temporary folder and stopped at the end.
All three paths run the same tests. The pytest fixtures over it are in ``inbox_testkit.plugin``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inbox_core.topics import ensure_topics
from inbox_testkit.ports import free_port
from inbox_testkit.servers import FerretServer, KafkaServer, install, install_ferretdb


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



@contextmanager
def session_infra() -> Iterator[Infra]:
    """The servers of a test session, from the first of the three sources above that is there, with every
    topic created."""
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
def local_infra(prefix: str, ferret_debug_port: int = 0) -> Iterator[Infra]:
    """A Kafka broker and a FerretDB server of this project's own, on free ports in a new temporary folder
    (``prefix``), stopped and removed on exit; ``ferret_debug_port``: FerretDB's debug server (pprof)."""
    install()
    home = Path(tempfile.mkdtemp(prefix=prefix))
    kafka, ferret = KafkaServer(home, free_port()), FerretServer(home, free_port(), debug_port=ferret_debug_port)
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



@contextmanager
def ferret_pair_servers() -> Iterator[FerretPair]:
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

