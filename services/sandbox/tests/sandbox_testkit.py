"""What the sandbox's HTTP tests share: the test secret and token, the example number, a webhook receiver
standing in for ingest, and small helpers over the Graph API and the simulator."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from litestar import Litestar, Request, Response, post

from inbox_sandbox.sandbox import Sandbox
from inbox_testkit.paths import META_WEBHOOK_SAMPLES

SAMPLES = META_WEBHOOK_SAMPLES
SECRET = "test-app-secret"
TOKEN = "test-default-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PNID, DISPLAY, WABA = "106540352242922", "15550783881", "102290129340398"
OTHER_PNID = "117650463353033"
GRAPH = "/graph/v24.0"


@dataclass
class Hit:
    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        return json.loads(self.raw)

    @property
    def signed(self) -> bool:
        expected = "sha256=" + hmac.new(SECRET.encode(), self.raw, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-hub-signature-256", ""), expected)

    @property
    def value(self) -> dict[str, Any]:
        return self.body["entry"][0]["changes"][0]["value"]  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """Keeps every webhook it is posted; answers 200 unless told otherwise."""

    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)

    def app(self) -> Litestar:
        @post("/hook", status_code=200)
        async def hook(request: Request[Any, Any, Any]) -> Response[str]:
            self.hits.append(Hit({k.lower(): v for k, v in request.headers.items()}, await request.body()))
            return Response("ok", status_code=self.answers.pop(0) if self.answers else 200)

        return Litestar([hook])

    async def wait(self, predicate: Callable[[list[Hit]], bool], within: float = 10.0) -> list[Hit]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if predicate(self.hits):
                return self.hits
            await asyncio.sleep(0.01)
        raise AssertionError(f"webhooks never matched; got {[h.raw[:200] for h in self.hits]}")

    async def statuses(self, wamid: str, count: int) -> list[Hit]:
        def of(hits: list[Hit]) -> list[Hit]:
            return [h for h in hits if any(s["id"] == wamid for s in h.value.get("statuses", []))]

        await self.wait(lambda hits: len(of(hits)) >= count)
        return of(self.hits)


@dataclass
class Server:
    url: str
    sandbox: Sandbox

def sample(name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / name).read_text())


def shape(value: Any) -> Any:
    """The key structure of a JSON value, with leaf types (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


async def say(client: httpx.AsyncClient, kind: str = "text", **spec: Any) -> dict[str, Any]:
    answer = await client.post(f"/sandbox/simulate/{kind}", json=spec)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    assert result["status_code"] == 200, result
    return result


async def send(client: httpx.AsyncClient, body: dict[str, Any], pnid: str = PNID,
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post(f"{GRAPH}/{pnid}/messages", json={"messaging_product": "whatsapp", **body},
                             headers=AUTH if headers is None else headers)


def assert_meta_error(answer: httpx.Response, status: int, code: int) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert set(error) == {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["code"] == code and error["type"] == "OAuthException"
    assert error["message"].startswith(f"(#{code}) ")
    assert set(error["error_data"]) == {"messaging_product", "details"}
    assert error["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(error["fbtrace_id"], str) and error["fbtrace_id"]
    return error
