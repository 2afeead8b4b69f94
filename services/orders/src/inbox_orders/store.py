"""The orders service's own MongoDB database: orders, pipeline stages and their history.

Collections:
- ``orders``: the orders as queries read them (the projection), and ``orders_revisions``: every change
  of an order, committed with its events before anything else (see inbox_core.revisions). Every
  change therefore goes out on ``inbox.orders.v1`` (key: order id), even after a crash.
- ``order_counters``: the last order number handed out per workspace; ``order_numbers``: one document
  per number taken (a unique index), so a number is never given twice even where ``$inc`` is not atomic
  (FerretDB); ``order_keys``: one document per idempotency key, pointing at its order.
"""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.errors import NotFound, Unavailable
from inbox_core.events import Event, new_id
from inbox_core.mongo import Document, Index, decode_cursor, encode_cursor, ensure_indexes
from inbox_core.revisions import Outgoing, RevisionedCollection, now_ms
from inbox_core.topics import ORDERS
from inbox_orders import domain
from inbox_orders.domain import ActorIn, NewOrder, Stage

DEFAULT_PAGE = 20
MAX_PAGE = 100


class OrdersStore:
    def __init__(self, db: AsyncDatabase[Document], broker: KafkaBroker, *, topic: str = ORDERS.name,
                 publish_timeout_s: float = 3.0) -> None:
        self.db = db
        self.topic = topic
        self.orders = RevisionedCollection(db, "orders", broker, publish_timeout_s)
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

    async def get(self, workspace_id: str, order_id: str) -> Document:
        order = await self.orders.get(order_id) if order_id else None
        if order is None or order["workspace_id"] != workspace_id:
            raise NotFound("no such order", {"order_id": order_id})
        return order

    async def list_by_customer(
        self, workspace_id: str, customer_id: str, limit: int = 0, cursor: str = ""
    ) -> tuple[list[Document], str]:
        """The customer's orders, newest (highest number) first, and the cursor of the next page."""
        size = min(limit, MAX_PAGE) if limit > 0 else DEFAULT_PAGE
        query: dict[str, Any] = {"workspace_id": workspace_id, "customer_id": customer_id}
        if cursor:
            (last_number,) = decode_cursor(cursor, 1)
            query["number"] = {"$lt": last_number}
        page = await self.orders.docs.find(query).sort([("number", DESCENDING)]).limit(size + 1).to_list()
        more = len(page) > size
        page = page[:size]
        return page, encode_cursor([page[-1]["number"]]) if more else ""

    async def current_order(self, workspace_id: str, customer_id: str) -> Document | None:
        """The latest order not in a final stage (delivered, cancelled, returned)."""
        return await self.orders.docs.find_one(
            {"workspace_id": workspace_id, "customer_id": customer_id, "final": False},
            sort=[("number", DESCENDING)],
        )

    # --- writes -------------------------------------------------------------------------------------

    async def create(self, request: NewOrder) -> tuple[Document, bool]:
        """Creates the order (validated, totals computed) and publishes ``order.created``; returns the
        order and whether this call created it (False: the idempotency key's order from before)."""
        req = domain.validate_new_order(request)
        order_id = "ord_" + new_id()[:24]
        if req.idempotency_key:
            # The key pins the order id: a double submit, even a concurrent one, commits version 1 of the
            # same order, and the unique revision id lets only one of them do so.
            try:
                await self.keys.insert_one({"workspace_id": req.workspace_id, "key": req.idempotency_key,
                                            "order_id": order_id, "created_at": now_ms()})
            except DuplicateKeyError:
                claimed = await self.keys.find_one({"workspace_id": req.workspace_id, "key": req.idempotency_key})
                if claimed is None:  # pragma: no cover - keys are never deleted
                    raise Unavailable("idempotency key vanished, try again") from None
                order_id = claimed["order_id"]
                existing = await self.orders.get(order_id)
                if existing is not None:
                    return existing, False
        number = await self._next_number(req.workspace_id, order_id)
        created = False

        def decide(current: Document | None, version: int) -> tuple[Document, list[Outgoing]] | None:
            nonlocal created
            if current is not None:
                return None  # the same key's other submission was first
            state = domain.new_order_state(req, number, now_ms())
            order = {"_id": order_id, **state, "version": version}
            created = True
            return state, [self._outgoing(order, domain.created_event(order))]

        order = await self.orders.apply(order_id, decide)
        assert order is not None
        return order, created

    async def change_stage(self, workspace_id: str, order_id: str, target: Stage, by: ActorIn | None) -> Document:
        """Moves the order if the pipeline allows it from its current stage (else Conflict). Of two
        concurrent changes each is decided on the state the other left: both cannot apply to one state."""

        def decide(current: Document | None, version: int) -> tuple[Document, list[Outgoing]] | None:
            if current is None or current["workspace_id"] != workspace_id:
                raise NotFound("no such order", {"order_id": order_id})
            state = domain.moved_state(current, target, by, now_ms())
            order = {"_id": order_id, **state, "version": version}
            event = domain.stage_changed_event(order, current["stage"], by)
            return state, [self._outgoing(order, event)]

        if not order_id or ":" in order_id:
            raise NotFound("no such order", {"order_id": order_id})
        order = await self.orders.apply(order_id, decide)
        assert order is not None
        return order

    def _outgoing(self, order: Document, payload: Any) -> Outgoing:
        event = Event.of(payload, workspace_id=order["workspace_id"],
                         id=domain.event_id(order["_id"], order["version"]), occurred_at=order["updated_at"])
        return Outgoing(self.topic, order["_id"], event)

    async def _next_number(self, workspace_id: str, order_id: str) -> int:
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

    # --- the relay ----------------------------------------------------------------------------------

    async def relay_once(self, min_age_s: float) -> int:
        return await self.orders.relay_once(min_age_s)

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        await self.orders.relay_forever(interval_s, min_age_s)

