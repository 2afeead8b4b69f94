"""The customers service's repository: its own MongoDB database. The use cases are in app.py; this module
only reads and writes.

Collections:
- ``customers``: one document per customer (``_id`` = inbox_core.ids.customer_id(workspace, wa_id,
  user_id), the id the conversations service derives from the same webhook event): profile, the orders
  it knows and the stats recounted from them. Every change is committed as a revision with its events
  (``customers_revisions``, see inbox_core.revisions), so it reaches ``inbox.customers.v1`` even after a
  crash.
- ``customer_seen``: first and last seen times, apart, because they move with every message: bumping
  them is a ``$min``/``$max`` that needs no revision and publishes no event. ``named_at``, the time of
  the customer's newest message with a profile name, moves the same way: it is what tells a message's
  name from an older one, so a message repeating the current name writes nothing else.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.mongo import Document
from inbox_core.outbox import Publish
from inbox_core.revisions import Decide, RevisionedCollection
from inbox_customers.domain import ContactSeen


class CustomersRepository:
    """``publish``: how the outbox publishes (``inbox_core.outbox.kafka_publish(broker)``): the
    repository holds entries, never the broker."""

    def __init__(self, db: AsyncDatabase[Document], publish: Publish, *, publish_timeout_s: float = 3.0,
                 relay_min_age_s: float = 10.0) -> None:
        self.db = db
        self.customers = RevisionedCollection(db, "customers", publish=publish, publish_timeout_s=publish_timeout_s,
                                              relay_min_age_s=relay_min_age_s)
        self.seen = db["customer_seen"]

    async def ensure_indexes(self) -> None:
        """Creates the indexes every query of this service is served by (idempotent): reads are by id."""
        await self.customers.ensure_indexes()

    async def get(self, cid: str) -> Document | None:
        return await self.customers.get(cid)

    async def seen_of(self, cid: str) -> Document | None:
        return await self.seen.find_one({"_id": cid})

    async def commit(self, cid: str, decide: Decide) -> Document | None:
        """Commits what ``decide`` makes of the customer with its events (inbox_core.revisions)."""
        return await self.customers.apply(cid, decide)

    async def touch_seen(self, cid: str, contacts: Sequence[ContactSeen]) -> Document | None:
        """Moves first (and, for the customer's own messages, last) seen by the customer's messages ``contacts``
        (one, or a run of them: one write); returns the times after."""
        moves: dict[str, Any] = {"$min": {"first_seen_at": min(c.at for c in contacts)},
                                 "$setOnInsert": {"workspace_id": contacts[0].workspace_id}}
        inbound = [c.at for c in contacts if c.inbound]
        named = [c.at for c in contacts if c.inbound and (c.profile_name or "").strip()]
        if inbound:
            moves["$max"] = {"last_seen_at": max(inbound)}
            if named:
                moves["$max"]["named_at"] = max(named)
        for _ in range(3):
            try:
                return await self.seen.find_one_and_update({"_id": cid}, moves, upsert=True,
                                                           return_document=ReturnDocument.AFTER)
            except DuplicateKeyError:
                continue  # two first messages at once: the other inserted it, now it is an update
        return await self.seen_of(cid)

    # --- the outbox relay and retention ---------------------------------------------------------------

    async def relay_once(self, min_age_s: float) -> int:
        return await self.customers.relay_once(min_age_s)

    async def relay_forever(self, interval_s: float, min_age_s: float) -> None:
        await self.customers.relay_forever(interval_s, min_age_s)

    async def compact_forever(self, interval_s: float, retention: timedelta, batch: int) -> None:
        await self.customers.compact_forever(interval_s, retention, batch)
