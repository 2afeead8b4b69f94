"""The ``routing`` collection: one document per workspace that set its routing (``_id`` the workspace id):
``auto_assign`` (routing.AUTO_ASSIGN_MODES) and ``last_assigned``, per agent id the time auto-assignment
last gave that agent a conversation (the round robin's tie-break). The mode changes rarely and every
customer message asks it, so a process keeps it a few seconds (``mode``)."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_conversations import routing
from inbox_core.mongo import Document

# How long a worker trusts a workspace's auto-assignment mode it read: a change made through another
# process (an API replica's SetRouting) is seen within it, one made through this process at once.
MODE_TTL_S = 5.0
# Workspaces whose mode a process keeps (the least recently read forgotten first).
KNOWN_MODES = 10_000


class Routing:
    def __init__(self, db: AsyncDatabase[Document], mode_ttl_s: float = MODE_TTL_S, known: int = KNOWN_MODES) -> None:
        self.collection: AsyncCollection[Document] = db["routing"]
        self._reading: dict[str, asyncio.Future[Document]] = {}
        self._modes: OrderedDict[str, tuple[str, float]] = OrderedDict()  # workspace -> (mode, read at)
        self._mode_ttl_s = mode_ttl_s
        self._known = known

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

    async def mode(self, workspace_id: str) -> str:
        """The workspace's auto-assignment mode, as read at most ``mode_ttl_s`` ago: what a customer
        message asks first, so a workspace that does not route costs no read per message. Whoever acts
        on "round robin" reads the routing again (``get``), so switching it off holds at once."""
        kept = self._modes.get(workspace_id)
        if kept is not None and time.monotonic() - kept[1] < self._mode_ttl_s:
            self._modes.move_to_end(workspace_id)
            return kept[0]
        read_at = time.monotonic()
        mode = str((await self.get(workspace_id)).get("auto_assign") or routing.OFF)
        self._keep_mode(workspace_id, mode, read_at)
        return mode

    def _keep_mode(self, workspace_id: str, mode: str, read_at: float) -> None:
        self._modes[workspace_id] = (mode, read_at)
        self._modes.move_to_end(workspace_id)
        if len(self._modes) > self._known:
            self._modes.popitem(last=False)

    async def _read(self, workspace_id: str) -> Document:
        doc = await self.collection.find_one({"_id": workspace_id})
        return doc or {"_id": workspace_id, "auto_assign": routing.OFF, "last_assigned": {}}

    async def set_mode(self, workspace_id: str, mode: str, by: Document | None, now: datetime) -> Document:
        doc = await self.collection.find_one_and_update(
            {"_id": workspace_id},
            {"$set": {"auto_assign": mode, "updated_at": now, "updated_by": by}},
            upsert=True, return_document=ReturnDocument.AFTER)
        self._keep_mode(workspace_id, mode, time.monotonic())  # this process sees its own change at once
        return doc or {"_id": workspace_id, "auto_assign": mode, "last_assigned": {}}

    async def note_assigned(self, workspace_id: str, agent_id: str, at: datetime) -> None:
        """``$max``: a replica that assigned earlier but writes later does not move the time back."""
        await self.collection.update_one({"_id": workspace_id}, {"$max": {f"last_assigned.{agent_id}": at}})
