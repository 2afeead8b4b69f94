"""The conversation list of an agent of several workspaces: one newest-first list over all of them, paged
with one cursor, against fake pages (the rules) and against the real conversations service."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from gateway_testkit import FAST_PASSWORDS, Server, Services, gateway_settings, login, make_team

from inbox.conversations.v1 import conversations_pb2
from inbox_core.errors import InvalidRequest
from inbox_core.settings import InboxSettings
from inbox_gateway import listing
from inbox_gateway.gateway import Gateway


class FakeService:
    """Each workspace's rows, served newest first in pages, with an opaque cursor (the row index)."""

    def __init__(self, rows: dict[str, list[conversations_pb2.Conversation]]) -> None:
        self.rows = {ws: sorted(r, key=listing._sort_key, reverse=True) for ws, r in rows.items()}
        self.asked: list[int] = []

    async def fetch(self, workspace_id: str, cursor: str,
                    limit: int) -> tuple[list[conversations_pb2.Conversation], str]:
        assert limit <= listing.SERVICE_MAX_PAGE
        self.asked.append(limit)
        start = int(cursor or 0)
        rows = self.rows[workspace_id][start:start + limit]
        more = start + limit < len(self.rows[workspace_id])
        return rows, str(start + limit) if more else ""


def rows(workspace: str, count: int, rng: random.Random) -> list[conversations_pb2.Conversation]:
    out = []
    for i in range(count):
        c = conversations_pb2.Conversation(id=f"{workspace}-{i}", workspace_id=workspace)
        c.updated_at.FromDatetime(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randrange(10_000)))
        out.append(c)
    return out


@pytest.mark.parametrize("seed", range(20))
async def test_pages_cover_every_row_once_newest_first(seed: int) -> None:
    rng = random.Random(seed)
    workspaces = [f"ws{i}" for i in range(rng.randint(1, 4))]
    service = FakeService({ws: rows(ws, rng.randint(0, 150), rng) for ws in workspaces})
    limit = rng.choice([1, 7, 30, 100])
    seen: list[conversations_pb2.Conversation] = []
    cursor: str | None = None
    for _ in range(1000):
        page, cursor = await listing.page(service.fetch, workspaces, cursor, limit)
        assert len(page) <= limit
        seen += page
        if cursor is None:
            break
    expected = sorted((r for ws in workspaces for r in service.rows[ws]), key=listing._sort_key, reverse=True)
    assert [c.id for c in seen] == [c.id for c in expected]


def test_a_cursor_is_checked_and_only_counts_the_agents_workspaces() -> None:
    with pytest.raises(InvalidRequest):
        listing.decode("not-a-cursor", ["ws1"])
    with pytest.raises(InvalidRequest):
        listing.decode(listing.encode({"ws1": ("c", 0)})[:-3] + "!!!", ["ws1"])
    assert listing.decode(listing.encode({"ws1": ("c", 2), "ws2": ("d", 0)}), ["ws1"]) == {"ws1": ("c", 2)}


async def test_an_agent_of_two_workspaces(inbox_settings: InboxSettings, mongo_client: Any,
                                          services: Services) -> None:
    gw = Gateway(gateway_settings(inbox_settings, **services.targets()), client=mongo_client,
                 passwords=FAST_PASSWORDS, stream=False)
    a, b = await make_team(gw, "Alpha"), await make_team(gw, "Beta")
    await gw.accounts.set_membership(b.workspace_id, a.agent.id, "agent")  # Alpha's agent also works for Beta
    start = datetime.now(UTC) - timedelta(hours=2)
    made: list[str] = []
    for i in range(7):
        team = a if i % 3 else b
        made.append(await services.inbound(team, f"3460000{i:04d}", at=start + timedelta(minutes=i)))
    async with Server(gw) as server, server.client(await login(server, a.agent)) as client:
        me = (await client.get("/api/me")).json()
        assert {w["id"] for w in me["workspaces"]} == {a.workspace_id, b.workspace_id}
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/conversations", params=params)).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(made))
        # Ids of either workspace resolve; the agents list needs to know which workspace.
        for conversation_id in made:
            assert (await client.get(f"/api/conversations/{conversation_id}/timeline")).status_code == 200
        assert (await client.get("/api/agents")).status_code == 400
        assert (await client.get("/api/agents", params={"workspace": b.workspace_id})).status_code == 200
