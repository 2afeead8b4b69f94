"""The gateway's parts, built once per process and shared by every request: its database (agents,
workspaces, sessions), the gRPC channels to the services, and the live stream's hub and Kafka feed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Iterable
from typing import Any

from pymongo import AsyncMongoClient

from inbox.common.v1 import common_pb2
from inbox_core.mongo import Document, make_client, ping, service_database
from inbox_gateway.accounts import Accounts, Principal, Workspace
from inbox_gateway.auth import Auth, Passwords
from inbox_gateway.locator import Locator
from inbox_gateway.members import Members
from inbox_gateway.settings import GatewaySettings
from inbox_gateway.stream import TOPICS, Hub, KafkaFeed, Subscription
from inbox_gateway.upstream import Upstream

log = logging.getLogger("inbox.gateway")

PURGE_EVERY_S = 600.0
WORKSPACE_CACHE_S = 60.0
# How often each replica reads the memberships version (one lookup by _id): a member removed on another
# replica loses this replica's open streams within this.
MEMBERSHIP_POLL_S = 1.0


class Gateway:
    def __init__(self, settings: GatewaySettings, *, client: AsyncMongoClient[Document] | None = None,
                 passwords: Passwords | None = None, stream: bool = True,
                 stream_topics: Iterable[str] = TOPICS) -> None:
        self.settings = settings
        self._own_client = client is None
        self.client = client or make_client(settings.inbox, "gateway")
        self.accounts = Accounts(service_database(self.client, settings.inbox, "gateway"))
        self.auth = Auth(settings, self.accounts, passwords)
        self.members = Members(self.accounts, self.auth, settings.invitation_ttl_s)
        self.upstream = Upstream(settings)
        self.locator = Locator(self.upstream, settings.channels_cache_s)
        self.hub = Hub(settings.stream_buffer_size, settings.stream_queue_size)
        self.feed = KafkaFeed(settings.inbox.kafka_bootstrap, self.hub, stream_topics) if stream else None
        # The open streams and whose they are: kept up by _stream_upkeep (sessions, memberships, presence).
        self.streams: dict[Subscription, Principal] = {}
        self._workspaces: dict[str, tuple[float, Workspace]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Future[Any]] = set()

    async def start(self) -> None:
        await self.accounts.ensure_indexes()
        await self.upstream.start()
        if self.feed is not None:
            self._tasks.append(asyncio.create_task(self.feed.run(), name="stream-feed"))
        self._tasks.append(asyncio.create_task(self._purge_loop(), name="purge"))
        self._tasks.append(asyncio.create_task(self._stream_upkeep_loop(), name="stream-upkeep"))
        self._tasks.append(asyncio.create_task(self._membership_watch_loop(), name="membership-watch"))

    async def close_streams(self) -> None:
        self.hub.close_all("shutting_down")

    async def stop(self) -> None:
        self.hub.close_all("shutting_down")
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        await self.upstream.stop()
        if self._own_client:
            await self.client.close()

    def spawn(self, work: Awaitable[Any]) -> None:
        """Runs ``work`` in the background (a reference is kept until it is done)."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def ready(self) -> bool:
        return await ping(self.client)

    async def workspace(self, workspace_id: str) -> Workspace:
        """A workspace's name and currency (kept a minute: they rarely change)."""
        cached = self._workspaces.get(workspace_id)
        now = time.monotonic()
        if cached is not None and now - cached[0] < WORKSPACE_CACHE_S:
            return cached[1]
        workspace = await self.accounts.get_workspace(workspace_id)
        self._workspaces[workspace_id] = (now, workspace)
        return workspace

    # --- open streams -------------------------------------------------------------------------------------

    def open_stream(self, principal: Principal, last_event_id: str | None) -> Subscription:
        subscription = self.hub.subscribe(principal.workspaces, last_event_id, principal.agent_id)
        self.streams[subscription] = principal
        self.spawn(self._heartbeats({(ws, principal.agent_id, principal.name) for ws in principal.workspaces}))
        return subscription

    async def stream_upkeep(self) -> None:
        """For every open stream at once: end those whose session ended (logout, expiry), follow membership
        changes, and tell presence that their agents are online (one heartbeat per agent and workspace)."""
        for subscription in [s for s in self.streams if not self.hub.is_open(s)]:
            del self.streams[subscription]
        if not self.streams:
            return
        entries = list(self.streams.items())
        active, roles = await asyncio.gather(
            self.accounts.active_sessions(list({p.session_id for _, p in entries})),
            self.accounts.roles_of_many(list({p.agent_id for _, p in entries})))
        beats: set[tuple[str, str, str]] = set()
        for subscription, principal in entries:
            if principal.session_id not in active:
                subscription.close("session_ended")
                continue
            workspaces = frozenset(roles.get(principal.agent_id, {}))
            if workspaces != subscription.workspaces:
                self.hub.change_workspaces(subscription, workspaces)
            beats.update((ws, principal.agent_id, principal.name) for ws in workspaces)
        await self._heartbeats(beats)

    async def _heartbeats(self, beats: set[tuple[str, str, str]]) -> None:
        limit = asyncio.Semaphore(32)

        async def beat(workspace_id: str, agent_id: str, name: str) -> None:
            async with limit:
                try:
                    await self.upstream.heartbeat(workspace_id, common_pb2.Actor(id=agent_id, name=name))
                except Exception as exc:  # presence away: the agent shows offline meanwhile
                    log.debug("presence heartbeat failed: %r", exc)

        await asyncio.gather(*(beat(*b) for b in beats))

    async def _stream_upkeep_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.stream_heartbeat_s)
            try:
                await self.stream_upkeep()
            except Exception as exc:  # the database away: next round
                log.warning("stream upkeep failed: %r", exc)

    async def _membership_watch_loop(self) -> None:
        seen: tuple[int, int] | None = None
        while True:
            try:
                version = await self.accounts.change_versions()
                if seen is not None and version != seen:
                    self.auth.forget_principals()  # a change made on another replica
                    if version[0] != seen[0] and self.streams:
                        await self.stream_upkeep()
                seen = version
            except Exception as exc:  # the database away: next round
                log.warning("membership watch failed: %r", exc)
            await asyncio.sleep(MEMBERSHIP_POLL_S)

    async def _purge_loop(self) -> None:
        while True:
            try:
                await self.accounts.purge_expired()
            except Exception as exc:  # the database away: next round
                log.warning("purge of expired sessions failed: %r", exc)
            await asyncio.sleep(PURGE_EVERY_S)
