"""Meta's Graph API without the whole stack: the sandbox served in-process."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from inbox_testkit.ports import free_port


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

