"""What the other services say about a conversation: orders become activities on its timeline, and
the customers service's copy of the customer's name and phone replaces the one from WhatsApp."""

from __future__ import annotations

import logging
from datetime import datetime

from inbox_conversations import documents, domain, views
from inbox_conversations.outbox import Publisher, next_arrival
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.publishing import Announcer
from inbox_core.events.conversations import ActivityCreated
from inbox_core.events.customers import CustomerSnapshot
from inbox_core.events.orders import Actor, OrderCreated, OrderStageChanged
from inbox_core.mongo import Document

log = logging.getLogger("inbox.conversations.elsewhere")


class OrderActivities:
    def __init__(self, repos: Repositories, publisher: Publisher) -> None:
        self.repos = repos
        self.publisher = publisher

    async def record(self, event_id: str, occurred_at: datetime, change: OrderCreated | OrderStageChanged) -> None:
        """An ``order_created`` / ``order_stage_changed`` activity with who did it (idempotent by event id)."""
        order = change.order
        actor: Actor | None
        if isinstance(change, OrderCreated):
            action, actor, at = "order_created", order.created_by, order.created_at
            details: Document = {"order_id": order.id, "order_number": order.number, "stage": order.stage,
                                 "total": {"amount": order.total.amount, "currency": order.total.currency}}
        else:
            action, actor = "order_stage_changed", change.by
            last = order.stage_history[-1] if order.stage_history else None
            reached = last is not None and last.stage == change.to_stage
            at = last.at if last is not None and reached else occurred_at
            if actor is None and last is not None and reached:
                actor = last.by
            details = {"order_id": order.id, "order_number": order.number, "from_stage": change.from_stage,
                       "to_stage": change.to_stage, "stage": order.stage}
        if not order.conversation_id:
            return
        # The conversation read taking the activity's seq (one round trip), in the order's workspace only.
        conv = await self.repos.conversations.find_taking_seq(order.conversation_id, workspace_id=order.workspace_id)
        if conv is None:
            log.info("order %s names conversation %s, not found in its workspace", order.id, order.conversation_id)
            return
        activity_id = domain.derived_id("act_", "order-event", event_id)
        doc = documents.activity(activity_id, order.workspace_id, conv["_id"], action,
                                 {"id": actor.id, "name": actor.name} if actor else None, details, at,
                                 next_arrival(), int(conv["last_seq"]))
        if not await self.repos.timeline.insert(doc):
            doc = await self.repos.timeline.get(activity_id) or doc  # a redelivery: the first one's arrival
        await self.publisher.conversation_event(
            order.workspace_id, conv["_id"], ActivityCreated(conversation_id=conv["_id"],
                                                             activity=views.activity(doc)),
            domain.event_id(event_id, "activity.created"))


class CustomerCopy:
    def __init__(self, repos: Repositories, announcer: Announcer) -> None:
        self.repos = repos
        self.announcer = announcer

    async def follow(self, event_id: str, snapshot: CustomerSnapshot) -> None:
        """The conversations' copy of the customer follows newer versions only; one that arrives before
        the conversation exists is kept and applied when it is created (inbound.py)."""
        customer = {
            "id": snapshot.id,
            "name": snapshot.name or snapshot.profile_name or "",
            "phone": snapshot.phone or (f"+{snapshot.wa_id}" if snapshot.wa_id else ""),
            "version": snapshot.version,
        }
        await self.repos.customers.remember(customer)
        await self.repos.conversations.apply_customer(customer)
        # Every conversation now showing this version, also those updated before a crash cut us short: one
        # read gives what their search entries and their events need.
        for conv in await self.repos.conversations.showing_customer_version(snapshot.id, snapshot.version):
            await self.repos.search.sync_if_stale(conv)
            await self.announcer.conversation(conv, domain.event_id(event_id, conv["_id"], "updated"))
