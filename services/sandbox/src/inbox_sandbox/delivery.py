"""Posting signed webhooks to the configured URL (ingest's ``/webhooks/whatsapp``), as Meta does.

Each POST carries ``Content-Type: application/json`` and ``X-Hub-Signature-256``. Status webhooks are
retried with a short backoff when the answer is not 200 (Meta keeps retrying for days; the sandbox
gives up after ``webhook_max_attempts``). Every delivery is logged for ``GET /sandbox/webhooks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from inbox_sandbox.domain import signing
from inbox_sandbox.state import SandboxState

log = logging.getLogger("inbox.sandbox.delivery")

_RESPONSE_KEEP = 2000  # characters of the receiver's answer kept in the log


@dataclass(frozen=True)
class Attempt:
    status_code: int | None
    response: str
    error: str | None


class WebhookPoster:
    def __init__(self, state: SandboxState, app_secret: str, timeout_s: float) -> None:
        self.state = state
        self.app_secret = app_secret
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._client = httpx.AsyncClient(timeout=self.timeout_s)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Runs a delivery in the background, kept referenced until done and cancelled on stop."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("webhook delivery failed", exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def post_once(self, body: bytes, signature: str | None, url: str | None = None,
                        content_type: str = "application/json") -> Attempt:
        client = self._client
        if client is None:
            # Used outside the app's lifespan (the page or a test calling in directly): a one-off client.
            async with httpx.AsyncClient(timeout=self.timeout_s) as one_off:
                return await self._post(one_off, body, signature, url, content_type)
        return await self._post(client, body, signature, url, content_type)

    async def _post(self, client: httpx.AsyncClient, body: bytes, signature: str | None, url: str | None,
                    content_type: str) -> Attempt:
        headers = {"Content-Type": content_type, "User-Agent": "facebookexternalua"}
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        try:
            answer = await client.post(url or self.state.config.webhook_url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Attempt(None, "", f"{type(exc).__name__}: {exc}")
        return Attempt(answer.status_code, answer.text[:_RESPONSE_KEEP], None)

    def log_delivery(self, kind: str, body: bytes, attempt: Attempt, attempts: int, url: str | None,
                     **extra: Any) -> dict[str, Any]:
        record = {
            "id": self.state.next_seq(),
            "at": time.time(),
            "kind": kind,
            "url": url or self.state.config.webhook_url,
            "body": body.decode("utf-8", "replace"),
            "status_code": attempt.status_code,
            "response": attempt.response,
            "error": attempt.error,
            "attempts": attempts,
            **extra,
        }
        self.state.webhooks.append(record)
        return record

    async def deliver(self, kind: str, payload: dict[str, Any], *, retry: bool, **extra: Any) -> Attempt:
        """Signs and posts a webhook body; with ``retry`` until a 200 or the attempts run out."""
        body = signing.meta_json(payload)
        sig = signing.signature(self.app_secret, body)
        url = self.state.config.webhook_url
        max_attempts = self.state.config.webhook_max_attempts if retry else 1
        attempt = Attempt(None, "", "not attempted")
        for number in range(1, max_attempts + 1):
            attempt = await self.post_once(body, sig, url)
            if attempt.status_code == 200:
                break
            if number < max_attempts:
                await asyncio.sleep(min(0.1 * 2 ** (number - 1), 2.0))
        self.log_delivery(kind, body, attempt, number, url, **extra)
        if attempt.status_code != 200:
            log.warning("%s webhook not accepted by %s: %s", kind, url, attempt.error or attempt.status_code)
        return attempt
