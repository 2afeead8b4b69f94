"""The whole system, every service its own process, against the test servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inbox_core.settings import InboxSettings
from inbox_testkit.infra import Infra
from inbox_testkit.kafka import start_group_at_end
from inbox_testkit.paths import REPO_ROOT
from inbox_testkit.ports import free_port, wait_ready
from inbox_testkit.processes import ServiceProcess, service_env


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
            # Auto-assignment asks presence who is online.
            "CONVERSATIONS_PRESENCE_TARGET": f"127.0.0.1:{p['presence_grpc']}",
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

