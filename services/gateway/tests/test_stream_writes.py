"""One SSE connection's writes (the ASGI app alone, on a real Hub): frames already queued go out as one
write, in order, and a close among them comes after them."""

from __future__ import annotations

import asyncio
from typing import Any

from inbox_gateway.stream.connection import EventStream, StreamPolicy
from inbox_gateway.stream.frames import Frame, sse
from inbox_gateway.stream.hub import Hub


def frame(n: int) -> Frame:
    return Frame(id=str(n), workspace_id="w1", name="message.created", data=sse("message.created", {"n": n}, str(n)))


async def run_stream(hub: Hub, queued: int, close: str | None) -> list[bytes]:
    subscription = hub.subscribe(["w1"], None, "ag_1")
    for n in range(queued):
        hub.publish(frame(n))
    if close:
        subscription.close(close)
    bodies: list[bytes] = []
    disconnect = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            bodies.append(message["body"])

    app = EventStream(hub, subscription, StreamPolicy(keepalive_s=5))
    task = asyncio.create_task(app({"type": "http"}, receive, send))
    if close:
        await asyncio.wait_for(task, 5)
    else:
        while len(bodies) < 2:
            await asyncio.sleep(0.01)
        disconnect.set()
        await asyncio.wait_for(task, 5)
    return bodies


async def test_frames_queued_together_are_one_write_in_their_order() -> None:
    bodies = await run_stream(Hub(), 5, None)
    opening, burst = bodies[:2]
    assert opening.startswith(b"retry:")
    assert burst == b"".join(frame(n).data for n in range(5))


async def test_a_close_queued_behind_frames_comes_after_them() -> None:
    bodies = await run_stream(Hub(), 3, "session_ended")
    assert bodies[1] == b"".join(frame(n).data for n in range(3))
    assert bodies[2].startswith(b"event: error") and b"session_ended" in bodies[2]
