"""Fixtures of the fault tests: servers and a stack of their own.

The tests stop Kafka and the database and kill services, so nothing here is shared with the rest of the
suite: a Kafka broker and a FerretDB server of their own (local processes on free ports, whatever kind
of servers the session uses), and a stack (every service as its own process, the consumers apart from
the APIs) with its own database prefix.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# The tests import their helpers (fault_kit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from fault_findings import heal
from fault_kit import STREAM_SEND_TIMEOUT_S, FaultStack, Inbox, Workspace
from fault_meta import NUMBER, NUMBER_B, WABA_B

from inbox_core.settings import InboxSettings
from inbox_core.topics import ensure_topics
from inbox_testkit.infra import Infra, local_infra

AGENT_EMAIL = "fault.agent@fault.test"
AGENT_PASSWORD = "fault-password-123"


@pytest.fixture(scope="package")
def fault_infra() -> Iterator[Infra]:
    """A Kafka broker and a FerretDB server that only the fault tests use (they stop and start them)."""
    with local_infra("inbox-fault-") as servers:
        asyncio.run(ensure_topics(servers.kafka_bootstrap))
        yield servers


@pytest.fixture(scope="package")
def fault_stack(fault_infra: Infra) -> Iterator[FaultStack]:
    settings = InboxSettings(kafka_bootstrap=fault_infra.kafka_bootstrap, mongo_url=fault_infra.mongo_url,
                             db_prefix=f"fault{uuid.uuid4().hex[:8]}")
    home = Path(tempfile.mkdtemp(prefix="inbox-fault-stack-"))
    # A stream client that takes no write for a few seconds is disconnected (30 s by default), so the test of clients
    # that never read sees the gateway let them go within its time.
    stack = FaultStack(fault_infra, settings, home,
                       extra_env={"GATEWAY_STREAM_SEND_TIMEOUT_S": str(STREAM_SEND_TIMEOUT_S)})
    try:
        stack.start()
        yield stack
    except BaseException:
        print(stack.logs()[-20000:])
        raise
    finally:
        stack.stop()
    shutil.rmtree(home, ignore_errors=True)  # kept when the stack could not start: the services' logs are there


@pytest.fixture(scope="package")
def workspace(fault_stack: FaultStack) -> Workspace:
    """A workspace and an agent made through the gateway, with both sandbox numbers connected to it."""
    # The gateway's own admin command, as an operator would (a failure here fails the setup with its error).
    workspace_id = str(fault_stack.admin("create-workspace", "--name", "Fault shop")["workspace"]["id"])
    fault_stack.admin("create-agent", "--email", AGENT_EMAIL, "--name", "Fault Agent", "--password", AGENT_PASSWORD,
                      "--workspace", workspace_id, "--role", "admin")

    async def connect() -> None:
        inbox = Inbox(fault_stack, workspace_id)
        try:
            await inbox.connect_number(NUMBER)
            await inbox.connect_number(NUMBER_B, WABA_B)
        finally:
            await inbox.close()

    asyncio.run(connect())
    return Workspace(workspace_id, AGENT_EMAIL, AGENT_PASSWORD)


@pytest.fixture
async def inbox(fault_stack: FaultStack, workspace: Workspace) -> AsyncIterator[Inbox]:
    healed = await heal(fault_stack, workspace.id)
    if healed:
        print(f"before this test: {healed}")
    client = Inbox(fault_stack, workspace.id)
    yield client
    await client.close()
