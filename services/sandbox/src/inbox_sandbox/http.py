"""The sandbox service's HTTP application.

A stand-in for Meta's Graph API (``/graph/{version}/...``, see graph.py) and a customer simulator with
its control API (``/sandbox/...``, see control.py and ui.py). Dev and tests only; state is in memory.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, cast
from urllib.parse import parse_qsl

from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

from inbox_core.ops import ReadyCheck, ops_handlers
from inbox_sandbox.control import CONTROL_HANDLERS
from inbox_sandbox.graph import GRAPH_HANDLERS
from inbox_sandbox.sandbox import Sandbox
from inbox_sandbox.settings import SandboxSettings
from inbox_sandbox.ui import UI_HANDLERS

_RECORDED_PREFIXES = ("/graph/", "/sandbox/media-download/")
_BODY_KEEP = 64 * 1024  # bytes of a non-JSON body kept in the request log
# Large enough for Meta's biggest upload (documents, 100 MB).
MAX_BODY = 110 * 1024 * 1024


def _decoded(raw: bytes, content_type: str) -> dict[str, Any]:
    if not raw:
        return {}
    if "json" in content_type:
        try:
            return {"json": json.loads(raw)}
        except ValueError:
            pass
    if content_type.startswith("multipart/"):
        return {}  # the upload handler records the form fields instead of the bytes
    return {"text": raw[:_BODY_KEEP].decode("utf-8", "replace")}


def request_recorder(sandbox: Sandbox) -> Any:
    """ASGI middleware keeping every Graph API request and its answer in ``state.requests``.

    The entry is appended before the last byte of the answer goes out, so a client that has the answer
    always finds the request in ``GET /sandbox/requests``.
    """

    def middleware(app: ASGIApp) -> ASGIApp:
        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            path = scope.get("path", "")
            if scope["type"] != ScopeType.HTTP or not path.startswith(_RECORDED_PREFIXES):
                await app(scope, receive, send)
                return
            chunks: list[bytes] = []
            more = True
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    break
                chunks.append(message.get("body", b""))
                more = bool(message.get("more_body", False))
            raw = b"".join(chunks)
            replayed = False

            async def replay() -> ReceiveMessage:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": raw, "more_body": False}
                return await receive()

            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            content_type = headers.get("content-type", "")
            record: dict[str, Any] = {
                "id": sandbox.state.next_seq(),
                "at": time.time(),
                "method": scope.get("method", ""),
                "path": path,
                "query": dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
                "headers": headers,
                "body": None,
                "body_size": len(raw),
                "status_code": None,
                "response": None,
            }
            body = _decoded(raw, content_type)
            record["body"] = body.get("json")
            if "text" in body:
                record["body_text"] = body["text"]
            cast(dict[str, Any], scope)["sandbox_record"] = record
            answer: list[bytes] = []
            answer_type = ""

            async def capture(message: Message) -> None:
                nonlocal answer_type
                if message["type"] == "http.response.start":
                    record["status_code"] = message["status"]
                    for key, value in message.get("headers", []):
                        if key.decode("latin-1").lower() == "content-type":
                            answer_type = value.decode("latin-1")
                elif message["type"] == "http.response.body":
                    if "json" in answer_type:
                        answer.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        if answer:
                            try:
                                record["response"] = json.loads(b"".join(answer))
                            except ValueError:
                                record["response"] = None
                        sandbox.state.requests.append(record)
                await send(message)

            await app(scope, replay, capture)

        return wrapped

    return middleware


def create_app(settings: SandboxSettings, checks: Mapping[str, ReadyCheck] | None = None,
               sandbox: Sandbox | None = None) -> Litestar:
    sandbox = sandbox or Sandbox(settings)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await sandbox.poster.start()
        try:
            yield
        finally:
            await sandbox.poster.stop()

    app = Litestar(
        route_handlers=[*ops_handlers(checks or {}), *GRAPH_HANDLERS, *CONTROL_HANDLERS, *UI_HANDLERS],
        middleware=[request_recorder(sandbox)],
        lifespan=[lifespan],
        request_max_body_size=MAX_BODY,
    )
    app.state.sandbox = sandbox
    return app
