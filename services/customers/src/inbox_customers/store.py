"""The customers service's own MongoDB database: customer profiles and per-customer stats.

Collections:
- ``customers``: one document per customer (``_id`` = inbox_core.ids.customer_id(workspace, wa_id,
  user_id), the id the conversations service derives from the same webhook event): profile, normalised
  search fields, the orders it knows and the stats recounted from them. Every change is committed as a
  revision with its events (``customers_revisions``, see inbox_core.revisions), so it reaches
  ``inbox.customers.v1`` even after a crash.
- ``customer_seen``: first and last seen times, apart, because they move with every message: bumping
  them is a ``$min``/``$max`` that needs no revision and publishes no event.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.errors import InvalidRequest, NotFound
from inbox_core.events import Event, EventData
from inbox_core.events.customers import Actor, CustomerCreated, CustomerStatsChanged, CustomerUpdated
from inbox_core.events.orders import OrderSnapshot
from inbox_core.ids import customer_id
from inbox_core.mongo import Document, Index, decode_cursor, encode_cursor, ensure_indexes
from inbox_core.revisions import Outgoing, RevisionedCollection, now_ms
from inbox_core.topics import CUSTOMERS
from inbox_customers import domain
from inbox_customers.domain import ContactSeen

DEFAULT_PAGE = 20
MAX_PAGE = 100

class CustomersStore:
    def __init__(self, db: AsyncDatabase[Document], broker: KafkaBroker, *, topic: str = CUSTOMERS.name,
                 publish_timeout_s: float = 3.0) -> None:
        self.db = db
        self.topic = topic
        self.customers = RevisionedCollection(db, "customers", broker, publish_timeout_s)
        self.seen = db["customer_seen"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent)."""
        await self.customers.ensure_indexes()
        await ensure_indexes(self.customers.docs, [
            # Search: name-word prefixes (multikey), and the listing order (name, then id) for paging.
            Index([("workspace_id", ASCENDING), ("search_words", ASCENDING)], "workspace_name_words"),
            Index([("workspace_id", ASCENDING), ("name_key", ASCENDING), ("_id", ASCENDING)], "workspace_by_name"),
        ])

    # --- reads --------------------------------------------------------------------------------------

    async def get(self, workspace_id: str, cid: str) -> Document:
        """The customer with its first/last seen times; NotFound when absent or in another workspace."""
        customer = await self.customers.get(cid) if cid else None
        if customer is None or customer["workspace_id"] != workspace_id:
            raise NotFound("no such customer", {"customer_id": cid})
        return await self._with_seen(customer)

    async def get_by_wa_id(self, workspace_id: str, wa_id: str, user_id: str = "") -> Document:
        if not workspace_id:
            raise InvalidRequest("workspace_id is required", {"field": "workspace_id"})
        if not wa_id and not user_id:
            raise InvalidRequest("wa_id or user_id is required", {"field": "wa_id"})
        return await self.get(workspace_id, customer_id(workspace_id, wa_id or None, user_id or None))

    async def search(
        self, workspace_id: str, query: str, limit: int = 0, cursor: str = ""
    ) -> tuple[list[Document], str]:
        """By name (every query word starts a word of the name, case and accents ignored) or by phone
        digits (anywhere in the number); ordered by name, keyset paged."""
        if not workspace_id:
            raise InvalidRequest("workspace_id is required", {"field": "workspace_id"})
        size = min(limit, MAX_PAGE) if limit > 0 else DEFAULT_PAGE
        parsed = domain.parse_query(query)
        conditions: list[dict[str, Any]] = [{"workspace_id": workspace_id}]
        if parsed.kind == "phone":
            conditions.append({"phone_digits": {"$regex": re.escape(parsed.phone_digits)}})
        elif parsed.kind == "name":
            conditions.extend({"search_words": {"$regex": "^" + re.escape(w)}} for w in parsed.words)
        if cursor:
            name_key, last_id = decode_cursor(cursor, 2)
            conditions.append({"$or": [{"name_key": {"$gt": name_key}},
                                       {"name_key": name_key, "_id": {"$gt": last_id}}]})
        page = await self.customers.docs.find({"$and": conditions}).sort(
            [("name_key", ASCENDING), ("_id", ASCENDING)]
        ).limit(size + 1).to_list()
        more = len(page) > size
        page = page[:size]
        next_cursor = encode_cursor([page[-1]["name_key"], page[-1]["_id"]]) if more else ""
        seen = {s["_id"]: s async for s in self.seen.find({"_id": {"$in": [c["_id"] for c in page]}})}
        return [self._merge_seen(c, seen.get(c["_id"])) for c in page], next_cursor

    # --- writes -------------------------------------------------------------------------------------

    async def record_contact(self, contact: ContactSeen) -> Document | None:
        """A WhatsApp message of this customer: creates the customer or updates the profile, and moves
        first/last seen (last seen by the customer's own messages only). Idempotent."""
        if not contact.wa_id and not contact.user_id:
            return None
        cid = customer_id(contact.workspace_id, contact.wa_id or None, contact.user_id)
        await self._touch_seen(cid, contact)
        return await self._apply(cid, lambda current, now: domain.merge_contact(current, contact, now))

    async def record_order(self, order: OrderSnapshot) -> Document | None:
        """An order event: the order's latest version replaces what was known of it, then the stats are
        recounted. A duplicate, replayed or stale event changes nothing."""
        if not order.customer_id or ":" in order.customer_id:
            return None  # not an id this service gives (customer ids are cus_<hex>)
        return await self._apply(order.customer_id, lambda current, now: domain.apply_order(current, order, now))

    async def update(self, workspace_id: str, cid: str, *, name: str | None = None, tags: list[str] | None = None,
                     attributes: dict[str, Any] | None = None, by: Actor | None = None) -> Document:
        """An agent's edit; only what is given changes. Acknowledged once committed with its event."""

        def change(current: Document | None, now: datetime) -> Document | None:
            if current is None or current["workspace_id"] != workspace_id:
                raise NotFound("no such customer", {"customer_id": cid})
            return domain.edited(current, name, tags, attributes, now)

        if not cid or ":" in cid:
            raise NotFound("no such customer", {"customer_id": cid})
        customer = await self._apply(cid, change, by=by)
        assert customer is not None
        return customer

    async def _apply(self, cid: str, change: Callable[[Document | None, datetime], Document | None],
                     by: Actor | None = None) -> Document | None:
        """Commits ``change`` (current state -> new state, or None for no change) with its event:
        ``customer.created`` for a new customer, ``customer.updated`` when the profile changed,
        ``customer.stats_changed`` when only the stats did, none otherwise. Events carry the whole
        customer as it is after the change, first/last seen included."""
        seen = await self.seen.find_one({"_id": cid})

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

        customer = await self.customers.apply(cid, decide)
        return self._merge_seen(customer, seen) if customer is not None else None

    async def _touch_seen(self, cid: str, contact: ContactSeen) -> None:
        moves: dict[str, Any] = {"$min": {"first_seen_at": contact.at},
                                 "$setOnInsert": {"workspace_id": contact.workspace_id}}
        if contact.inbound:
            moves["$max"] = {"last_seen_at": contact.at}
        for _ in range(3):
            try:
                await self.seen.update_one({"_id": cid}, moves, upsert=True)
                return
            except DuplicateKeyError:
                continue  # two first messages at once: the other inserted it, now it is an update

    async def _with_seen(self, customer: Document) -> Document:
        return self._merge_seen(customer, await self.seen.find_one({"_id": customer["_id"]}))

    @staticmethod
    def _merge_seen(customer: Document, seen: Document | None) -> Document:
        return {**customer, "first_seen_at": (seen or {}).get("first_seen_at"),
                "last_seen_at": (seen or {}).get("last_seen_at")}

    # --- the relay ----------------------------------------------------------------------------------

    async def relay_once(self, min_age_s: float) -> int:
        return await self.customers.relay_once(min_age_s)

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        await self.customers.relay_forever(interval_s, min_age_s)
