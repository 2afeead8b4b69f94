"""The customers service's use cases, over its repository (store.py), taking and returning typed values:
``ContactSeen``/``OrderSnapshot``/``Actor`` in, ``Customer`` out. rpc.py and consumers.py only translate
protos and events to these."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from inbox_core.errors import NotFound
from inbox_core.events import Event, EventData
from inbox_core.events.customers import Actor, CustomerCreated, CustomerStatsChanged, CustomerUpdated
from inbox_core.events.orders import OrderSnapshot
from inbox_core.ids import customer_id
from inbox_core.mongo import Document
from inbox_core.outbox import Outgoing
from inbox_core.revisions import now_ms
from inbox_core.topics import CUSTOMERS
from inbox_customers import domain
from inbox_customers.domain import ContactSeen, Customer
from inbox_customers.store import CustomersRepository

Change = Callable[[Document | None, datetime], Document | None]


class Customers:
    def __init__(self, repository: CustomersRepository, *, topic: str = CUSTOMERS.name) -> None:
        self.repository = repository
        self.topic = topic

    async def get(self, workspace_id: str, cid: str) -> Customer:
        """The customer with its first/last seen times; NotFound when absent or in another workspace."""
        state = await self.repository.get(cid) if cid else None
        if state is None or state["workspace_id"] != workspace_id:
            raise NotFound("no such customer", {"customer_id": cid})
        return domain.customer(state, await self.repository.seen_of(cid))

    async def update(self, workspace_id: str, cid: str, *, name: str | None = None, tags: list[str] | None = None,
                     attributes: dict[str, Any] | None = None, by: Actor | None = None) -> Customer:
        """An agent's edit; only what is given changes. Acknowledged once committed with its event."""

        def change(current: Document | None, now: datetime) -> Document | None:
            if current is None or current["workspace_id"] != workspace_id:
                raise NotFound("no such customer", {"customer_id": cid})
            return domain.edited(current, name, tags, attributes, now)

        if not cid or ":" in cid:
            raise NotFound("no such customer", {"customer_id": cid})
        customer = await self._apply(cid, change, await self.repository.seen_of(cid), by=by)
        assert customer is not None
        return customer

    async def record_contact(self, contact: ContactSeen) -> Customer | None:
        """A WhatsApp message of this customer: creates the customer or updates the profile, and moves
        first/last seen (last seen by the customer's own messages only). Idempotent. One write of the
        seen times (which returns them), one read of the customer; a revision only when something changed
        (a message repeating the customer's profile name changes nothing)."""
        return await self.record_contacts([contact])

    async def record_contacts(self, contacts: Sequence[ContactSeen]) -> Customer | None:
        """Messages of one customer, in their order (a run on the partition), as one: the same two
        operations as one message, each message merged in turn (as one by one would). Contacts of several
        customers are recorded one customer after the other."""
        contacts = [c for c in contacts if c.wa_id or c.user_id]
        if not contacts:
            return None
        ids = [customer_id(c.workspace_id, c.wa_id or None, c.user_id) for c in contacts]
        if len(set(ids)) > 1:
            out = None
            for contact in contacts:
                out = await self.record_contacts([contact])
            return out
        cid = ids[0]
        seen = await self.repository.touch_seen(cid, contacts)
        newest_name_at = (seen or {}).get("named_at")

        def change(current: Document | None, now: datetime) -> Document | None:
            changed = None
            for contact in contacts:
                after = domain.merge_contact(current, contact, now, newest_name_at)
                if after is not None:
                    current = changed = after
            return changed

        return await self._apply(cid, change, seen)

    async def record_order(self, order: OrderSnapshot) -> Customer | None:
        """An order event: the order's latest version replaces what was known of it, then the stats are
        recounted. A duplicate, replayed or stale event changes nothing."""
        if not order.customer_id or ":" in order.customer_id:
            return None  # not an id this service gives (customer ids are cus_<hex>)
        return await self._apply(order.customer_id, lambda current, now: domain.apply_order(current, order, now),
                                 await self.repository.seen_of(order.customer_id))

    async def _apply(self, cid: str, change: Change, seen: Document | None,
                     by: Actor | None = None) -> Customer | None:
        """Commits ``change`` (current state -> new state, or None for no change) with its event:
        ``customer.created`` for a new customer, ``customer.updated`` when the profile changed,
        ``customer.stats_changed`` when only the stats did, none otherwise. Events carry the whole
        customer as it is after the change, first/last seen included."""

        def decide(current: Document | None, version: int) -> tuple[Document, list[Outgoing]] | None:
            state = change(current, now_ms())
            if state is None:
                return None
            snapshot = domain.snapshot({"_id": cid, **state, "version": version}, seen)
            payload: EventData | None = None
            if current is None:
                payload = CustomerCreated(customer=snapshot)
            elif changed := [f for f in domain.PROFILE_FIELDS if state.get(f) != current.get(f)]:
                payload = CustomerUpdated(customer=snapshot, by=by, changed=changed)
            elif state.get("stats") != current.get("stats"):
                payload = CustomerStatsChanged(customer=snapshot)
            if payload is None:
                return state, []  # e.g. an order moved without changing a count, or a profile name's time
            event = Event.of(payload, workspace_id=state["workspace_id"], id=domain.event_id(cid, version),
                             occurred_at=state["updated_at"])
            return state, [Outgoing(self.topic, cid, event)]

        state = await self.repository.commit(cid, decide)
        return domain.customer(state, seen) if state is not None else None
