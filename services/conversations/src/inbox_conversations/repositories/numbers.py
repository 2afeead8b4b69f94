"""The ``numbers`` collection: the workspace's connected numbers (and their WhatsApp business account)
as seen in events; the list queries by number, so a number is recorded before its first conversation."""

from __future__ import annotations

from collections import OrderedDict

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from inbox_core.mongo import Document, Index, ensure_indexes

NUMBER_INDEXES = [Index([("workspace_id", ASCENDING), ("number_id", ASCENDING)], "by_workspace")]
# Numbers a worker remembers having written (least recently seen forgotten first).
KNOWN_NUMBERS = 10_000


class Numbers:
    def __init__(self, db: AsyncDatabase[Document], known: int = KNOWN_NUMBERS) -> None:
        self.collection: AsyncCollection[Document] = db["numbers"]
        # What was written, keyed by everything written: a changed business account or display number is
        # another key, so the change is written (that is how the cache learns of it).
        self._written: OrderedDict[tuple[str, str, str, str], None] = OrderedDict()
        self._known = known

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, NUMBER_INDEXES)

    async def ensure(self, workspace_id: str, number_id: str, waba_id: str = "",
                     display_phone_number: str | None = None) -> None:
        """Records a connected number (no database round trip when this process wrote the same already)."""
        key = (workspace_id, number_id, waba_id, display_phone_number or "")
        if key in self._written:
            self._written.move_to_end(key)
            return
        update: Document = {"$setOnInsert": {"workspace_id": workspace_id, "number_id": number_id}}
        fields = {k: v for k, v in (("waba_id", waba_id), ("display_phone_number", display_phone_number)) if v}
        if fields:
            update["$set"] = fields
        await self.collection.update_one({"_id": f"{workspace_id}:{number_id}"}, update, upsert=True)
        self._written[key] = None
        if len(self._written) > self._known:
            self._written.popitem(last=False)

    async def of_workspace(self, workspace_id: str) -> list[str]:
        docs = await self.collection.find({"workspace_id": workspace_id}, {"number_id": 1}).to_list(None)
        return sorted(d["number_id"] for d in docs)

    async def waba(self, workspace_id: str, number_id: str) -> str | None:
        doc = await self.collection.find_one({"_id": f"{workspace_id}:{number_id}"})
        return (doc or {}).get("waba_id") or None
