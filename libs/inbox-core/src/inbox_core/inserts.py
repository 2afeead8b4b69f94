"""Inserts of documents that arrive at once, made together (inbox_core.batching): one unordered
``insert_many`` for every insert waiting while the previous one runs, each caller answered for its own
document.

A consumer handles a batch's keys at once, and each key's use case inserts its timeline item on its own:
one round trip each was most of the worker's database CPU. A duplicate key is that document's answer
(False), another write error that document's caller's exception alone (so one bad document does not
fail the others); an error of the whole command (the database away, a timeout) every caller's.
"""

from __future__ import annotations

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, WriteError

from inbox_core.batching import Batcher
from inbox_core.mongo import Document

DUPLICATE_KEY = 11000
# Documents one insert_many takes at most (the rest wait for the next one).
MAX_DOCUMENTS = 100


class Inserts:
    def __init__(self, collection: AsyncCollection[Document], max_documents: int = MAX_DOCUMENTS) -> None:
        self.collection = collection
        self._batcher: Batcher[Document, bool] = Batcher(
            self._insert_many, max_size=max_documents, timeout_s=collection.database.client.options.timeout)

    async def insert(self, doc: Document) -> bool:
        """Inserts ``doc``; False when a document with the same unique key (``_id`` or another) is there."""
        return await self._batcher.submit(doc)

    async def _insert_many(self, docs: list[Document]) -> list[bool | BaseException]:
        results: list[bool | BaseException] = [True] * len(docs)
        try:
            # A document without an _id gets one, as insert_one gives it.
            await self.collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            for error in exc.details.get("writeErrors", []):
                index, code = int(error["index"]), error.get("code")
                results[index] = False if code == DUPLICATE_KEY else WriteError(error.get("errmsg", ""), code, error)
        return results
