"""An event the gateway's stream cannot fan out: its workspace's open streams get a ``reset``, never silence.

An external system (agencies subscribe and publish on the ``inbox.*.v1`` topics) publishes onto
``inbox.conversations.v1`` a ``conversation.updated`` of workspace A whose conversation does not validate
(no customer, a string for a count). Two agents, of workspace A and of workspace B, each follow
``/api/stream``. A's stream must get ``reset`` (``fan_out_failed``: reload, then follow) and then the events
of a real customer message; B's stream gets its own message and no reset; the gateway goes on serving (a
later message reaches A too).

Before, the stream's translation passed a known event whose data did not validate on as published: A's
agent got a ``conversation.updated`` frame in the wrong shape (the raw event data, not a conversation) and
no reset, so the page's state silently missed the change.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from fault_kit import FaultStack, Workspace, stream_frames
from fault_meta import Customer, Meta, new_customers, text_webhook
from fault_tenants import Tenant, new_tenant

from inbox_core.events import Event
from inbox_core.topics import CONVERSATIONS

pytestmark = pytest.mark.timeout(180, func_only=True)


@dataclass
class Frame:
    at: float
    name: str
    data: Any


@dataclass
class StreamReader:
    """One agent's ``/api/stream``: every frame, with when it arrived."""

    url: str
    token: str
    frames: list[Frame] = field(default_factory=list)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str | None = None
    _task: asyncio.Task[None] | None = None

    def start(self) -> StreamReader:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        try:
            async for name, data in stream_frames(self.url, self.token, self.connected):
                self.frames.append(Frame(time.monotonic(), name, json.loads(data)))
            self.ended = "closed by the gateway"
        except Exception as exc:  # noted, so that a check fails with it rather than waiting out its deadline
            self.ended = repr(exc)
            raise

    def resets(self) -> list[Frame]:
        return [f for f in self.frames if f.name == "reset"]

    def message(self, wamid: str) -> Frame | None:
        return next((f for f in self.frames if f.name == "message.created"
                     and f.data["message"].get("wamid") == wamid), None)

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


async def until(what: str, check: Any, readers: list[StreamReader], within: float = 60.0) -> Any:
    """Waits for ``check()`` to be truthy (its value), failing after ``within`` s or when a stream ended."""
    deadline = time.monotonic() + within
    while not (value := check()):
        ended = [r.ended for r in readers if r.ended]
        assert not ended, f"a stream ended while waiting for {what}: {ended}"
        assert time.monotonic() < deadline, f"no {what} within {within} s"
        await asyncio.sleep(0.05)
    return value


