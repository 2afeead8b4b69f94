"""The conversation list across several workspaces: one page, newest activity first, from the pages of
each workspace, with one cursor for the whole.

The gateway's cursor holds, per workspace still to read, the service's own (opaque) cursor and how many
rows of the page it starts were already shown: ``{workspace: [service_cursor, offset]}``. A workspace that
is exhausted is left out. For an agent of one workspace this is simply the service's cursor, offset 0.
"""

from __future__ import annotations

import asyncio
import base64
import heapq
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from inbox.conversations.v1 import conversations_pb2
from inbox_core.errors import InvalidRequest

# The conversations service's largest page (its domain.MAX_PAGE); a workspace is never asked for more.
SERVICE_MAX_PAGE = 100

# (workspace, service cursor, limit) -> (items, next service cursor)
FetchPage = Callable[[str, str, int], Awaitable[tuple[list[conversations_pb2.Conversation], str]]]
State = dict[str, tuple[str, int]]


def encode(state: State) -> str:
    raw = json.dumps({ws: [c, o] for ws, (c, o) in sorted(state.items())}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(cursor: str, workspaces: list[str]) -> State:
    """The state of a cursor; only the given workspaces count (an agent removed from one loses it)."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        state: State = {}
        for ws, value in raw.items():
            service_cursor, offset = value
            if not isinstance(service_cursor, str) or not isinstance(offset, int) or offset < 0:
                raise ValueError("bad entry")
            if ws in workspaces:
                state[ws] = (service_cursor, offset)
        return state
    except (ValueError, TypeError) as exc:
        raise InvalidRequest("the cursor is not valid", {"cursor": cursor}) from exc


def _sort_key(c: conversations_pb2.Conversation) -> tuple[int, int, str]:
    return (c.updated_at.seconds, c.updated_at.nanos, c.id)


@dataclass
class _Source:
    workspace_id: str
    cursor: str  # the service cursor the rows start at
    offset: int  # rows of that page already shown
    rows: list[conversations_pb2.Conversation]  # the rows not shown yet, newest first
    next_cursor: str  # the service's cursor after the fetched page ("" = none)
    taken: int = 0


async def _read(fetch: FetchPage, workspace_id: str, cursor: str, offset: int, limit: int) -> _Source:
    if offset + limit > SERVICE_MAX_PAGE and offset > 0:
        # Step over the rows already shown, so the next request stays within the service's page size.
        _, cursor = await fetch(workspace_id, cursor, offset)
        offset = 0
        if not cursor:
            return _Source(workspace_id, "", 0, [], "")
    rows, next_cursor = await fetch(workspace_id, cursor, offset + limit)
    return _Source(workspace_id, cursor, offset, rows[offset:], next_cursor)


async def page(fetch: FetchPage, workspaces: list[str], cursor: str | None,
               limit: int) -> tuple[list[conversations_pb2.Conversation], str | None]:
    """One page over ``workspaces`` and the cursor of the next (None at the end)."""
    state = decode(cursor, workspaces) if cursor else {ws: ("", 0) for ws in workspaces}
    sources = await asyncio.gather(*(_read(fetch, ws, c, o, limit) for ws, (c, o) in sorted(state.items())))
    # Newest first across workspaces: the same order as each service's (updated_at desc, id desc).
    merged = heapq.merge(*([(s, row) for row in s.rows] for s in sources),
                         key=lambda pair: _sort_key(pair[1]), reverse=True)
    items: list[conversations_pb2.Conversation] = []
    for source, row in merged:
        if len(items) == limit:
            break
        items.append(row)
        source.taken += 1
    next_state: State = {}
    for s in sources:
        if s.taken < len(s.rows):
            next_state[s.workspace_id] = (s.cursor, s.offset + s.taken)
        elif s.next_cursor:
            next_state[s.workspace_id] = (s.next_cursor, 0)
    return items, (encode(next_state) if next_state else None)
