"""Inserts of documents that arrive at once, made together: one ``insert_many`` (unordered) for every
insert waiting while the previous one runs, each caller answered for its own document.

A consumer handles a batch's keys at once, and each key's use case inserts its timeline item on its own:
one round trip each was most of the worker's database CPU. The first insert goes at once (nothing waits
for company); those that come while it runs share the next. A duplicate key is that document's answer
(False), another write error that document's caller's exception alone (so one bad document does not
fail the others); an error of the whole command (the database away, a timeout) every caller's.
"""

from __future__ import annotations

import asyncio

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from inbox_core.mongo import Document

DUPLICATE_KEY = 11000
# Documents one insert_many takes at most (the rest wait for the next one).
MAX_DOCUMENTS = 100


class Inserts:
    def __init__(self, collection: AsyncCollection[Document], max_documents: int = MAX_DOCUMENTS) -> None:
        self.collection = collection
        self.max_documents = max_documents
        self._waiting: list[tuple[Document, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def insert(self, doc: Document) -> bool:
        """Inserts ``doc``; False when a document with the same unique key (``_id`` or another) is there."""
        answer: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((doc, answer))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        # No longer than an insert of its own may take (the client's timeoutMS), though it waited for the
        # one under way first (a silent database is then told as fast as without company).
        return await asyncio.wait_for(answer, self.collection.database.client.options.timeout)

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self.max_documents], self._waiting[self.max_documents:]
            docs = [d for d, _ in batch]  # a document without an _id gets one, as insert_one gives it
            failed: dict[int, BaseException] = {}
            try:
                await self.collection.insert_many(docs, ordered=False)
            except BulkWriteError as exc:
                for error in exc.details.get("writeErrors", []):
                    index = int(error["index"])
                    failed[index] = (DuplicateKeyError if error.get("code") == DUPLICATE_KEY else WriteError)(
                        error.get("errmsg", ""), error.get("code"), error)
            except BaseException as exc:  # the whole command failed: every caller learns it
                for _, answer in batch:
                    if not answer.done():
                        answer.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for index, (_, answer) in enumerate(batch):
                if answer.done():  # its caller has gone
                    continue
                error = failed.get(index)
                if error is None:
                    answer.set_result(True)
                elif isinstance(error, DuplicateKeyError):
                    answer.set_result(False)
                else:
                    answer.set_exception(error)
