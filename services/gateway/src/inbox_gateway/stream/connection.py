"""One SSE connection (a plain ASGI app): keep-alive comments and a timeout on every write, so a client that stops
reading is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from inbox_gateway.stream.frames import Frame, sse
from inbox_gateway.stream.hub import Hub, Subscription

log = logging.getLogger("inbox.gateway.stream")

RETRY_MS = 3000
# Frames already queued are written together, up to about this much at once.
MAX_WRITE_BYTES = 64 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class StreamPolicy:
    keepalive_s: float = 15.0
    send_timeout_s: float = 30.0
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


class EventStream:
    """The response of ``GET /api/stream`` for one agent (an ASGI app, so every write has a timeout).

    It writes what its subscription receives, keep-alives in between, and ends when the subscription is
    closed (too slow, session ended, shutting down: a last ``event: error``), when the client leaves, or
    when a write times out.
    """

    def __init__(self, hub: Hub, subscription: Subscription, policy: StreamPolicy) -> None:
        self.hub = hub
        self.subscription = subscription
        self.policy = policy
        self._broken = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.subscription
        disconnected = asyncio.ensure_future(self._until_disconnect(receive))
        getter: asyncio.Future[Frame | None] | None = None
        try:
            headers = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                       (b"x-accel-buffering", b"no"), *self.policy.headers]
            if not await self._send(send, {"type": "http.response.start", "status": 200, "headers": headers}):
                return
            opening = b"retry: %d\n: connected\n\n" % RETRY_MS
            if sub.reset:
                opening += sse("reset", {"reason": "last_event_id_unknown"})
            if not await self._write(send, opening):
                return
            while True:
                getter = asyncio.ensure_future(sub.queue.get())
                done, _ = await asyncio.wait({getter, disconnected}, timeout=self.policy.keepalive_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if disconnected in done:
                    return
                if getter not in done:
                    getter.cancel()
                    getter = None
                    if not await self._write(send, b": keep-alive\n\n"):
                        return
                    continue
                data, closed = self._ready(getter.result())
                getter = None
                if data and not await self._write(send, data):
                    return
                if closed:
                    await self._write(send, sse("error", {"reason": sub.closed or "closed"}))
                    return
        finally:
            self.hub.unsubscribe(sub)
            for task in (getter, disconnected):
                if task is not None and not task.done():
                    task.cancel()
            if not self._broken:
                with contextlib.suppress(Exception):
                    await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})

    def _ready(self, first: Frame | None) -> tuple[bytes, bool]:
        """The frames queued now, from ``first`` on, as one write (at most about MAX_WRITE_BYTES), and
        whether the subscription's close came among them. A message's events arrive together
        (message.created, conversation.updated, ...): one write each cost a send and a wakeup apiece."""
        if first is None:
            return b"", True
        parts, size = [first.data], len(first.data)
        queue = self.subscription.queue
        while size < MAX_WRITE_BYTES and not queue.empty():
            frame = queue.get_nowait()
            if frame is None:
                return b"".join(parts), True
            parts.append(frame.data)
            size += len(frame.data)
        return b"".join(parts), False

    async def _write(self, send: Send, data: bytes) -> bool:
        return await self._send(send, {"type": "http.response.body", "body": data, "more_body": True})

    async def _send(self, send: Send, message: dict[str, Any]) -> bool:
        """False when the client is gone or does not take the write in time (the connection then closes)."""
        try:
            await asyncio.wait_for(send(message), timeout=self.policy.send_timeout_s)
        except (TimeoutError, OSError):
            # Returning without finishing the response makes the server drop the connection.
            self._broken = True
            self.subscription.close("too_slow")
            return False
        return True

    @staticmethod
    async def _until_disconnect(receive: Receive) -> None:
        while True:
            message = await receive()
            if message.get("type") == "http.disconnect":
                return
