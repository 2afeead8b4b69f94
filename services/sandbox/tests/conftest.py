"""The sandbox over HTTP: a real uvicorn serving it, and a small webhook receiver standing in for ingest.

Both run in the test's event loop on free ports (one pair per test module); the receiver checks nothing, it
keeps what arrives, so the tests can check signatures and shapes against Meta's own examples
(tests/fixtures/meta-webhooks)."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest_asyncio

from inbox_core.runtime import HttpComponent
from inbox_sandbox.http import create_app
from inbox_sandbox.sandbox import Sandbox
from inbox_sandbox.settings import SandboxSettings
from inbox_testkit.ports import free_port

# The tests import their shared helpers (sandbox_testkit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from sandbox_testkit import SECRET, TOKEN, Receiver, Server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    receiver = Receiver(url=f"http://127.0.0.1:{port}/hook")
    component = HttpComponent("receiver", receiver.app(), port, host="127.0.0.1")
    await component.start()
    yield receiver
    await component.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def server(receiver: Receiver) -> AsyncIterator[Server]:
    settings = SandboxSettings(meta_app_secret=SECRET, access_token=TOKEN, webhook_url=receiver.url,
                               status_delays_ms=(0, 0, 0), webhook_max_attempts=3)
    sandbox = Sandbox(settings)
    port = free_port()
    component = HttpComponent("sandbox", create_app(settings, sandbox=sandbox), port, host="127.0.0.1")
    await component.start()
    yield Server(f"http://127.0.0.1:{port}", sandbox)
    await component.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def client(server: Server, receiver: Receiver) -> AsyncIterator[httpx.AsyncClient]:
    server.sandbox.reset()
    receiver.hits.clear()
    receiver.answers.clear()
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        yield client
    # Let the status webhooks of this test finish, so they do not land in the next test's receiver.
    deadline = time.monotonic() + 10
    while server.sandbox.poster.pending and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
