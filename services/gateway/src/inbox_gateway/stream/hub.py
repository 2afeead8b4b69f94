"""The hub: the last frames for ``Last-Event-ID`` resumes, and each frame handed to the subscriptions of its
workspace without ever waiting (a subscription whose bounded queue is full is closed)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Iterable

from prometheus_client import Counter, Gauge

from inbox_gateway.stream.frames import Frame, sse

SSE_CONNECTIONS = Gauge("inbox_gateway_sse_connections", "Open /api/stream connections")
STREAM_RESETS = Counter("inbox_gateway_stream_resets_total", "reset frames sent to open streams after a gap",
                        ["reason"])


class Subscription:
    """One connection's view of the hub: its workspaces and a bounded queue of frames."""

    __slots__ = ("agent_id", "closed", "queue", "reset", "workspaces")

    def __init__(self, workspaces: Iterable[str], size: int, agent_id: str = "") -> None:
        self.workspaces = frozenset(workspaces)
        self.agent_id = agent_id
        self.queue: asyncio.Queue[Frame | None] = asyncio.Queue(maxsize=size + 1)  # +1: room for the close
        self.closed: str | None = None
        self.reset = False

    def wants(self, frame: Frame) -> bool:
        return frame.workspace_id in self.workspaces and (not frame.agent_id or frame.agent_id == self.agent_id)

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
            if not frame.agent_id or frame.agent_id == subscription.agent_id:
                subscription.offer(frame)

    def subscribe(self, workspaces: Iterable[str], last_event_id: str | None = None,
                  agent_id: str = "") -> Subscription:
        """A new subscription (``agent_id``: whose frames meant for one agent it gets); with
        ``last_event_id``, first what came after it (if still buffered)."""
        subscription = Subscription(workspaces, self.queue_size, agent_id)
        if last_event_id:
            after = self._seq_of.get(last_event_id)
            replay = [] if after is None else [f for seq, f in self._ring if seq > after and subscription.wants(f)]
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
