"""The orders service's use cases, over its repository (store.py), taking and returning typed values:
``NewOrder``/``Stage``/``ActorIn`` in, ``OrderSnapshot`` (the order as events carry it) out. rpc.py only
translates protos to these and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from inbox_core.errors import NotFound
from inbox_core.events import Event
from inbox_core.events.orders import OrderSnapshot
from inbox_core.mongo import Document, decode_cursor, encode_cursor
from inbox_core.outbox import Outgoing
from inbox_core.revisions import now_ms
from inbox_core.topics import ORDERS
from inbox_orders import domain
from inbox_orders.domain import ActorIn, NewOrder, Stage
from inbox_orders.store import OrdersRepository

DEFAULT_PAGE = 20
MAX_PAGE = 100


@dataclass(frozen=True)
class CustomerOrders:
    """A page of a customer's orders (newest first), the next page's cursor, and the current order."""

    orders: list[OrderSnapshot]
    next_cursor: str
    current: OrderSnapshot | None


class Orders:
    def __init__(self, repository: OrdersRepository, *, topic: str = ORDERS.name) -> None:
        self.repository = repository
        self.topic = topic

    async def get(self, workspace_id: str, order_id: str) -> OrderSnapshot:
        """NotFound when absent or in another workspace."""
        order = await self.repository.get(order_id) if order_id else None
        if order is None or order["workspace_id"] != workspace_id:
            raise NotFound("no such order", {"order_id": order_id})
        return domain.snapshot(order)

    async def list_by_customer(self, workspace_id: str, customer_id: str, limit: int = 0,
                               cursor: str = "") -> CustomerOrders:
        size = min(limit, MAX_PAGE) if limit > 0 else DEFAULT_PAGE
        before = decode_cursor(cursor, 1)[0] if cursor else None
        page = await self.repository.of_customer(workspace_id, customer_id, size + 1, before_number=before)
        more = len(page) > size
        page = page[:size]
        current = await self.repository.current_of_customer(workspace_id, customer_id)
        return CustomerOrders([domain.snapshot(o) for o in page], encode_cursor([page[-1]["number"]]) if more else "",
                              domain.snapshot(current) if current is not None else None)

    async def create(self, request: NewOrder) -> tuple[OrderSnapshot, bool]:
        """Creates the order (validated, totals computed) and publishes ``order.created``; returns the
        order and whether this call created it (False: the idempotency key's order from before)."""
        req = domain.validate_new_order(request)
        order_id = "ord_" + domain.new_order_id()
        if req.idempotency_key:
            # The key pins the order id: a double submit, even a concurrent one, commits version 1 of the
            # same order, and the unique revision id lets only one of them do so.
            order_id = await self.repository.claim_key(req.workspace_id, req.idempotency_key, order_id)
            existing = await self.repository.get(order_id)
            if existing is not None:
                return domain.snapshot(existing), False
        number = await self.repository.next_number(req.workspace_id, order_id)
        created = False

        def decide(current: Document | None, version: int) -> tuple[Document, list[Outgoing]] | None:
            nonlocal created
            if current is not None:
                created = False  # a retry after another submission of the key committed first
                return None
            state = domain.new_order_state(req, number, now_ms())
            order = {"_id": order_id, **state, "version": version}
            created = True
            return state, [self._outgoing(order, domain.created_event(order))]

        order = await self.repository.commit(order_id, decide)
        assert order is not None
        return domain.snapshot(order), created

    async def change_stage(self, workspace_id: str, order_id: str, target: Stage,
                           by: ActorIn | None) -> OrderSnapshot:
        """Moves the order if the pipeline allows it from its current stage (else Conflict). Of two
        concurrent changes each is decided on the state the other left: both cannot apply to one state."""

        def decide(current: Document | None, version: int) -> tuple[Document, list[Outgoing]] | None:
            if current is None or current["workspace_id"] != workspace_id:
                raise NotFound("no such order", {"order_id": order_id})
            state = domain.moved_state(current, target, by, now_ms())
            order = {"_id": order_id, **state, "version": version}
            return state, [self._outgoing(order, domain.stage_changed_event(order, current["stage"], by))]

        if not order_id or ":" in order_id:
            raise NotFound("no such order", {"order_id": order_id})
        order = await self.repository.commit(order_id, decide)
        assert order is not None
        return domain.snapshot(order)

    def _outgoing(self, order: Document, payload: Any) -> Outgoing:
        event = Event.of(payload, workspace_id=order["workspace_id"],
                         id=domain.event_id(order["_id"], order["version"]), occurred_at=order["updated_at"])
        return Outgoing(self.topic, order["_id"], event)
