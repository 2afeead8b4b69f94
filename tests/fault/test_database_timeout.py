"""A database that stops answering (FerretDB's process SIGSTOPped: connections stay open, nothing comes
back) and then answers again (SIGCONT), under load.

Without a client-side operation timeout a call waits as long as the database is silent: webhook requests,
gRPC calls and consumers hang. With ``INBOX_MONGO_TIMEOUT_MS`` (10 s) each fails within it, as UNAVAILABLE
over gRPC and 503 over HTTP (so clients and Meta retry), consumers retry the message they were on, and once
the database answers again everything recovers: nothing lost, nothing doubled, nothing stuck.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
import httpx
import pytest
from fault_findings import under_load
from fault_kit import FaultStack, Inbox, Workspace
from fault_meta import Meta, new_customers, text_webhook

from inbox.conversations.v1 import conversations_pb2 as cpb
from inbox_testkit.infra import Infra

pytestmark = pytest.mark.timeout(200, func_only=True)

TIMEOUT_S = 10.0  # INBOX_MONGO_TIMEOUT_MS's default
SILENT_S = 20.0  # longer than the timeout, so a call that waits for the database is seen waiting
MARGIN_S = 2.5  # what a call adds to the database's timeout (a retried server selection, the answer)


@dataclass
class Probe:
    name: str
    call: Callable[[], Awaitable[str]]  # the answer: "ok", a gRPC code or an HTTP status
    answer: str = ""
    seconds: float = 0.0

    async def run(self) -> Probe:
        started = time.monotonic()
        try:
            self.answer = await self.call()
        except grpc.aio.AioRpcError as exc:
            self.answer = exc.code().name
        except httpx.HTTPError as exc:
            self.answer = type(exc).__name__
        self.seconds = time.monotonic() - started
        return self


async def test_a_database_that_stops_answering_fails_calls_within_the_timeout_and_the_service_recovers(
    fault_stack: FaultStack, fault_infra: Infra, workspace: Workspace, inbox: Inbox
) -> None:
    assert fault_infra.ferret is not None
    pid = fault_infra.ferret.process.pid()
    assert pid is not None
    gateway = httpx.AsyncClient(base_url=fault_stack.url("gateway"), timeout=30)
    login = await gateway.post("/api/auth/login", json={"email": workspace.agent_email,
                                                         "password": workspace.agent_password})
    assert login.status_code == 200, login.text
    gateway.headers["Authorization"] = f"Bearer {login.json()['token']}"
    meta = Meta(f"{fault_stack.url('ingest')}/webhooks/whatsapp", client=httpx.AsyncClient(timeout=30))
    [someone] = new_customers(workspace.id, 1)

    async def conversation() -> str:
        # A deadline far longer than the database's timeout: the answer must come from the server's own.
        await inbox.conversations.GetConversation(cpb.GetConversationRequest(
            workspace_id=workspace.id, conversation_id=someone.conversation_id), timeout=30)
        return "ok"

    async def conversation_list() -> str:
        return str((await gateway.get("/api/conversations", params={"limit": 5})).status_code)

    async def webhook() -> str:
        body = text_webhook(someone.wa_id, "Timeout probe", f"wamid.timeout.{time.time_ns()}", "probe")
        return await meta.post_once(body)

    def probes() -> list[Probe]:
        return [Probe("conversations gRPC GetConversation", conversation),
                Probe("gateway GET /api/conversations", conversation_list),
                Probe("ingest POST /webhooks/whatsapp", webhook)]

    silent: list[Probe] = []
    recovered: dict[str, float] = {}

    async def stop_answering() -> None:
        os.kill(pid, signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            await asyncio.sleep(0.5)
            silent.extend(await asyncio.gather(*(p.run() for p in probes())))
            await asyncio.sleep(max(0.0, SILENT_S - (time.monotonic() - stopped)))
        finally:
            os.kill(pid, signal.SIGCONT)
        print(f"FerretDB (pid {pid}) SIGSTOPped for {time.monotonic() - stopped:.1f} s, then SIGCONT")
        answering = time.monotonic()
        pending = probes()
        while pending:
            for probe in await asyncio.gather(*(p.run() for p in pending)):
                if probe.answer in ("ok", "200", "NOT_FOUND"):
                    recovered[probe.name] = time.monotonic() - answering
            pending = [p for p in pending if p.name not in recovered]
            assert time.monotonic() - answering < 60, f"not recovered: {[(p.name, p.answer) for p in pending]}"
            await asyncio.sleep(0.2)

    try:
        outcome = await under_load(fault_stack, inbox, "database silent", stop_answering, after_s=5.0)
    finally:
        await gateway.aclose()
        await meta.aclose()
    for probe in silent:
        print(f"while silent: {probe.name} answered {probe.answer} after {probe.seconds:.1f} s; "
              f"answering again within {recovered.get(probe.name, -1):.1f} s of SIGCONT")
    answers = {p.name: p.answer for p in silent}
    assert answers == {"conversations gRPC GetConversation": "UNAVAILABLE",
                       "gateway GET /api/conversations": "503", "ingest POST /webhooks/whatsapp": "503"}
    assert all(p.seconds < TIMEOUT_S + MARGIN_S for p in silent), "each call failed within the timeout"
    assert len(recovered) == 3
    assert not outcome.load.failed, "Meta's retries were never answered 200"
    assert outcome.found.problems() == 0, outcome.found.report("database silent") + "\n" + fault_stack.logs()[-6000:]
    assert not outcome.final_errors(), outcome.final_errors()