async def sign_in(url: str, email: str, password: str) -> str:
    async with httpx.AsyncClient(timeout=30) as client:
        login = await client.post(f"{url}/api/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        return str(login.json()["token"])


def broken_conversation_updated(workspace_id: str, run: str) -> Event:
    """A real envelope of a known type, of workspace A, whose conversation does not validate."""
    return Event(type="conversation.updated", workspace_id=workspace_id, data={"conversation": {
        "id": f"conv_broken_{run}", "workspace_id": workspace_id, "number_id": "106540352242922",
        "unread_count": "many", "window": {"open": True}, "updated_at": "2026-01-01T00:00:00Z",
        "created_at": "2026-01-01T00:00:00Z"}})


async def test_an_event_the_stream_cannot_fan_out_gives_its_workspace_a_reset_and_the_stream_goes_on(
    fault_stack: FaultStack, workspace: Workspace
) -> None:
    url = fault_stack.url("gateway")
    run = uuid.uuid4().hex[:8]
    tenant_b: Tenant = await new_tenant(fault_stack, "Reset neighbour shop")
    email_b, password_b = f"agent.b.{run}@fault.test", "fault-password-b-123"
    await asyncio.to_thread(fault_stack.admin, "create-agent", "--email", email_b, "--name", "Agent B",
                            "--password", password_b, "--workspace", tenant_b.workspace_id, "--role", "admin")
    stream_a = StreamReader(url, await sign_in(url, workspace.agent_email, workspace.agent_password)).start()
    stream_b = StreamReader(url, await sign_in(url, email_b, password_b)).start()
    readers = [stream_a, stream_b]
    await asyncio.wait_for(asyncio.gather(stream_a.connected.wait(), stream_b.connected.wait()), 30)
    [customer_a] = new_customers(workspace.id, 1)
    [customer_b] = new_customers(tenant_b.workspace_id, 1, tenant_b.number)
    meta = Meta(f"{fault_stack.url('ingest')}/webhooks/whatsapp")
    producer = AIOKafkaProducer(bootstrap_servers=fault_stack.infra.kafka_bootstrap)
    await producer.start()

    async def deliver(customer: Customer, wamid: str, tenant: Tenant | None = None) -> float:
        """A customer's text through ingest's signed webhook; when its POST started."""
        body = (text_webhook(customer.wa_id, customer.name, wamid, f"hello {wamid}") if tenant is None else
                text_webhook(customer.wa_id, customer.name, wamid, f"hello {wamid}", number=tenant.number,
                             waba=tenant.waba))
        started = time.monotonic()
        assert await meta.deliver(body, started + 60), f"the webhook of {wamid} answered 200"
        return started

    try:
        # Warm-up: each stream follows its workspace (the gateway's feed is ready, the conversations exist).
        warm_a, warm_b = f"wamid.reset.{run}.warm.a", f"wamid.reset.{run}.warm.b"
        await asyncio.gather(deliver(customer_a, warm_a), deliver(customer_b, warm_b, tenant_b))
        await until("warm-up messages", lambda: stream_a.message(warm_a) and stream_b.message(warm_b), readers, 90)

        bad = broken_conversation_updated(workspace.id, run)
        await producer.send_and_wait(CONVERSATIONS.name, bad.to_bytes(), key=bad.data["conversation"]["id"].encode())
        published = time.monotonic()
        reset = await until("reset on A's stream", lambda: next(iter(stream_a.resets()), None), readers)

        real_a, real_b = f"wamid.reset.{run}.real.a", f"wamid.reset.{run}.real.b"
        sent_a, _ = await asyncio.gather(deliver(customer_a, real_a), deliver(customer_b, real_b, tenant_b))
        after_a = await until("A's real message", lambda: stream_a.message(real_a), readers)
        await until("B's real message", lambda: stream_b.message(real_b), readers)
        later_a = f"wamid.reset.{run}.later.a"
        sent_later = await deliver(customer_a, later_a)
        arrived_later = await until("A's later message", lambda: stream_a.message(later_a), readers)
    finally:
        await producer.stop()
        await meta.aclose()
        for reader in readers:
            await reader.stop()

    # What A's stream got between the bad event and its reset: the broken event must not reach it as a frame.
    broken_frames = [f for f in stream_a.frames if f.name == "conversation.updated"
                     and (f.data.get("id") == bad.data["conversation"]["id"]
                          or f.data.get("conversation", {}).get("id") == bad.data["conversation"]["id"])]
    real_names = [f.name for f in stream_a.frames if f.at > reset.at]
    print(f"bad conversation.updated published -> reset on A's stream: {(reset.at - published) * 1000:.0f} ms "
          f"({reset.data}); reset -> A's next real message.created: {(after_a.at - reset.at) * 1000:.0f} ms "
          f"(its webhook POST -> its event: {(after_a.at - sent_a) * 1000:.0f} ms); later message's webhook -> "
          f"event: {(arrived_later.at - sent_later) * 1000:.0f} ms")
    print(f"A's stream: {len(stream_a.resets())} reset(s), frames after the reset {real_names}; B's stream: "
          f"{len(stream_b.resets())} reset(s), {len(stream_b.frames)} frames; broken frames passed on to A: "
          f"{len(broken_frames)}")
    assert reset.data == {"reason": "fan_out_failed"}
    assert len(stream_a.resets()) == 1, "one reset for the one bad event"
    assert not broken_frames, "the broken event never reached the stream in a wrong shape"
    assert "message.created" in real_names and after_a.at > reset.at, "after the reset, the real events"
    # B's message was sent after A's reset went out, so a reset to B would have come before it.
    assert not stream_b.resets(), "the other workspace's stream got no reset"
    assert stream_a.ended is None and stream_b.ended is None, "both streams stayed open"
