"""Calls that arrive at once, served by one round trip: what waits while a round trip runs goes in the
next one, each caller answered for its own item.

The workers handle a batch's keys at once, and a webhook burst comes as hundreds of requests at once;
one database round trip each was most of their CPU (and, for ingest's dedupe, hundreds of callers
waiting for the pool's connections). The first call goes at once (nothing waits for company); those
that come while it runs share the next. A caller waits no longer than ``timeout_s`` in all (the
client's own timeout: one that waited for the round trip under way, then its own, is told as soon as
it would be alone). Used by ``inbox_core.inserts`` and ingest's dedupe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# One round trip for ``items``: each item's result, or the exception for that item alone (in order); an
# exception raised is every item's.
RoundTrip = Callable[[list[Item]], Awaitable[list[Result | BaseException]]]


class Batcher(Generic[Item, Result]):
    def __init__(self, round_trip: RoundTrip[Item, Result], *, max_size: int, timeout_s: float | None,
                 size: Callable[[Item], int] = lambda _: 1) -> None:
        """``max_size``: how much one round trip takes at most, each item counting ``size(item)``."""
        self.round_trip = round_trip
        self.max_size = max_size
        self.timeout_s = timeout_s
        self.size = size
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._runner: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        answer: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, answer))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await asyncio.wait_for(answer, self.timeout_s)

    def _next_batch(self) -> list[tuple[Item, asyncio.Future[Result]]]:
        batch: list[tuple[Item, asyncio.Future[Result]]] = []
        size = 0
        while self._waiting and (not batch or size + self.size(self._waiting[0][0]) <= self.max_size):
            item = self._waiting.pop(0)
            size += self.size(item[0])
            batch.append(item)
        return batch

    async def _run(self) -> None:
        while self._waiting:
            batch = self._next_batch()
            try:
                results = await self.round_trip([item for item, _ in batch])
            except asyncio.CancelledError:  # shutting down: so are the callers
                for _, answer in [*batch, *self._waiting]:
                    answer.cancel()
                raise
            except Exception as exc:  # the whole round trip failed: every caller learns it
                results = [exc] * len(batch)
            for (_, answer), result in zip(batch, results, strict=True):
                if answer.done():  # its caller has gone (timed out, cancelled)
                    continue
                if isinstance(result, BaseException):
                    answer.set_exception(result)
                else:
                    answer.set_result(result)
