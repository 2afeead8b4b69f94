"""The orders service's repository: its own MongoDB database (orders, pipeline stages and their history).
The use cases are in app.py; this module only reads and writes.

Collections:
- ``orders``: the orders as queries read them (the projection), and ``orders_revisions``: every change
  of an order, committed with its events before anything else (see inbox_core.revisions). Every
  change therefore goes out on ``inbox.orders.v1`` (key: order id), even after a crash.
- ``order_counters``: the last order number handed out per workspace; ``order_numbers``: one document
  per number taken (a unique index), so a number is never given twice even where ``$inc`` is not atomic
  (FerretDB); ``order_keys``: one document per idempotency key, pointing at its order.
"""

from __future__ import annotations

from datetime import timedelta

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.errors import Unavailable
from inbox_core.mongo import Document, Index, ensure_indexes
from inbox_core.outbox import Publish
from inbox_core.revisions import Decide, RevisionedCollection, now_ms


class OrdersRepository:
    """``publish``: how the outbox publishes (``inbox_core.outbox.kafka_publish(broker)``): the
    repository holds entries, never the broker."""

    def __init__(self, db: AsyncDatabase[Document], publish: Publish, *, publish_timeout_s: float = 3.0,
                 relay_min_age_s: float = 10.0) -> None:
        self.db = db
        self.orders = RevisionedCollection(db, "orders", publish=publish, publish_timeout_s=publish_timeout_s,
                                           relay_min_age_s=relay_min_age_s)
        self.counters = db["order_counters"]
        self.numbers = db["order_numbers"]
        self.keys = db["order_keys"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
        await self.orders.ensure_indexes()
        await ensure_indexes(self.orders.docs, [
            # ListByCustomer (newest first) and the current order (not final, newest first).
            Index([("workspace_id", ASCENDING), ("customer_id", ASCENDING), ("number", DESCENDING)],
                  "customer_orders"),
            Index([("workspace_id", ASCENDING), ("customer_id", ASCENDING), ("final", ASCENDING),
                   ("number", DESCENDING)], "customer_open_orders"),
        ])
        await ensure_indexes(self.numbers, [
            Index([("workspace_id", ASCENDING), ("number", ASCENDING)], "workspace_number", unique=True),
        ])
        await ensure_indexes(self.keys, [
            Index([("workspace_id", ASCENDING), ("key", ASCENDING)], "workspace_key", unique=True),
        ])

    # --- reads --------------------------------------------------------------------------------------

    async def get(self, order_id: str) -> Document | None:
        return await self.orders.get(order_id)

    async def of_customer(self, workspace_id: str, customer_id: str, limit: int,
                          before_number: int | None = None) -> list[Document]:
        """The customer's orders, newest (highest number) first, below ``before_number`` if given."""
        query: Document = {"workspace_id": workspace_id, "customer_id": customer_id}
        if before_number is not None:
            query["number"] = {"$lt": before_number}
        return await self.orders.docs.find(query).sort([("number", DESCENDING)]).limit(limit).to_list()

    async def current_of_customer(self, workspace_id: str, customer_id: str) -> Document | None:
        """The latest order not in a final stage (delivered, cancelled, returned)."""
        return await self.orders.docs.find_one(
            {"workspace_id": workspace_id, "customer_id": customer_id, "final": False},
            sort=[("number", DESCENDING)],
        )

    # --- writes -------------------------------------------------------------------------------------

    async def commit(self, order_id: str, decide: Decide) -> Document | None:
        """Commits what ``decide`` makes of the order with its events (inbox_core.revisions)."""
        return await self.orders.apply(order_id, decide)

    async def claim_key(self, workspace_id: str, key: str, order_id: str) -> str:
        """The order id an idempotency key stands for: ``order_id`` if this call claimed the key first."""
        try:
            await self.keys.insert_one({"workspace_id": workspace_id, "key": key, "order_id": order_id,
                                        "created_at": now_ms()})
            return order_id
        except DuplicateKeyError:
            claimed = await self.keys.find_one({"workspace_id": workspace_id, "key": key})
            if claimed is None:  # pragma: no cover - keys are never deleted
                raise Unavailable("idempotency key vanished, try again") from None
            return str(claimed["order_id"])

    async def next_number(self, workspace_id: str, order_id: str) -> int:
        """The next order number of the workspace. ``$inc`` on the counter is the fast path (atomic on
        MongoDB); the unique (workspace, number) claim is what guarantees no number is handed out twice
        (FerretDB's ``$inc`` can lose a concurrent increment). The counter only ever passes out numbers
        one above one already handed out, so numbers keep increasing; a create that fails after taking
        its number leaves a gap."""
        for _ in range(200):
            try:
                counter = await self.counters.find_one_and_update(
                    {"_id": workspace_id}, {"$inc": {"seq": 1}}, upsert=True, return_document=ReturnDocument.AFTER
                )
            except DuplicateKeyError:
                continue  # two first orders of a workspace created the counter at once
            assert counter is not None
            number = int(counter["seq"])
            try:
                await self.numbers.insert_one({"workspace_id": workspace_id, "number": number,
                                               "order_id": order_id, "at": now_ms()})
            except DuplicateKeyError:
                # Taken (a lost increment): make sure the counter is at least there, then take the next.
                await self.counters.update_one({"_id": workspace_id}, {"$max": {"seq": number}})
                continue
            return number
        raise Unavailable("could not allocate an order number, try again", {"workspace_id": workspace_id})

    # --- the outbox relay and retention ---------------------------------------------------------------

    async def relay_once(self, min_age_s: float) -> int:
        return await self.orders.relay_once(min_age_s)

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        await self.orders.relay_forever(interval_s, min_age_s)

    async def compact_forever(self, interval_s: float, retention: timedelta, batch: int) -> None:
        await self.orders.compact_forever(interval_s, retention, batch)
