"""The stream's hub and one connection, without Kafka or HTTP: fan-out by workspace, bounded queues (a
slow subscriber is closed, the others get everything), Last-Event-ID resume, redeliveries dropped,
keep-alives, and a client that stops reading being cut off."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from inbox_core.events import Event
from inbox_gateway.stream import EventStream, Frame, Hub, StreamPolicy, frame_of


def frame(i: int, workspace: str = "ws_a") -> Frame:
    event = Event(id=f"e{i}", type="test.thing", workspace_id=workspace, data={"i": i})
    out = frame_of(event)
    assert out is not None
    return out


def drain(queue: asyncio.Queue[Frame | None]) -> list[str | None]:
    out: list[str | None] = []
    while not queue.empty():
        item = queue.get_nowait()
        out.append(item.id if item is not None else None)
    return out


def test_frames_are_sse_with_the_event_id_and_name() -> None:
    f = frame(7)
    assert f.data == b'id: e7\nevent: test.thing\ndata: {"i":7}\n\n'
    assert frame_of(Event(id="x", type="t", workspace_id=None)) is None  # no workspace: nobody may see it


def test_each_subscriber_gets_only_its_workspaces() -> None:
    hub = Hub(buffer_size=100, queue_size=10)
    a = hub.subscribe(["ws_a"])
    b = hub.subscribe(["ws_b"])
    both = hub.subscribe(["ws_a", "ws_b"])
    for i, ws in enumerate(["ws_a", "ws_b", "ws_c", "ws_a"]):
        hub.publish(frame(i, ws))
    assert drain(a.queue) == ["e0", "e3"]
    assert drain(b.queue) == ["e1"]
    assert drain(both.queue) == ["e0", "e1", "e3"]


def test_a_full_queue_closes_that_subscriber_only() -> None:
    hub = Hub(buffer_size=100, queue_size=3)
    slow = hub.subscribe(["ws_a"])
    fast = hub.subscribe(["ws_a"])
    received: list[str | None] = []
    for i in range(10):
        hub.publish(frame(i))
        received += drain(fast.queue)  # the fast one keeps up
    assert slow.closed == "too_slow"
    assert drain(slow.queue) == [None]  # the backlog is dropped: only the close is left
    assert received == [f"e{i}" for i in range(10)] and fast.closed is None


def test_last_event_id_replays_what_came_after_or_asks_for_a_reset() -> None:
    hub = Hub(buffer_size=5, queue_size=10)
    for i in range(8):
        hub.publish(frame(i, "ws_a" if i % 2 == 0 else "ws_b"))
    resumed = hub.subscribe(["ws_a"], last_event_id="e4")
    assert not resumed.reset and drain(resumed.queue) == ["e6"]
    gone = hub.subscribe(["ws_a"], last_event_id="e1")  # fell out of the 5-event buffer
    assert gone.reset and drain(gone.queue) == []
    unknown = hub.subscribe(["ws_a"], last_event_id="nope")
    assert unknown.reset


def test_too_long_a_replay_is_a_reset() -> None:
    hub = Hub(buffer_size=100, queue_size=3)
    for i in range(10):
        hub.publish(frame(i))
    late = hub.subscribe(["ws_a"], last_event_id="e0")
    assert late.reset and late.closed is None and drain(late.queue) == []


def test_redeliveries_are_dropped() -> None:
    hub = Hub(buffer_size=100, queue_size=10)
    sub = hub.subscribe(["ws_a"])
    hub.publish(frame(1))
    hub.publish(frame(1))
    assert drain(sub.queue) == ["e1"] and hub.published == 1


class Client:
    """An ASGI client side: what was written, and a switch to stop reading."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.stuck = asyncio.Event()
        self.disconnect = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.disconnect.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if self.stuck.is_set():
            await asyncio.sleep(3600)  # a client that stopped reading
        if message["type"] == "http.response.body":
            self.chunks.append(message.get("body", b""))

    def text(self) -> str:
        return b"".join(self.chunks).decode()


async def test_a_client_that_stops_reading_is_cut_off_and_the_others_are_not_delayed() -> None:
    hub = Hub(buffer_size=1000, queue_size=4)
    policy = StreamPolicy(keepalive_s=10, send_timeout_s=0.5)
    slow, fast = Client(), Client()
    slow_task = asyncio.create_task(EventStream(hub, hub.subscribe(["ws_a"]), policy)({}, slow.receive, slow.send))
    fast_task = asyncio.create_task(EventStream(hub, hub.subscribe(["ws_a"]), policy)({}, fast.receive, fast.send))
    await asyncio.sleep(0.05)
    slow.stuck.set()
    started = time.monotonic()
    for i in range(50):
        hub.publish(frame(i))
        await asyncio.sleep(0.001)
    for _ in range(200):
        if "id: e49" in fast.text():
            break
        await asyncio.sleep(0.01)
    assert time.monotonic() - started < 1.0  # the fast client got everything without waiting on the slow one
    assert all(f"id: e{i}\n" in fast.text() for i in range(50))
    await asyncio.wait_for(slow_task, 3)  # the stuck connection ends (the server then closes it)
    assert hub.connections == 1
    fast.disconnect.set()
    await asyncio.wait_for(fast_task, 3)
    assert hub.connections == 0


async def test_a_lagging_client_gets_a_final_error_event() -> None:
    hub = Hub(buffer_size=1000, queue_size=2)
    client = Client()
    sub = hub.subscribe(["ws_a"])
    for i in range(5):  # nobody reads yet: the queue overflows
        hub.publish(frame(i))
    await asyncio.wait_for(EventStream(hub, sub, StreamPolicy(keepalive_s=10))({}, client.receive, client.send), 3)
    assert client.text().endswith('event: error\ndata: {"reason":"too_slow"}\n\n')
    assert "id: e0" not in client.text()


async def test_keep_alive_comments_and_a_closed_subscription() -> None:
    hub = Hub()
    client = Client()
    subscription = hub.subscribe(["ws_a"])
    stream = asyncio.create_task(EventStream(hub, subscription, StreamPolicy(keepalive_s=0.1))(
        {}, client.receive, client.send))
    await asyncio.sleep(0.35)
    subscription.close("session_ended")  # what the gateway's upkeep does after a logout
    await asyncio.wait_for(stream, 3)
    text = client.text()
    assert text.startswith("retry: 3000\n: connected\n\n")
    assert text.count(": keep-alive\n\n") >= 2
    assert text.endswith('event: error\ndata: {"reason":"session_ended"}\n\n')
    assert hub.connections == 0
