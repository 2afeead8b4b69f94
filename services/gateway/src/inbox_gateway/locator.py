"""Which workspace a request is about, and only ever one of the agent's own.

Resource ids (conversation, customer, order, media, library item) are opaque and carry no workspace. Every
call to a service passes a workspace of the agent, and the service answers NOT_FOUND for an id of any
other workspace, so isolation never depends on the gateway guessing right. To find the workspace:

- an agent of one workspace (the common case): that one, with no extra call;
- an agent of several: the id is looked up in each of its workspaces at once and the one that has it
  wins; the answer is remembered (ids never move between workspaces), and a remembered answer is used
  only while the agent still belongs to that workspace.

Connected numbers are routed by ingest's channel list (number -> workspace), read per workspace and
kept for ``GATEWAY_CHANNELS_CACHE_S``.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TypeVar

from inbox.ingest.v1 import ingest_pb2
from inbox_core.errors import NotFound
from inbox_gateway.accounts import Principal
from inbox_gateway.upstream import Upstream

T = TypeVar("T")


class Locator:
    def __init__(self, upstream: Upstream, channels_cache_s: float = 30.0, remember: int = 100_000) -> None:
        self.upstream = upstream
        self.channels_cache_s = channels_cache_s
        self._remember = remember
        self._homes: OrderedDict[str, str] = OrderedDict()
        self._channels: dict[str, tuple[float, list[ingest_pb2.Channel]]] = {}

    def _known(self, key: str, principal: Principal) -> str | None:
        home = self._homes.get(key)
        if home is not None:
            self._homes.move_to_end(key)
            if home in principal.roles:
                return home
        return None

    def _learn(self, key: str, workspace_id: str) -> None:
        self._homes[key] = workspace_id
        self._homes.move_to_end(key)
        while len(self._homes) > self._remember:
            self._homes.popitem(last=False)

    def home(self, key: str, principal: Principal) -> str | None:
        """The workspace of ``key`` without a call: the agent's only one, or a remembered one of its own."""
        known = self._known(key, principal)
        if known is not None:
            return known
        workspaces = principal.workspaces
        return workspaces[0] if len(workspaces) == 1 else None

    async def find(self, key: str, principal: Principal, fetch: Callable[[str], Awaitable[T]],
                   candidates: list[str] | None = None) -> tuple[str, T]:
        """``fetch(workspace)`` in the workspace that has ``key``: (that workspace, what it returned).

        ``candidates`` narrows the agent's workspaces (e.g. to those it administers). NotFound when none
        of them has it; another failure (a service down) is raised.
        """
        allowed = [ws for ws in (principal.workspaces if candidates is None else candidates) if ws in principal.roles]
        known = self._known(key, principal)
        candidates = [known] if known is not None and known in allowed else allowed
        if not candidates:
            raise NotFound("not found", {"id": key.partition(":")[2]})
        results = await asyncio.gather(*(fetch(ws) for ws in candidates), return_exceptions=True)
        failure: BaseException | None = None
        for workspace_id, result in zip(candidates, results, strict=True):
            if isinstance(result, NotFound):
                continue
            if isinstance(result, BaseException):
                failure = failure or result
                continue
            self._learn(key, workspace_id)
            return workspace_id, result
        if failure is not None:
            raise failure
        raise NotFound("not found", {"id": key.partition(":")[2]})

    # --- numbers ------------------------------------------------------------------------------------------

    async def channels(self, workspace_id: str, fresh: bool = False) -> list[ingest_pb2.Channel]:
        cached = self._channels.get(workspace_id)
        now = time.monotonic()
        if cached is not None and not fresh and now - cached[0] < self.channels_cache_s:
            return cached[1]
        channels = await self.upstream.list_channels(workspace_id)
        # ingest lists by workspace already; the filter guards against a caller passing "" (every workspace).
        channels = [c for c in channels if c.workspace_id == workspace_id]
        self._channels[workspace_id] = (now, channels)
        return channels

    def forget_channels(self, workspace_id: str) -> None:
        self._channels.pop(workspace_id, None)

    async def number_workspace(self, principal: Principal, number_id: str) -> str:
        """The agent's workspace that has this number connected; NotFound otherwise."""
        for fresh in (False, True):
            lists = await asyncio.gather(*(self.channels(ws, fresh) for ws in principal.workspaces))
            for workspace_id, channels in zip(principal.workspaces, lists, strict=True):
                if any(c.phone_number_id == number_id for c in channels):
                    return workspace_id
        raise NotFound("no such number", {"number": number_id})
