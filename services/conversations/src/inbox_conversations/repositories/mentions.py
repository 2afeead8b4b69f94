"""The ``mention_marks`` collection: which agents a conversation's notes mention that they have not seen.

One document per (conversation, agent): ``{_id: "<conversation>|<agent>", workspace_id, agent_id,
conversation_id, notes: [note ids], at}``. A note's mentions are added by the outbox entry the note carries
(``$addToSet`` of the note's id, so carrying an entry out twice counts the note once); the agent reading the
conversation deletes its document. ``filter=mentions`` is one indexed range (the agent's documents), and a
page's ``unseen_mentions`` one read by ``_id``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.mongo import Document, Index, ensure_indexes

MENTION_INDEXES = [Index([("workspace_id", ASCENDING), ("agent_id", ASCENDING), ("at", DESCENDING)], "by_agent")]
MAX_LISTED = 1000  # the conversations filter=mentions pages through: far more than anyone leaves unread


def mark_id(conversation_id: str, agent_id: str) -> str:
    return f"{conversation_id}|{agent_id}"


class MentionMarks:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["mention_marks"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, MENTION_INDEXES)

    async def add(self, workspace_id: str, conversation_id: str, note_id: str, agent_ids: Iterable[str],
                  at: datetime) -> None:
        writes = [UpdateOne({"_id": mark_id(conversation_id, agent_id)}, {
            "$setOnInsert": {"workspace_id": workspace_id, "agent_id": agent_id, "conversation_id": conversation_id},
            "$addToSet": {"notes": note_id}, "$max": {"at": at}}, upsert=True) for agent_id in agent_ids]
        if writes:
            await self.collection.bulk_write(writes, ordered=False)

    async def clear(self, conversation_id: str, agent_id: str) -> bool:
        """The agent has seen the conversation's mentions of it: whether there were any."""
        return bool((await self.collection.delete_one({"_id": mark_id(conversation_id, agent_id)})).deleted_count)

    async def unseen(self, agent_id: str, conversation_ids: Sequence[str]) -> dict[str, int]:
        """Per conversation, how many notes mention the agent unseen (those with none left out)."""
        if not agent_id or not conversation_ids:
            return {}
        docs = await self.collection.find(
            {"_id": {"$in": [mark_id(c, agent_id) for c in conversation_ids]}},
            {"conversation_id": 1, "notes": 1}).to_list(None)
        return {d["conversation_id"]: len(d.get("notes") or []) for d in docs if d.get("notes")}

    async def conversations_of(self, workspace_id: str, agent_id: str) -> list[str]:
        """The conversations with notes mentioning the agent unseen, the newest mention first."""
        docs = await self.collection.find({"workspace_id": workspace_id, "agent_id": agent_id},
                                          {"conversation_id": 1}).sort(
            [("workspace_id", ASCENDING), ("agent_id", ASCENDING), ("at", DESCENDING)]).limit(MAX_LISTED).to_list(None)
        return [d["conversation_id"] for d in docs]
