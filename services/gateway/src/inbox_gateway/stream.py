"""The live stream (``GET /api/stream``, server-sent events): every replica reads every ``inbox.*.v1`` event
and pushes each to the connected agents of its workspace.

- :class:`KafkaFeed` reads all partitions of the four topics with no consumer group (manual assignment,
  from the end: a replica streams what happens while it runs), so every replica sees every event. Each
  event is fanned out inside a span continuing the producer's trace (W3C context in the record headers).
- :class:`Hub` turns each event into one SSE frame (encoded once), keeps the last
  ``GATEWAY_STREAM_BUFFER_SIZE`` frames for ``Last-Event-ID`` resumes, drops redeliveries (same event id),
  and hands each frame to the subscriptions of its workspace without ever waiting: every connection has
  its own bounded queue, and a connection whose queue is full is closed (a final ``event: error`` with
  ``{"reason": "too_slow"}``), so a slow client never delays the others; it reconnects and resumes.
- :class:`EventStream` is one connection (a plain ASGI app): keep-alive comments and a timeout on every
  write (a client that stops reading is dropped). The gateway keeps the open streams up in one batch
  (``Gateway.stream_upkeep``): sessions that ended close theirs, and presence hears that their agents
  are online.

Event names (docs/api.md): ``conversation.updated`` (a Conversation), ``message.created`` / ``message.updated``
(``{conversation_id, message}``), ``note.created`` (``{conversation_id, note}``), ``activity.created``
(``{conversation_id, activity}``), ``composing``, ``presence``, ``viewing``, ``order.updated`` (an Order),
``customer.updated`` (a Customer with its ``stats``). Any other event type is passed on under its own
name with its data as published. ``reset`` says the stream has a gap: as the first frame, the
``Last-Event-ID`` is no longer in the buffer; later, an event could not be fanned out (an unexpected
error; the other events go on) or the feed could not resume where it stopped. Reload, then follow the
stream. The feed resumes a reconnect from the offsets it had read, so an error or a Kafka outage loses
nothing; a ``Last-Event-ID`` from before a gap gets ``reset`` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter
from prometheus_client import Counter, Gauge
from pydantic import ValidationError

from inbox_core.events import Event
from inbox_core.events import conversations as cev
from inbox_core.events import customers as kev
from inbox_core.events import orders as oev
from inbox_core.events import presence as pev
from inbox_core.topics import CONVERSATIONS, CUSTOMERS, ORDERS, PRESENCE
from inbox_gateway import convert

log = logging.getLogger("inbox.gateway.stream")

TOPICS = (CONVERSATIONS.name, CUSTOMERS.name, ORDERS.name, PRESENCE.name)
RETRY_MS = 3000

_encoder = msgspec.json.Encoder()

SSE_CONNECTIONS = Gauge("inbox_gateway_sse_connections", "Open /api/stream connections")
STREAM_EVENTS = Counter("inbox_gateway_stream_events_total", "Events read by the stream feed, by outcome",
                        ["topic", "outcome"])
STREAM_RESETS = Counter("inbox_gateway_stream_resets_total", "reset frames sent to open streams after a gap",
                        ["reason"])

_tracer = trace.get_tracer("inbox.gateway.stream")

Headers = Sequence[tuple[str, bytes | None]]


class _HeadersGetter(Getter[Headers]):
    """Reads W3C trace context from Kafka record headers (what FastStream's producers put there)."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: Headers) -> list[str]:
        return [k for k, _ in carrier]


_HEADERS = _HeadersGetter()


@dataclass(frozen=True)
class Frame:
    id: str
    workspace_id: str
    name: str
    data: bytes  # the SSE frame, ready to write


def sse(name: str, data: Any, event_id: str | None = None) -> bytes:
    lines = []
    if event_id:
        lines.append(b"id: " + _clean(event_id).encode())
    lines.append(b"event: " + _clean(name).encode())
    lines.append(b"data: " + _encoder.encode(data))
    return b"\n".join(lines) + b"\n\n"


def _clean(value: str) -> str:
    return value.replace("\r", "").replace("\n", "")


def _without_composing(conversation: Any) -> dict[str, Any]:
    # Composing changes arrive as their own events; an empty list here would wrongly clear them.
    data: dict[str, Any] = msgspec.to_builtins(conversation)
    data.pop("composing", None)
    return data


def _presence_agent(agent: pev.PresenceAgent) -> dict[str, str]:
    return {"id": agent.id, "name": agent.name}


def translate(event: Event) -> tuple[str, Any]:
    """The SSE name and data of an event (docs/api.md's names; unknown types pass through unchanged)."""
    t = event.type
    try:
        if t in ("conversation.created", "conversation.updated"):
            c = event.payload(cev.ConversationEvent).conversation
            return "conversation.updated", _without_composing(convert.conversation_from_event(c))
        if t == "message.created":
            mc = event.payload(cev.MessageCreated)
            return t, {"conversation_id": mc.conversation_id, "message": convert.message_from_event(mc.message)}
        if t == "message.updated":
            mu = event.payload(cev.MessageUpdated)
            return t, {"conversation_id": mu.conversation_id, "message": convert.message_from_event(mu.message),
                       "changes": mu.changes}
        if t == "note.created":
            nc = event.payload(cev.NoteCreated)
            return t, {"conversation_id": nc.conversation_id, "note": convert.note_from_event(nc.note)}
        if t == "activity.created":
            ac = event.payload(cev.ActivityCreated)
            return t, {"conversation_id": ac.conversation_id,
                       "activity": convert.activity_from_event(ac.activity)}
        if t in ("presence.composing.started", "presence.composing.stopped"):
            on = t.endswith("started")
            cs = event.payload(pev.ComposingStarted if on else pev.ComposingStopped)
            return "composing", {"conversation_id": cs.conversation_id, "agent": _presence_agent(cs.agent),
                                 "composing": on, "session_id": cs.session_id,
                                 "expires_at": cs.expires_at if isinstance(cs, pev.ComposingStarted) else None}
        if t in ("presence.viewing.started", "presence.viewing.stopped"):
            on = t.endswith("started")
            vs = event.payload(pev.ViewingStarted if on else pev.ViewingStopped)
            return "viewing", {"conversation_id": vs.conversation_id, "agent": _presence_agent(vs.agent),
                               "viewing": on, "session_id": vs.session_id}
        if t == "presence.agent.online":
            online = event.payload(pev.AgentOnline)
            return "presence", {"agent": _presence_agent(online.agent), "online": True, "since": online.since}
        if t == "presence.agent.offline":
            offline = event.payload(pev.AgentOffline)
            return "presence", {"agent": _presence_agent(offline.agent), "online": False,
                                "last_seen": offline.last_seen}
        if t in ("order.created", "order.stage_changed", "order.updated"):
            order = event.payload(oev.OrderEvent).order
            return "order.updated", convert.order_from_event(order)
        if t in ("customer.created", "customer.updated", "customer.stats_changed"):
            snapshot = event.payload(kev.CustomerEvent).customer
            data = msgspec.to_builtins(convert.customer_from_event(snapshot))
            data["stats"] = convert.stats_from_event(snapshot.stats)
            return "customer.updated", data
    except (ValidationError, KeyError) as exc:
        log.warning("event %s of type %s did not parse (%s); passed on as published", event.id, t, exc)
    return t, event.data


def frame_of(event: Event) -> Frame | None:
    if not event.workspace_id:
        return None  # nobody may see an event of no workspace
    name, data = translate(event)
    return Frame(id=event.id, workspace_id=event.workspace_id, name=name, data=sse(name, data, event.id))


# --- the hub ---------------------------------------------------------------------------------------------


class Subscription:
    """One connection's view of the hub: its workspaces and a bounded queue of frames."""

    __slots__ = ("closed", "queue", "reset", "workspaces")

    def __init__(self, workspaces: Iterable[str], size: int) -> None:
        self.workspaces = frozenset(workspaces)
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize=size + 1)  # +1: room for the close
        self.closed: str | None = None
        self.reset = False

    def offer(self, frame: Frame) -> None:
        if self.closed is not None:
            return
        if self.queue.qsize() >= self.queue.maxsize - 1:
            self.close("too_slow")
            return
        self.queue.put_nowait(frame)

    def close(self, reason: str) -> None:
        """Ends the connection after what it has (``too_slow``: at once, the backlog is dropped)."""
        if self.closed is not None:
            return
        self.closed = reason
        if reason == "too_slow":
            while not self.queue.empty():
                self.queue.get_nowait()
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class Hub:
    def __init__(self, buffer_size: int = 5000, queue_size: int = 256) -> None:
        self.buffer_size = buffer_size
        self.queue_size = queue_size
        self._ring: deque[tuple[int, Frame]] = deque()
        self._seq_of: dict[str, int] = {}
        self._seq = 0
        self._by_workspace: dict[str, set[Subscription]] = {}
        self._subscriptions: set[Subscription] = set()
        self.published = 0
        # The sequence number at the last gap, per workspace and for all: a resume from before it is a reset.
        self._gap_of: dict[str, int] = {}
        self._gap_all = 0

    @property
    def connections(self) -> int:
        return len(self._subscriptions)

    def publish(self, frame: Frame) -> None:
        if frame.id in self._seq_of:
            return  # a redelivery (at-least-once): already sent
        self._seq += 1
        if len(self._ring) >= self.buffer_size:
            _, old = self._ring.popleft()
            self._seq_of.pop(old.id, None)
        self._ring.append((self._seq, frame))
        self._seq_of[frame.id] = self._seq
        self.published += 1
        for subscription in tuple(self._by_workspace.get(frame.workspace_id, ())):
            subscription.offer(frame)

    def subscribe(self, workspaces: Iterable[str], last_event_id: str | None = None) -> Subscription:
        """A new subscription; with ``last_event_id``, first what came after it (if still buffered)."""
        subscription = Subscription(workspaces, self.queue_size)
        if last_event_id:
            after = self._seq_of.get(last_event_id)
            replay = [] if after is None else [
                f for seq, f in self._ring if seq > after and f.workspace_id in subscription.workspaces]
            gap = max([self._gap_all, *(self._gap_of.get(w, 0) for w in subscription.workspaces)])
            if after is None or after <= gap or len(replay) > self.queue_size:
                subscription.reset = True
            else:
                for frame in replay:
                    subscription.offer(frame)
        # No await between the replay and the registration: no event can fall in between.
        self._subscriptions.add(subscription)
        SSE_CONNECTIONS.inc()
        for workspace_id in subscription.workspaces:
            self._by_workspace.setdefault(workspace_id, set()).add(subscription)
        return subscription

    def gap(self, workspace_id: str | None, reason: str) -> int:
        """Events of ``workspace_id`` (of every workspace when None) were missed: its open streams get a
        ``reset`` and a resume from before now is one. Returns how many streams were told."""
        self._seq += 1  # the gap's place in the order, so a resume from any earlier event sees it
        if workspace_id is None:
            self._gap_all = self._seq
            targets = set(self._subscriptions)
        else:
            self._gap_of[workspace_id] = self._seq
            targets = set(self._by_workspace.get(workspace_id, ()))
        STREAM_RESETS.labels(reason).inc(len(targets))
        for subscription in targets:
            subscription.offer(Frame(id="", workspace_id=workspace_id or "", name="reset",
                                     data=sse("reset", {"reason": reason})))
        return len(targets)

    def is_open(self, subscription: Subscription) -> bool:
        return subscription in self._subscriptions

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.discard(subscription)
            SSE_CONNECTIONS.dec()
        self._detach(subscription)

    def _detach(self, subscription: Subscription) -> None:
        for workspace_id in subscription.workspaces:
            subs = self._by_workspace.get(workspace_id)
            if subs is not None:
                subs.discard(subscription)
                if not subs:
                    del self._by_workspace[workspace_id]

    def change_workspaces(self, subscription: Subscription, workspaces: Iterable[str]) -> None:
        """Follows a membership change, and tells the connection (``workspaces``, with the ones it has now),
        so that a page can say at once that a workspace was lost (or gained) instead of finding out later."""
        self._detach(subscription)
        subscription.workspaces = frozenset(workspaces)
        for workspace_id in subscription.workspaces:
            self._by_workspace.setdefault(workspace_id, set()).add(subscription)
        # No SSE id: it is no event of the topics, so Last-Event-ID keeps naming the last one that was.
        subscription.offer(Frame(id=f"workspaces-{uuid.uuid4().hex}", workspace_id="", name="workspaces",
                                 data=sse("workspaces", {"workspaces": sorted(subscription.workspaces)})))

    def close_all(self, reason: str) -> None:
        for subscription in list(self._subscriptions):
            subscription.close(reason)


