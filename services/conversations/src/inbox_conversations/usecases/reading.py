"""Reading the inbox: the list (filters, search, keyset paging), one conversation, its timeline, and
the unread badges of the number selector."""

from __future__ import annotations

from dataclasses import dataclass

from inbox_conversations import domain, search_index, views
from inbox_conversations.outbox import utcnow
from inbox_conversations.repositories import ListQuery, Repositories
from inbox_conversations.views import TimelineView
from inbox_core.errors import InvalidRequest
from inbox_core.events.conversations import ConversationSummary
from inbox_core.mongo import Document


@dataclass(frozen=True)
class Page:
    items: list[ConversationSummary]
    next_cursor: str


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineView]
    next_before: str


class Reading:
    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    async def conversations(self, workspace_id: str, number_ids: list[str], filter_name: str, agent_id: str,
                            query: str, cursor: str, limit: int, status: str = domain.OPEN) -> Page:
        if filter_name == "mine" and not agent_id:
            raise InvalidRequest("the mine filter needs agent_id", {"field": "agent_id"})
        wanted = ListQuery(workspace_id=workspace_id, number_ids=list(dict.fromkeys(number_ids)), filter=filter_name,
                           agent_id=agent_id, status=status, search=domain.parse_query(query), cursor=cursor,
                           limit=domain.page_size(limit))
        numbers = list(wanted.number_ids) or await self.repos.numbers.of_workspace(workspace_id)
        if not numbers:
            return Page([], "")
        docs, next_cursor = await self.page(wanted, numbers)
        now = utcnow()
        return Page([views.summary(d, now) for d in docs], next_cursor)

    async def page(self, wanted: ListQuery, numbers: list[str]) -> tuple[list[Document], str]:
        """The list's page: a search first narrows to its narrowest term's conversations in the search
        index, or (a term too broad to list) reads the list in order, bounded (search_index.py)."""
        if wanted.search is None:
            return await self.repos.conversations.page(wanted, numbers)
        candidates = (await self.repos.search.candidates(wanted.workspace_id, wanted.search)).ids
        if candidates is None:
            return await self.repos.conversations.page(wanted, numbers, scan_max=search_index.SCAN_MAX)
        if not candidates:
            return [], ""
        return await self.repos.conversations.page(wanted, numbers, candidates=candidates)

    async def conversation(self, workspace_id: str, conversation_id: str) -> ConversationSummary:
        return views.summary(await self.repos.conversations.get(workspace_id, conversation_id), utcnow())

    async def timeline(self, workspace_id: str, conversation_id: str, before: str, limit: int) -> TimelinePage:
        conv = await self.repos.conversations.get(workspace_id, conversation_id)
        docs, next_before = await self.repos.timeline.page(conv["_id"], before, domain.page_size(limit, 50, 200))
        return TimelinePage([views.timeline_item(d) for d in docs], next_before)

    async def unread_counts(self, workspace_id: str, number_ids: list[str]) -> list[tuple[str, int]]:
        numbers = list(dict.fromkeys(number_ids)) or await self.repos.numbers.of_workspace(workspace_id)
        counts = await self.repos.conversations.count_unread(workspace_id, numbers)
        return list(zip(numbers, counts, strict=True))
