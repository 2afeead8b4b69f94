"""The memory ceiling for bench/sse_memory.py: the same server (uvicorn) holding server-sent event streams
that only send a keep-alive comment every 15 s (no auth, no hub, no queue)."""

import asyncio
from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
    await send({"type": "http.response.body", "body": b": connected\n\n", "more_body": True})

    async def until_disconnect() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    waiter = asyncio.ensure_future(until_disconnect())
    try:
        while not waiter.done():
            await asyncio.wait([waiter], timeout=15)
            if not waiter.done():
                await send({"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True})
    finally:
        waiter.cancel()
