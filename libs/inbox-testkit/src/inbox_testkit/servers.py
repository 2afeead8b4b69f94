"""A real Kafka broker and a real FerretDB server, as local processes.

Both are fetched and built by the project's own files under ``deploy/local/`` (Kafka's jars from Maven
Central, FerretDB from the Go module proxy) into ``.local/``, and run as plain processes on loopback.
``make dev`` runs them on the default ports (``inbox_testkit.devinfra``); the test suite runs its own pair
on free ports (``inbox_testkit.infra``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inbox_testkit.paths import DEPLOY_LOCAL, FERRETDB_BIN, KAFKA_LIBS
from inbox_testkit.ports import free_port, port_open


def _run(cmd: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def install_kafka() -> None:
    """Copies Kafka's broker jars and their dependencies from Maven Central into .local/kafka/libs."""
    marker = KAFKA_LIBS / ".complete"
    pom = DEPLOY_LOCAL / "kafka" / "pom.xml"
    if marker.exists() and marker.read_text() == pom.read_text():
        return
    if KAFKA_LIBS.exists():
        shutil.rmtree(KAFKA_LIBS)
    KAFKA_LIBS.mkdir(parents=True)
    _run(["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
          f"-DoutputDirectory={KAFKA_LIBS}", "-DincludeScope=runtime"])
    marker.write_text(pom.read_text())


def install_ferretdb() -> None:
    """Builds FerretDB unless the binary there was built from these very build files (scripts, module
    pins, patches and the Go files under src/): a change to any of them builds it again."""
    sources = DEPLOY_LOCAL / "ferretdb"
    digest = hashlib.sha256(b"".join(
        str(p.relative_to(sources)).encode() + b"\0" + p.read_bytes()
        for p in sorted(sources.rglob("*")) if p.is_file())).hexdigest()
    marker = FERRETDB_BIN.parent / ".ferretdb-build"
    if FERRETDB_BIN.exists() and marker.exists() and marker.read_text() == digest:
        return
    _run(["bash", str(sources / "build.sh"), str(FERRETDB_BIN.parent)])
    marker.write_text(digest)


def install() -> None:
    install_kafka()
    install_ferretdb()


@dataclass
class Process:
    """A server process we started, remembered by pid file so `down` can stop it from another shell."""

    name: str
    home: Path

    @property
    def pid_file(self) -> Path:
        return self.home / f"{self.name}.pid"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    def spawn(self, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.home.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})}, start_new_session=True,
            )
        self.pid_file.write_text(str(proc.pid))
        return proc

    def stop(self, timeout: float = 30.0) -> None:
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            # Reap it if it is our child, so it does not linger as a zombie that still "exists".
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, for fault tests: no clean shutdown."""
        pid = self.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.pid_file.unlink(missing_ok=True)


def _wait_port(port: int, proc_name: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{proc_name} did not open port {port} within {timeout:.0f}s; log tail:\n{tail}")


class KafkaServer:
    """One Kafka 4 node in KRaft mode (broker and controller), listening on loopback."""

    def __init__(self, home: Path, port: int = 9092, controller_port: int | None = None) -> None:
        self.home = home / "kafka"
        self.port = port
        self.controller_port = controller_port or free_port()
        self.process = Process("kafka", self.home)
        self.log = self.home / "kafka.log"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _write_config(self) -> Path:
        data = self.home / "data"
        cfg = self.home / "server.properties"
        cfg.write_text("\n".join([
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "inter.broker.listener.name=PLAINTEXT",
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            f"log.dirs={data}",
            "num.partitions=6",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=6",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1",
            "share.coordinator.state.topic.min.isr=1",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=true",
            "log.flush.interval.messages=1",
            "",
        ]))
        return cfg

    def _java(self, main: str, *args: str, heap: str = "-Xmx512m") -> list[str]:
        return [
            "java", heap, "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={DEPLOY_LOCAL / 'kafka' / 'log4j2.properties'}",
            "-cp", f"{KAFKA_LIBS}/*", main, *args,
        ]

    def start(self, timeout: float = 90.0) -> None:
        if self.process.pid() is not None and port_open(self.port):
            return
        self.home.mkdir(parents=True, exist_ok=True)
        cfg = self._write_config()
        if not (self.home / "data" / "meta.properties").exists():
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            subprocess.run(
                # "--cluster-id=<id>": a base64 id may start with "-", which "-t <id>" would read as an option.
                self._java("kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(cfg),
                           heap="-Xmx256m"),
                check=True, stdout=subprocess.DEVNULL,
            )
        self.process.spawn(self._java("kafka.Kafka", str(cfg)), self.log)
        _wait_port(self.port, "kafka", self.log, timeout)

    def stop(self) -> None:
        self.process.stop(timeout=60)

    def kill(self) -> None:
        self.process.kill()


# Go's collector every 4x growth of the live heap, not 2x: under load it took a tenth of FerretDB's CPU
# (its heap is tens of MiB; the memory limit bounds it as the heap grows).
FERRETDB_ENV = {"GOGC": "400", "GOMEMLIMIT": "1GiB"}


class FerretServer:
    """FerretDB v1 with its SQLite backend: the MongoDB wire protocol on loopback."""

    def __init__(self, home: Path, port: int = 27017, extra_args: Sequence[str] = (), debug_port: int = 0) -> None:
        self.home = home / "ferretdb"
        self.port = port
        self.extra_args = tuple(extra_args)  # e.g. --test-disable-pushdown, the differential tests' reference
        # FerretDB's debug server (pprof, per-command metrics) on loopback, for profiling; off when 0.
        self.debug_port = debug_port
        self.process = Process("ferretdb", self.home)
        self.log = self.home / "ferretdb.log"

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> None:
        if self.process.pid() is not None and port_open(self.port):
            return
        data = self.home / "data"
        data.mkdir(parents=True, exist_ok=True)
        debug_addr = f"127.0.0.1:{self.debug_port}" if self.debug_port else ""
        self.process.spawn([
            # WAL with synchronous=NORMAL: a commit survives the server process dying (the fault tests
            # kill it), not a power cut, which a local server need not; FULL syncs every commit.
            str(FERRETDB_BIN), "--handler=sqlite", f"--sqlite-url=file:{data}/?_pragma=synchronous(normal)",
            f"--listen-addr=127.0.0.1:{self.port}", f"--state-dir={self.home}",
            f"--debug-addr={debug_addr}", "--telemetry=disable", "--log-level=WARN", "--log-format=text",
            *self.extra_args,
        ], self.log, env=FERRETDB_ENV)
        _wait_port(self.port, "ferretdb", self.log, timeout)

    def stop(self) -> None:
        self.process.stop()

    def kill(self) -> None:
        self.process.kill()