# --- reading Kafka ---------------------------------------------------------------------------------------


class KafkaFeed:
    """Every event of the topics, to the hub: all partitions assigned by hand, no group, from the end."""

    def __init__(self, bootstrap: str, hub: Hub, topics: Iterable[str] = TOPICS, client_id: str = "inbox-gateway"):
        self.bootstrap = bootstrap
        self.hub = hub
        self.topics = tuple(topics)
        self.client_id = f"{client_id}-{uuid.uuid4().hex[:8]}"
        self.ready = asyncio.Event()
        # The next offset to read of every assigned partition: a reconnect resumes there, not at the end.
        self.positions: dict[TopicPartition, int] = {}

    async def run(self) -> None:
        """Reads until cancelled; (re)connects with backoff while Kafka is away."""
        backoff = 0.5
        while True:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, client_id=self.client_id, group_id=None,
                                        enable_auto_commit=False, auto_offset_reset="latest")
            try:
                await consumer.start()
                await self._assign(consumer)
                self.ready.set()
                backoff = 0.5
                while True:
                    batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                    for tp, records in batches.items():
                        for record in records:
                            try:
                                self._handle(record.value, record.headers, record.topic)
                            except Exception:  # not even its workspace is known: every stream is told
                                log.exception("stream feed: a record of %s could not be handled", tp)
                                STREAM_EVENTS.labels(record.topic, "failed").inc()
                                self.hub.gap(None, "fan_out_failed")
                            self.positions[tp] = record.offset + 1
                            # Lets the connections write between events, so a burst does not fill their queues.
                            await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.ready.clear()
                log.warning("stream feed: %r; reconnecting in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                with contextlib.suppress(Exception):
                    await consumer.stop()

    async def _assign(self, consumer: AIOKafkaConsumer) -> None:
        partitions = [TopicPartition(topic, p) for topic, count in (await self._partitions()).items()
                      for p in range(count)]
        consumer.assign(partitions)
        known = [tp for tp in partitions if tp in self.positions]
        await consumer.seek_to_end(*[tp for tp in partitions if tp not in self.positions])
        if known:
            # A reconnect: on from where the last consumer stopped, unless the topic no longer has it.
            earliest = await consumer.beginning_offsets(known)
            lost = [tp for tp in known if earliest[tp] > self.positions[tp]]
            for tp in known:
                consumer.seek(tp, max(self.positions[tp], earliest[tp]))
            if lost:
                log.warning("stream feed: events of %s are gone from Kafka; the open streams get a reset", lost)
                self.hub.gap(None, "feed_gap")
        # Resolve the offsets now, so that "ready" means "everything from here on is seen".
        for tp in partitions:
            self.positions[tp] = await consumer.position(tp)

    async def _partitions(self) -> dict[str, int]:
        """Each topic's partition count; waits (up to 30 s) for topics that are still being created."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap, client_id=self.client_id)
        await admin.start()
        try:
            deadline = time.monotonic() + 30
            while True:
                described = await admin.describe_topics(list(self.topics))
                counts = {d["topic"]: len(d.get("partitions") or []) for d in described}
                missing = [t for t in self.topics if not counts.get(t)]
                if not missing:
                    return counts
                if time.monotonic() > deadline:
                    raise RuntimeError(f"topics {missing} do not exist")
                await asyncio.sleep(0.5)
        finally:
            await admin.close()

    def _handle(self, raw: bytes | None, headers: Headers = (), topic: str = "") -> None:
        if raw is None:
            return
        # A child of the producer's span, so one trace reaches from the webhook to the stream.
        with _tracer.start_as_current_span(
            f"{topic} fan-out", context=propagate.extract(headers, getter=_HEADERS), kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                        "messaging.operation": "process"},
        ) as span:
            try:
                event = Event.from_bytes(raw)
            except ValidationError:
                log.warning("stream feed: a message that is not an event was skipped")
                STREAM_EVENTS.labels(topic, "invalid").inc()
                return
            span.set_attribute("messaging.message.id", event.id)
            span.set_attribute("inbox.event_type", event.type)
            try:
                frame = frame_of(event)
                if frame is None:
                    STREAM_EVENTS.labels(topic, "no_workspace").inc()
                    return
                self.hub.publish(frame)
            except Exception:
                # One event that cannot be fanned out (a bug) costs its workspace's streams a reset, never
                # silence, and the feed goes on with the next event.
                log.exception("stream feed: event %s (%s) could not be fanned out", event.id, event.type)
                STREAM_EVENTS.labels(topic, "failed").inc()
                self.hub.gap(event.workspace_id or None, "fan_out_failed")
                return
            STREAM_EVENTS.labels(topic, "fanned_out").inc()


# --- one connection --------------------------------------------------------------------------------------

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
                frame = getter.result()
                getter = None
                if frame is None:
                    await self._write(send, sse("error", {"reason": sub.closed or "closed"}))
                    return
                if not await self._write(send, frame.data):
                    return
        finally:
            self.hub.unsubscribe(sub)
            for task in (getter, disconnected):
                if task is not None and not task.done():
                    task.cancel()
            if not self._broken:
                with contextlib.suppress(Exception):
                    await self._send(send, {"type": "http.response.body", "body": b"", "more_body": False})

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
