"""The ``templates`` collection: each business account's message templates as Meta listed them (synced by
ingest), and one marker per account of the last sync applied."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from inbox_core.mongo import Document, Index, ensure_indexes

TEMPLATE_INDEXES = [
    Index([("workspace_id", ASCENDING), ("waba_id", ASCENDING), ("name", ASCENDING), ("language", ASCENDING)],
          "by_waba"),
]


class Templates:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.collection: AsyncCollection[Document] = db["templates"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.collection, TEMPLATE_INDEXES)

    async def apply_sync(self, workspace_id: str, waba_id: str, templates: list[Document],
                              synced_at: datetime, *, last: bool = True) -> bool:
        """One part of a sync of a business account's templates (``last``: the sync's final part, or a whole
        list); a part of an older sync than the last one completed is ignored.

        Each template is upserted with the sync's time, unless a newer sync already wrote it (two syncs of
        one account may interleave). After the last part, the account's templates no part of this sync
        listed are deleted, then the marker is written: a sync cut short by a crash is applied again on
        redelivery. Each template is stored as JSON text beside its searchable fields: Meta's components
        hold nested arrays (``example.body_text``), which FerretDB cannot store.
        """
        marker = f"sync:{workspace_id}:{waba_id}"
        current = await self.collection.find_one({"_id": marker}, {"synced_at": 1})
        if current is not None and current.get("synced_at") is not None and current["synced_at"] >= synced_at:
            return False
        not_newer: Document = {"$or": [{"synced_at": {"$lte": synced_at}}, {"synced_at": {"$exists": False}}]}
        writes = [ReplaceOne(
            {"_id": f"{workspace_id}:{waba_id}:{tpl['name']}:{tpl['language']}", **not_newer},
            {"name": tpl["name"], "language": tpl["language"], "status": tpl.get("status"),
             "category": tpl.get("category"), "template_json": json.dumps(tpl), "workspace_id": workspace_id,
             "waba_id": waba_id, "kind": "template", "updated_at": synced_at, "synced_at": synced_at},
            upsert=True) for tpl in templates]
        if writes:
            try:
                await self.collection.bulk_write(writes, ordered=False)
            except BulkWriteError as exc:
                # A duplicate key is the upsert of a template a newer sync wrote: that one stays.
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
        if not last:
            return True
        await self.collection.delete_many({"workspace_id": workspace_id, "waba_id": waba_id, "kind": "template",
                                          "$or": [{"synced_at": {"$lt": synced_at}},
                                                  {"synced_at": {"$exists": False}}]})
        await self.collection.update_one({"_id": marker}, {"$set": {"synced_at": synced_at, "kind": "sync"}},
                                        upsert=True)
        return True

    async def set_status(self, workspace_id: str, waba_id: str, name: str, language: str | None,
                                  status: str, at: datetime) -> None:
        query: Document = {"workspace_id": workspace_id, "waba_id": waba_id, "kind": "template", "name": name}
        if language:
            query["language"] = language
        await self.collection.update_many(query, {"$set": {"status": status, "updated_at": at}})

    async def of_accounts(self, workspace_id: str, waba_ids: Sequence[str] | None) -> list[Document]:
        query: Document = {"workspace_id": workspace_id, "kind": "template"}
        if waba_ids is not None:
            query["waba_id"] = {"$in": list(waba_ids)}
        docs = await self.collection.find(query).sort([("name", ASCENDING), ("language", ASCENDING)]).to_list(None)
        return [_template(d) for d in docs]

    async def find(self, workspace_id: str, waba_ids: Sequence[str] | None, name: str,
                            language: str) -> Document | None:
        query: Document = {"workspace_id": workspace_id, "kind": "template", "name": name, "language": language}
        if waba_ids is not None:
            query["waba_id"] = {"$in": list(waba_ids)}
        doc = await self.collection.find_one(query)
        return _template(doc) if doc is not None else None

    async def wabas_of(self, workspace_id: str) -> list[str]:
        docs = await self.collection.find({"workspace_id": workspace_id, "kind": "template"}, {"waba_id": 1}).to_list(
            None)
        return sorted({d["waba_id"] for d in docs})


def _template(doc: Document) -> Document:
    """A stored template as Meta listed it, with the status it has now (status webhooks change it)."""
    tpl: Document = json.loads(doc["template_json"]) if doc.get("template_json") else dict(doc)
    tpl.update({k: doc[k] for k in ("_id", "workspace_id", "waba_id", "kind", "status", "updated_at") if k in doc})
    return tpl
