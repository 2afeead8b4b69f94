"""The ``routing`` collection: one document per workspace that set its routing (``_id`` the workspace id):
``auto_assign`` (routing.AUTO_ASSIGN_MODES) and ``last_assigned``, per agent id the time auto-assignment
last gave that agent a conversation (the round robin's tie-break)."""

from __future__ import annotations

import asyncio
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_conversations import routing
from inbox_core.mongo import Document


class Routing:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["routing"]
        self._reading: dict[str, asyncio.Future[Document]] = {}

    async def ensure_indexes(self) -> None:
        """Read and written by ``_id`` only."""

    async def get(self, workspace_id: str) -> Document:
        """The workspace's routing; a workspace never set is off (a document not to be changed).

        Calls for one workspace while its read is under way share that read: the worker handles a batch's
        conversations at once, and a burst of one workspace's messages then costs one read, not one each.
        Nothing is kept after the read ends, so a change is seen by every call that starts after it."""
        reading = self._reading.get(workspace_id)
        if reading is None:
            reading = asyncio.ensure_future(self._read(workspace_id))
            self._reading[workspace_id] = reading
            reading.add_done_callback(lambda _: self._reading.pop(workspace_id, None))
        return await asyncio.shield(reading)  # one caller cancelled does not cancel the others' read

    async def _read(self, workspace_id: str) -> Document:
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
