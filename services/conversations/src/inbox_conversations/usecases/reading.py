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
    unseen_mentions: dict[str, int]  # per conversation, of the agent asking (those with none left out)


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineView]
    next_before: str


class Reading:
    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    async def conversations(self, workspace_id: str, number_ids: list[str], filter_name: str, agent_id: str,
                            query: str, cursor: str, limit: int, status: str = domain.OPEN) -> Page:
        if filter_name in ("mine", "mentions") and not agent_id:
            raise InvalidRequest(f"the {filter_name} filter needs agent_id", {"field": "agent_id"})
        wanted = ListQuery(workspace_id=workspace_id, number_ids=list(dict.fromkeys(number_ids)), filter=filter_name,
                           agent_id=agent_id, status=status, search=domain.parse_query(query), cursor=cursor,
                           limit=domain.page_size(limit))
        numbers = list(wanted.number_ids) or await self.repos.numbers.of_workspace(workspace_id)
        if not numbers:
            return Page([], "", {})
        docs, next_cursor = await self.page(wanted, numbers)
        now = utcnow()
        unseen = await self.repos.mentions.unseen(agent_id, [d["_id"] for d in docs])
        return Page([views.summary(d, now) for d in docs], next_cursor, unseen)

    async def page(self, wanted: ListQuery, numbers: list[str]) -> tuple[list[Document], str]:
        """The list's page: a search first narrows to its narrowest term's conversations in the search
        index, or (a term too broad to list) reads the list in order, bounded (search_index.py)."""
        mentioned: list[str] | None = None
        if wanted.filter == "mentions":  # the agent's few marked conversations, by _id (mention_marks)
            mentioned = await self.repos.mentions.conversations_of(wanted.workspace_id, wanted.agent_id)
            if not mentioned:
                return [], ""
        if wanted.search is None:
            return await self.repos.conversations.page(wanted, numbers, candidates=mentioned)
        candidates = (await self.repos.search.candidates(wanted.workspace_id, wanted.search)).ids
        if candidates is None:
            if mentioned is not None:  # every row is checked against the search: the marked ones suffice
                return await self.repos.conversations.page(wanted, numbers, candidates=mentioned)
            return await self.repos.conversations.page(wanted, numbers, scan_max=search_index.SCAN_MAX)
        if mentioned is not None:
            candidates = [c for c in candidates if c in set(mentioned)]
        if not candidates:
            return [], ""
        return await self.repos.conversations.page(wanted, numbers, candidates=candidates)

    async def conversation(self, workspace_id: str, conversation_id: str,
                           agent_id: str = "") -> tuple[ConversationSummary, int]:
        """The conversation, and how many notes mention ``agent_id`` in it unseen."""
        doc = await self.repos.conversations.get(workspace_id, conversation_id)
        unseen = await self.repos.mentions.unseen(agent_id, [doc["_id"]])
        return views.summary(doc, utcnow()), unseen.get(doc["_id"], 0)

    async def timeline(self, workspace_id: str, conversation_id: str, before: str, limit: int) -> TimelinePage:
        conv = await self.repos.conversations.get(workspace_id, conversation_id)
        docs, next_before = await self.repos.timeline.page(conv["_id"], before, domain.page_size(limit, 50, 200))
        return TimelinePage([views.timeline_item(d) for d in docs], next_before)

    async def unread_counts(self, workspace_id: str, number_ids: list[str]) -> list[tuple[str, int]]:
        numbers = list(dict.fromkeys(number_ids)) or await self.repos.numbers.of_workspace(workspace_id)
        counts = await self.repos.conversations.count_unread(workspace_id, numbers)
        return list(zip(numbers, counts, strict=True))
