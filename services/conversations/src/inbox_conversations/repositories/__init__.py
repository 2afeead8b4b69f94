"""One repository per collection of the service's database (see each module)."""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.asynchronous.database import AsyncDatabase

from inbox_conversations.repositories.conversations import Conversations, ListQuery
from inbox_conversations.repositories.customers import CustomerCopies
from inbox_conversations.repositories.library import Library
from inbox_conversations.repositories.mentions import MentionMarks
from inbox_conversations.repositories.numbers import Numbers
from inbox_conversations.repositories.pending import PendingFacts
from inbox_conversations.repositories.replies import CannedReplies
from inbox_conversations.repositories.routing import Routing
from inbox_conversations.repositories.templates import Templates
from inbox_conversations.repositories.timeline import Timeline, TimelineKey
from inbox_conversations.search_index import SearchIndex
from inbox_core.mongo import Document

__all__ = ["CannedReplies", "Conversations", "CustomerCopies", "Library", "ListQuery", "MentionMarks", "Numbers",
           "PendingFacts", "Repositories", "Routing", "SearchIndex", "Templates", "Timeline", "TimelineKey"]


@dataclass(frozen=True)
class Repositories:
    conversations: Conversations
    timeline: Timeline
    pending: PendingFacts
    numbers: Numbers
    customers: CustomerCopies
    templates: Templates
    library: Library
    search: SearchIndex
    replies: CannedReplies
    mentions: MentionMarks
    routing: Routing

    @classmethod
    def of(cls, db: AsyncDatabase[Document]) -> Repositories:
        return cls(Conversations(db), Timeline(db), PendingFacts(db), Numbers(db), CustomerCopies(db),
                   Templates(db), Library(db), SearchIndex(db), CannedReplies(db),
                   MentionMarks(db), Routing(db))

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
        for repository in (self.conversations, self.timeline, self.pending, self.numbers, self.templates,
                           self.library, self.search, self.replies,
                           self.mentions, self.routing):
            await repository.ensure_indexes()
        await self.search.backfill()  # a database from before the search index, once
        await self.conversations.backfill_status()  # a database from before statuses, once
