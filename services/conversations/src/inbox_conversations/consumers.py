"""Kafka consumers of the conversations service (the ``worker`` role): each event is translated into
its use case (usecases/). Every use case is idempotent, because after a crash between its effects and
the offset commit it sees the event again; none relies on a transaction (see usecases/inbound.py)."""

from __future__ import annotations

from datetime import timedelta

from faststream.kafka import KafkaBroker

from inbox_conversations.outbox import Publisher, Topics
from inbox_conversations.store import ConversationsStore
from inbox_conversations.usecases.elsewhere import CustomerCopy, OrderActivities
from inbox_conversations.usecases.facts import Facts
from inbox_conversations.usecases.inbound import RUN_LONGEST, ReceiveMessage, joins_run
from inbox_conversations.usecases.message_events import MessageEvents
from inbox_conversations.usecases.publishing import Announcer
from inbox_conversations.usecases.routing import AutoAssignment, OnlineAgents
from inbox_conversations.usecases.templates import TemplateBook
from inbox_core.events import Event
from inbox_core.events.customers import CustomerEvent
from inbox_core.events.orders import OrderCreated, OrderStageChanged
from inbox_core.events.whatsapp import (
    MediaStored,
    MediaUnavailable,
    MessageEdited,
    MessageReceived,
    MessageRevoked,
    SendAccepted,
    SendFailed,
    StatusUpdated,
    TemplatesSynced,
    TemplateStatusChanged,
)
from inbox_core.ids import customer_key
from inbox_core.kafka import Runs, subscribe_batch

GROUP_ID = "inbox-conversations"
CUSTOMER_EVENTS = frozenset({"customer.created", "customer.updated", "customer.stats_changed"})


class Handlers:
    def __init__(self, store: ConversationsStore, publisher: Publisher,
                 pending_ttl: timedelta = timedelta(days=7), online: OnlineAgents | None = None) -> None:
        """``online``: who is online (presence), for auto-assignment; without it nothing is auto-assigned."""
        repos = store.repos
        self.announcer = Announcer(publisher, repos.conversations)
        self.facts = Facts(repos, self.announcer, pending_ttl)
        self.receive = ReceiveMessage(repos, publisher, self.announcer, self.facts,
                                      AutoAssignment(repos, publisher, online))
        self.message_events = MessageEvents(repos, self.facts)
        self.templates = TemplateBook(repos)
        self.orders = OrderActivities(repos, publisher)
        self.customers = CustomerCopy(repos, self.announcer)

    async def on_whatsapp_event(self, event: Event) -> None:
        workspace_id = event.workspace_id
        if workspace_id is None:  # a number no workspace has connected: ingest keeps it as unrouted
            return
        kind = event.type
        if kind == "whatsapp.message.received":
            await self.receive(event.id, workspace_id, event.payload(MessageReceived))
        elif kind == "whatsapp.status.updated":
            await self.message_events.status(event.id, workspace_id, event.payload(StatusUpdated))
        elif kind == "whatsapp.send.accepted":
            await self.message_events.send_accepted(event.id, workspace_id, event.payload(SendAccepted))
        elif kind == "whatsapp.send.failed":
            await self.message_events.send_failed(event.id, event.occurred_at, workspace_id,
                                                  event.payload(SendFailed))
        elif kind == "whatsapp.message.edited":
            await self.message_events.edited(event.id, workspace_id, event.payload(MessageEdited))
        elif kind == "whatsapp.message.revoked":
            await self.message_events.revoked(event.id, workspace_id, event.payload(MessageRevoked))
        elif kind == "whatsapp.media.stored":
            await self.message_events.media(event.id, workspace_id, event.payload(MediaStored))
        elif kind == "whatsapp.media.unavailable":
            await self.message_events.media(event.id, workspace_id, event.payload(MediaUnavailable))
        elif kind == "whatsapp.templates.synced":
            await self.templates.synced(event.occurred_at, workspace_id, event.payload(TemplatesSynced))
        elif kind == "whatsapp.template.status_changed":
            await self.templates.status_changed(event.occurred_at, workspace_id, event.payload(TemplateStatusChanged))

    @staticmethod
    def text_run(event: Event) -> tuple[str, str, str] | None:
        """The run a live customer text may fold into (its workspace, number and customer; see
        ReceiveMessage.run), read from the event's data as it came; None for anything else."""
        data = event.data
        if event.type != "whatsapp.message.received" or event.workspace_id is None or data.get("type") != "text":
            return None
        if data.get("direction", "in") != "in" or data.get("origin", "live") != "live":
            return None
        if (data.get("context") or {}).get("message_id"):
            return None
        number, wa_id, user_id = data.get("phone_number_id"), data.get("wa_id"), data.get("user_id")
        if not number or not (wa_id or user_id):
            return None
        return event.workspace_id, str(number), customer_key(str(wa_id or ""), str(user_id or ""))

    async def on_text_run(self, events: list[Event]) -> None:
        items = [(event.id, event.payload(MessageReceived)) for event in events]
        workspace_id = events[0].workspace_id
        if workspace_id is None or not all(joins_run(msg) for _, msg in items):
            for event in events:  # the data said so, the model does not: one by one, as ever
                await self.on_whatsapp_event(event)
            return
        await self.receive.run(workspace_id, items)

    async def on_order_event(self, event: Event) -> None:
        if event.type == "order.created":
            await self.orders.record(event.id, event.occurred_at, event.payload(OrderCreated))
        elif event.type == "order.stage_changed":
            await self.orders.record(event.id, event.occurred_at, event.payload(OrderStageChanged))

    async def on_customer_event(self, event: Event) -> None:
        if event.type in CUSTOMER_EVENTS:
            await self.customers.follow(event.id, event.payload(CustomerEvent).customer)


def register(broker: KafkaBroker, store: ConversationsStore, publisher: Publisher, topics: Topics | None = None,
             pending_ttl: timedelta = timedelta(days=7), online: OnlineAgents | None = None) -> Handlers:
    """Subscribes this service's handlers (consumer group ``inbox-conversations``).

    A poll's records are one batch: each key's (one conversation's) in order, different keys at once,
    committed after all their effects (inbox_core.kafka.subscribe_batch). Each handler is idempotent.
    A customer's consecutive live texts are one run (ReceiveMessage.run)."""
    topics = topics or publisher.topics
    handlers = Handlers(store, publisher, pending_ttl, online)
    subscribe_batch(broker, topics.whatsapp_events, group_id=GROUP_ID, handler=handlers.on_whatsapp_event,
                    runs=Runs(Handlers.text_run, handlers.on_text_run, RUN_LONGEST))
    subscribe_batch(broker, topics.orders, group_id=GROUP_ID, handler=handlers.on_order_event)
    subscribe_batch(broker, topics.customers, group_id=GROUP_ID, handler=handlers.on_customer_event)
    return handlers
