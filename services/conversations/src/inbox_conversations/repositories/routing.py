"""The ``routing`` collection: one document per workspace that set its routing (``_id`` the workspace id):
``auto_assign`` (routing.AUTO_ASSIGN_MODES) and ``last_assigned``, per agent id the time auto-assignment
last gave that agent a conversation (the round robin's tie-break)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_conversations import routing
from inbox_core.mongo import Document


class Routing:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["routing"]

    async def ensure_indexes(self) -> None:
        """Read and written by ``_id`` only."""

    async def get(self, workspace_id: str) -> Document:
        """The workspace's routing; a workspace never set is off."""
        doc = await self.collection.find_one({"_id": workspace_id})
        return doc or {"_id": workspace_id, "auto_assign": routing.OFF, "last_assigned": {}}

    async def set_mode(self, workspace_id: str, mode: str, by: Document | None, now: datetime) -> Document:
        doc = await self.collection.find_one_and_update(
            {"_id": workspace_id},
            {"$set": {"auto_assign": mode, "updated_at": now, "updated_by": by}},
            upsert=True, return_document=ReturnDocument.AFTER)
        return doc or {"_id": workspace_id, "auto_assign": mode, "last_assigned": {}}

    async def note_assigned(self, workspace_id: str, agent_id: str, at: datetime) -> None:
        """``$max``: a replica that assigned earlier but writes later does not move the time back."""
        await self.collection.update_one({"_id": workspace_id}, {"$max": {f"last_assigned.{agent_id}": at}})
