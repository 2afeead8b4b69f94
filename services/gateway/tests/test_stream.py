"""The live stream end to end: events published to the real inbox.*.v1 topics reach, over real HTTP,
exactly the agents of their workspace, on every gateway replica, with docs/api.md's names; Last-Event-ID
resumes; keep-alives flow; a client that stops reading is dropped without delaying the others."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from faststream.kafka import KafkaBroker
from gateway_testkit import FAST_PASSWORDS, Server, Team, gateway_settings, login, make_team, open_stream

from inbox_core.events import Event
from inbox_core.events import conversations as cev
from inbox_core.events import customers as kev
from inbox_core.events import orders as oev
from inbox_core.events import presence as pev
from inbox_core.kafka import publish
from inbox_core.settings import InboxSettings
from inbox_core.topics import CONVERSATIONS, CUSTOMERS, ORDERS, PRESENCE
from inbox_gateway.gateway import Gateway


async def running_gateway(inbox_settings: InboxSettings, mongo_client: Any, **changes: Any) -> Gateway:
    return Gateway(gateway_settings(inbox_settings, **changes), client=mongo_client, passwords=FAST_PASSWORDS)


@contextlib.asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[Server]:
    async with Server(gateway) as server:
        assert gateway.feed is not None
        await asyncio.wait_for(gateway.feed.ready.wait(), 60)  # reading every partition from its end
        yield server


def now() -> datetime:
    return datetime.now(UTC)


def conversation_event(team: Team, conversation_id: str) -> Event:
    summary = cev.ConversationSummary(
        id=conversation_id, workspace_id=team.workspace_id, number_id=team.number,
        customer=cev.CustomerRef(id="cus_1", wa_id="34600111222", name="Ada", phone="+34600111222"),
        last_message=cev.LastMessage(id="msg_1", direction="in", type="text", preview="hi", at=now()),
        unread_count=2, awaiting_reply=True, window=cev.Window(open=True, expires_at=now() + timedelta(hours=23)),
        updated_at=now(), created_at=now(), version=3)
    return Event.of(cev.ConversationUpdated(conversation=summary), workspace_id=team.workspace_id)


def message_event(team: Team, conversation_id: str) -> Event:
    message = cev.MessageView(id=f"msg_{uuid.uuid4().hex[:8]}", conversation_id=conversation_id, direction="in",
                              type="text", text="hello", at=now())
    return Event.of(cev.MessageCreated(conversation_id=conversation_id, message=message),
                    workspace_id=team.workspace_id)


def order_event(team: Team) -> Event:
    order = oev.OrderSnapshot(
        id=f"ord_{uuid.uuid4().hex[:8]}", number=1, workspace_id=team.workspace_id, customer_id="cus_1",
        items=[oev.OrderItem(sku="MUG", name="Mug", quantity=2, unit_price=oev.Money(amount="12.50", currency="EUR"),
                             line_total=oev.Money(amount="25.00", currency="EUR"))],
        total=oev.Money(amount="25.00", currency="EUR"), stage="new",
        stage_history=[oev.StageChange(stage="new", at=now())], created_at=now())
    return Event.of(oev.OrderCreated(order=order), workspace_id=team.workspace_id)


def customer_event(team: Team) -> Event:
    customer = kev.CustomerSnapshot(id="cus_1", workspace_id=team.workspace_id, wa_id="34600111222", name="Ada",
                                    tags=["vip"], stats=kev.CustomerStats(orders=1, revenue_amount="25.00",
                                                                          revenue_currency="EUR"))
    return Event.of(kev.CustomerUpdated(customer=customer), workspace_id=team.workspace_id)


def composing_event(team: Team, conversation_id: str) -> Event:
    payload = pev.ComposingStarted(session_id="s1", conversation_id=conversation_id,
                                   agent=pev.PresenceAgent(id=team.agent.id, name="Ben"), since=now(),
                                   expires_at=now() + timedelta(seconds=6))
    return Event.of(payload, workspace_id=team.workspace_id)


def custom_event(team: Team, **data: Any) -> Event:
    return Event(type="test.custom", workspace_id=team.workspace_id, data=data)


async def test_agents_get_exactly_their_workspaces_events_with_api_names(
        inbox_settings: InboxSettings, mongo_client: Any, broker: KafkaBroker) -> None:
    gateway = await running_gateway(inbox_settings, mongo_client)
    a, b = await make_team(gateway, "Alpha"), await make_team(gateway, "Beta")
    async with serving(gateway) as server:
        await login(server, a.agent)
        await login(server, b.agent)
        async with server.client(a.agent.token) as ca, server.client(b.agent.token) as cb, \
                open_stream(ca) as stream_a, open_stream(cb) as stream_b:
            conv = f"cnv_{uuid.uuid4().hex[:8]}"
            mine = [(CONVERSATIONS, conv, conversation_event(a, conv)), (CONVERSATIONS, conv, message_event(a, conv)),
                    (ORDERS, "o", order_event(a)), (CUSTOMERS, "c", customer_event(a)),
                    (PRESENCE, conv, composing_event(a, conv)), (CONVERSATIONS, conv, custom_event(a, x=1))]
            theirs = message_event(b, "cnv_b")
            for topic, key, event in mine:
                await publish(broker, topic, key, event)
            await publish(broker, CONVERSATIONS, conv, theirs)
            await publish(broker, CONVERSATIONS, conv, Event(type="test.custom", workspace_id=None, data={}))
            marker = custom_event(a, marker=True)
            await publish(broker, CONVERSATIONS, conv, marker)  # same partition as B's: after it in order

            got = {}
            while marker.id not in got:
                event = await stream_a.next()
                got[event.id] = event
            assert set(got) == {e.id for _, _, e in mine} | {marker.id}  # nothing of B's, nothing without workspace
            names = {e.id: got[e.id].event for _, _, e in mine}
            assert [names[e.id] for _, _, e in mine] == ["conversation.updated", "message.created", "order.updated",
                                                         "customer.updated", "composing", "test.custom"]
            conversation = got[mine[0][2].id].data
            assert conversation["id"] == conv and conversation["unread_count"] == 2
            assert conversation["customer"]["name"] == "Ada" and "composing" not in conversation
            assert got[mine[1][2].id].data["message"]["kind"] == "message"
            order = got[mine[2][2].id].data
            assert order["total"] == {"amount": "25.00", "currency": "EUR"}
            assert order["items"][0]["unit_price"] == "12.50" and order["stage"] == "new"
            assert got[mine[3][2].id].data["stats"]["revenue"] == {"amount": "25.00", "currency": "EUR"}
            assert got[mine[4][2].id].data["composing"] is True
            assert got[mine[5][2].id].data == {"x": 1}

            theirs_seen = await stream_b.until(lambda e: e.id == theirs.id)
            assert theirs_seen.event == "message.created"
            assert not any(e.id in got for e in stream_b.events)


async def test_every_replica_streams_every_event(inbox_settings: InboxSettings, mongo_client: Any,
                                                 broker: KafkaBroker) -> None:
    replica_1 = await running_gateway(inbox_settings, mongo_client)
    replica_2 = await running_gateway(inbox_settings, mongo_client)
    team = await make_team(replica_1)
    async with serving(replica_1) as s1, serving(replica_2) as s2:
        token = await login(s1, team.agent)
        async with s1.client(token) as c1, s2.client(token) as c2, open_stream(c1) as r1, open_stream(c2) as r2:
            event = custom_event(team, n=1)
            await publish(broker, CONVERSATIONS, "k", event)
            assert (await r1.until(lambda e: e.id == event.id)).data == {"n": 1}
            assert (await r2.until(lambda e: e.id == event.id)).data == {"n": 1}


async def test_last_event_id_resumes_from_the_buffer(inbox_settings: InboxSettings, mongo_client: Any,
                                                     broker: KafkaBroker) -> None:
    gateway = await running_gateway(inbox_settings, mongo_client)
    team = await make_team(gateway)
    async with serving(gateway) as server, server.client(await login(server, team.agent)) as client:
        first, second, third = (custom_event(team, n=i) for i in range(3))
        async with open_stream(client) as stream:
            await publish(broker, CONVERSATIONS, "k", first)
            await stream.until(lambda e: e.id == first.id)
        # Missed while disconnected:
        await publish(broker, CONVERSATIONS, "k", second)
        await publish(broker, CONVERSATIONS, "k", third)
        deadline = time.monotonic() + 20
        while third.id not in gateway.hub._seq_of and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        async with open_stream(client, **{"Last-Event-ID": first.id}) as resumed:
            assert [(await resumed.next()).id, (await resumed.next()).id] == [second.id, third.id]
        async with open_stream(client, **{"Last-Event-ID": "long-gone"}) as reset:
            event = await reset.next()
            assert event.event == "reset" and event.data == {"reason": "last_event_id_unknown"}


async def test_an_event_that_cannot_be_fanned_out_gives_its_workspaces_streams_a_reset_never_silence(
        inbox_settings: InboxSettings, mongo_client: Any, broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A forced exception in the fan-out of one event: the open streams of its workspace get ``reset`` (they
    missed it), the others nothing, the feed goes on with the next events, and a resume from before the
    gap is a reset too. Before, the feed reconnected and sought to the end: what came in between never
    reached the open streams, which heard nothing of it."""
    from inbox_gateway.stream import frames as stream_module

    gateway = await running_gateway(inbox_settings, mongo_client)
    a, b = await make_team(gateway, "Alpha"), await make_team(gateway, "Beta")
    real_translate = stream_module.translate

    def translate(event: Event) -> tuple[str, Any]:
        if event.data.get("poison"):
            raise RuntimeError("a bug in the fan-out")
        return real_translate(event)

    monkeypatch.setattr(stream_module, "translate", translate)
    async with serving(gateway) as server:
        await login(server, a.agent)
        await login(server, b.agent)
        async with server.client(a.agent.token) as ca, server.client(b.agent.token) as cb, \
                open_stream(ca) as stream_a, open_stream(cb) as stream_b:
            before, poison, after = custom_event(a, n=1), custom_event(a, poison=True), custom_event(a, n=2)
            theirs = custom_event(b, n=3)
            for event in (before, poison, after, theirs):
                await publish(broker, CONVERSATIONS, "k", event)
            seen = [(await stream_a.next()) for _ in range(3)]
            assert [(e.event, e.id) for e in seen] == [("test.custom", before.id), ("reset", None),
                                                       ("test.custom", after.id)]
            assert seen[1].data == {"reason": "fan_out_failed"}
            assert (await stream_b.next()).id == theirs.id, "another workspace's stream is not reset"
        async with server.client(a.agent.token) as ca, open_stream(ca, **{"Last-Event-ID": before.id}) as resumed:
            event = await resumed.next()
            assert event.event == "reset" and event.data == {"reason": "last_event_id_unknown"}
        async with server.client(a.agent.token) as ca, open_stream(ca, **{"Last-Event-ID": after.id}) as resumed:
            later = custom_event(a, n=4)
            await publish(broker, CONVERSATIONS, "k", later)
            assert (await resumed.next()).id == later.id, "after the gap, a resume is a resume"


