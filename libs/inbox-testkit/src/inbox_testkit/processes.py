"""A service run as its own process against the test servers, as in production."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from inbox_core.settings import InboxSettings
from inbox_testkit.infra import Infra
from inbox_testkit.paths import REPO_ROOT
from inbox_testkit.ports import port_open


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



def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS of /proc/<pid>/status), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")
