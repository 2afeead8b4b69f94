"""Kafka consumers of the customers service (the ``worker`` role).

- ``whatsapp.events.v1``: every message (live, history backfill, echo) creates its customer; the
  customer's own messages bring the WhatsApp profile name and move "last seen". Events without a
  workspace (from a number no workspace has connected) are skipped.
- ``inbox.orders.v1``: every order event carries the whole order with its version; the customer's
  stats are recounted from the latest version of each of its orders.

Both handlers are idempotent (a replay or duplicate changes nothing), and their changes are committed
with their ``inbox.customers.v1`` events before the offset is (see app.py). Handlers only translate
events into the use cases' values.
"""

from faststream.kafka import KafkaBroker

from inbox_core.events import Event
from inbox_core.events.orders import OrderEvent

# Importing the module registers every whatsapp.* payload type (Event.payload finds them).
from inbox_core.events.whatsapp import MessageReceived
from inbox_core.ids import customer_key
from inbox_core.kafka import Runs, subscribe_batch
from inbox_core.topics import ORDERS, WHATSAPP_EVENTS
from inbox_customers.app import Customers
from inbox_customers.domain import ContactSeen

GROUP_ID = "inbox-customers"
MESSAGE_RECEIVED = "whatsapp.message.received"


def contact_of(event: Event) -> ContactSeen | None:
    """What a message event tells about its customer; None for other events, an unrouted number's, or a
    message that names no customer."""
    if event.type != MESSAGE_RECEIVED or not event.workspace_id:
        return None  # statuses, templates...; or an unrouted number
    message = event.payload(MessageReceived)
    if not message.wa_id and not message.user_id:
        return None
    inbound = message.direction == "in"
    return ContactSeen(workspace_id=event.workspace_id, wa_id=message.wa_id, user_id=message.user_id,
                       profile_name=message.profile_name if inbound else None, at=message.timestamp,
                       inbound=inbound)


def customer_run(event: Event) -> tuple[str, str] | None:
    """The run a message event joins: its customer's (workspace, inbox_core.ids.customer_key), read from
    the event's data as it came; None for anything else."""
    if event.type != MESSAGE_RECEIVED or not event.workspace_id:
        return None
    wa_id, user_id = event.data.get("wa_id") or "", event.data.get("user_id") or ""
    return (event.workspace_id, customer_key(str(wa_id), str(user_id))) if wa_id or user_id else None


async def handle_whatsapp_event(customers: Customers, event: Event) -> None:
    contact = contact_of(event)
    if contact is not None:
        await customers.record_contact(contact)


async def handle_whatsapp_run(customers: Customers, events: list[Event]) -> None:
    """A customer's consecutive messages on the partition: one write of the seen times, one decision."""
    contacts = [c for c in map(contact_of, events) if c is not None]
    await customers.record_contacts(contacts)


async def handle_order_event(customers: Customers, event: Event) -> None:
    # Every order.* event carries the whole order (OrderEvent), even kinds added after this was written.
    if not event.type.startswith("order.") or "order" not in event.data:
        return
    await customers.record_order(event.payload(OrderEvent).order)


def register(
    broker: KafkaBroker,
    customers: Customers,
    *,
    whatsapp_topic: str = WHATSAPP_EVENTS.name,
    orders_topic: str = ORDERS.name,
    group_id: str = GROUP_ID,
) -> None:
    """Subscribes this service's handlers (consumer group ``inbox-customers``).

    A poll's records are one batch: each key's in order, different keys at once, committed after all
    their effects (inbox_core.kafka.subscribe_batch). Two keys can name one customer (a customer writing
    to two numbers, two orders): its seen times are ``$min``/``$max`` and its changes revisions that
    decide again when another writer took their version, so handling them at once loses nothing. A
    customer's consecutive messages are one run: one write of the seen times and one decision."""

    async def on_whatsapp(event: Event) -> None:
        await handle_whatsapp_event(customers, event)

    async def on_whatsapp_run(events: list[Event]) -> None:
        await handle_whatsapp_run(customers, events)

    async def on_order(event: Event) -> None:
        await handle_order_event(customers, event)

    subscribe_batch(broker, whatsapp_topic, group_id=group_id, handler=on_whatsapp,
                    runs=Runs(customer_run, on_whatsapp_run))
    subscribe_batch(broker, orders_topic, group_id=group_id, handler=on_order)