async def test_the_feed_resumes_from_its_offsets_after_an_error_so_nothing_is_missed(
        inbox_settings: InboxSettings, mongo_client: Any, broker: KafkaBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The feed's consumer fails (here a forced error in its fetch) and reconnects: it goes on from the
    offsets it had read, so the events published meanwhile still reach the open stream, in order."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaConnectionError

    gateway = await running_gateway(inbox_settings, mongo_client)
    team = await make_team(gateway)
    real_getmany = AIOKafkaConsumer.getmany
    failing = asyncio.Event()

    async def getmany(self: AIOKafkaConsumer, *args: Any, **kwargs: Any) -> Any:
        if failing.is_set():
            failing.clear()
            raise KafkaConnectionError("the connection broke")
        return await real_getmany(self, *args, **kwargs)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", getmany)
    async with serving(gateway) as server, server.client(await login(server, team.agent)) as client, \
            open_stream(client) as stream:
        first = custom_event(team, n=0)
        await publish(broker, CONVERSATIONS, "k", first)
        assert (await stream.next()).id == first.id
        failing.set()
        while failing.is_set():
            await asyncio.sleep(0.01)
        meanwhile = [custom_event(team, n=i) for i in range(1, 6)]
        for event in meanwhile:  # while the feed waits to reconnect
            await publish(broker, CONVERSATIONS, "k", event)
        got = [(await stream.next(timeout=30)) for _ in meanwhile]
        assert [(e.event, e.id) for e in got] == [("test.custom", e.id) for e in meanwhile]


async def test_keep_alive_comments(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    gateway = await running_gateway(inbox_settings, mongo_client, stream_keepalive_s=0.3)
    team = await make_team(gateway)
    async with serving(gateway) as server, server.client(await login(server, team.agent)) as client, \
            open_stream(client) as stream:
        started = time.monotonic()
        assert await stream.comment(5) == "connected"
        assert await stream.comment(5) == "keep-alive"
        assert await stream.comment(5) == "keep-alive"
        assert time.monotonic() - started < 2.0


async def test_logout_ends_the_stream(inbox_settings: InboxSettings, mongo_client: Any) -> None:
    gateway = await running_gateway(inbox_settings, mongo_client, stream_heartbeat_s=0.3)
    team = await make_team(gateway)
    async with serving(gateway) as server, server.client(await login(server, team.agent)) as client, \
            open_stream(client) as stream:
        assert (await client.post("/api/auth/logout")).status_code == 204
        ended = await stream.next(10)
        assert ended.event == "error" and ended.data == {"reason": "session_ended"}


async def test_stream_needs_a_session(gateway: Gateway) -> None:
    async with Server(gateway) as server, server.client() as client:
        response = await client.get("/api/stream")
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthenticated"


@pytest.mark.timeout(120)
async def test_a_client_that_stops_reading_is_dropped_without_delaying_the_others(
        inbox_settings: InboxSettings, mongo_client: Any, broker: KafkaBroker) -> None:
    gateway = await running_gateway(inbox_settings, mongo_client, stream_queue_size=32, stream_send_timeout_s=2.0)
    team = await make_team(gateway)
    async with serving(gateway) as server:
        token = await login(server, team.agent)
        # The slow client: a socket with a tiny receive buffer that reads the response headers, then nothing.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 20)
        writer.write(f"GET /api/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n".encode())
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
        async with server.client(token) as client, open_stream(client) as fast:
            deadline = time.monotonic() + 10
            while gateway.hub.connections < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            blob = "x" * 20_000
            events = [custom_event(team, n=i, blob=blob) for i in range(250)]

            async def read_all() -> list[str]:
                received: list[str] = []
                while len(received) < len(events):
                    event = await fast.next(30)
                    assert event.event != "error", event.data
                    if event.event == "test.custom":
                        received.append(event.id or "")
                return received

            reading = asyncio.create_task(read_all())  # the fast client reads all along
            started = time.monotonic()
            for event in events:
                await publish(broker, CONVERSATIONS, "k", event)
            published = time.monotonic()
            received = await reading
            # The fast client kept pace with the publishing: the stuck one held nothing up.
            assert received == [e.id for e in events]
            assert time.monotonic() - published < 5.0, time.monotonic() - started
            # The stuck connection was dropped (its queue overflowed, then its write timed out).
            deadline = time.monotonic() + 15
            while gateway.hub.connections > 1 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert gateway.hub.connections == 1
        rest = await asyncio.wait_for(reader.read(), 30)  # reads on to the end: the server closed it
        frames = rest.count(b"event: test.custom")
        assert frames < len(events)
        writer.close()
