"""Publishing: the topics, conversation events, and the outbox of changes made through gRPC.

A change made through gRPC is never acknowledged unless its events will be published. Without
multi-document transactions, the request writes its events *into the document it changes* (one
single-document write: a new message or note carries them, an assignment or read writes them onto the
conversation) under ``outbox.<entry id>`` with an ``outbox_at`` time. Then it carries the entry out:
inserts the timeline items it names, applies its effect on the conversation, publishes its events,
and removes the entry. A crash (or Kafka being down) anywhere leaves the entry in place; the relay
loop finds entries older than a grace period and carries them out again. Every step is idempotent
(timeline items by id, events by id, commands by command_id), so doing one twice is harmless.

Both the request and the relay go through ``inbox_core.outbox.Outbox`` (the one outbox of every
service): each collection holding entries is an entry source (:class:`EmbeddedEntries`, named
``conversations.<collection>`` in outbox_parked), an embedded entry is one ``inbox_core.outbox.Entry``
(id ``<document id>/<entry id>``, lane the document). One that keeps failing for a reason of its own
is moved out of its document to ``outbox_parked`` with that reason after a few tries (a replay puts it
back), and the entries beside and behind it go on; Kafka or the database away ends the round instead.

The embedded entry's shape (what rpc.py writes): ``{"id", "created_at", "events": [{"topic", "key",
"event"}], "inserts": [timeline items], "apply": "outbound_message" | "note_mentions" | None, "conversation_id",
"conversation_updated": bool}``.

Consumer-side changes need no outbox: they publish before the handler returns and a redelivery
publishes the same event ids again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from inbox_conversations import documents, domain, views
from inbox_conversations.store import ConversationsStore
from inbox_core.events import Event
from inbox_core.events.conversations import ConversationCreated, ConversationUpdated
from inbox_core.kafka import publish
from inbox_core.mongo import Document
from inbox_core.outbox import Entry, Outbox, Outgoing
from inbox_core.topics import CONVERSATIONS, CUSTOMERS, ORDERS, WHATSAPP_COMMANDS, WHATSAPP_EVENTS

log = logging.getLogger("inbox.conversations.outbox")


@dataclass(frozen=True)
class Topics:
    """Topic names (tests use their own)."""

    whatsapp_events: str = WHATSAPP_EVENTS.name
    commands: str = WHATSAPP_COMMANDS.name
    conversations: str = CONVERSATIONS.name
    orders: str = ORDERS.name
    customers: str = CUSTOMERS.name


def utcnow() -> datetime:
    return domain.to_ms(datetime.now(UTC))


_last_arrival = 0


def next_arrival() -> int:
    """The arrival order of a new timeline item, fixed when its document is first built: nanoseconds
    since the epoch, strictly growing within the process. Meta's timestamps have one-second
    resolution, so items of the same ``at`` are ordered by this (see store.TIMELINE_SORT). Messages of
    one conversation are consumed from one partition in order, so their arrivals follow that order."""
    global _last_arrival
    _last_arrival = max(time.time_ns(), _last_arrival + 1)
    return _last_arrival


def command_key(number_id: str, wa_id: str, user_id: str | None) -> str:
    """whatsapp.commands.v1 is keyed like whatsapp.events.v1: one customer of one number."""
    return f"{number_id}:{wa_id or user_id or ''}"


def outbox_event(topic: str, key: str, event: Event) -> Document:
    return {"topic": topic, "key": key, "event": event.model_dump(mode="json")}


class EmbeddedEntries:
    """The outbox entries embedded in one collection's documents (an ``inbox_core.outbox`` source)."""

    def __init__(self, publisher: Publisher, collection: str) -> None:
        self.publisher = publisher
        self.store = publisher.store
        self.collection = collection
        self.name = f"conversations.{collection}"

    def entry(self, doc_id: str, embedded: Document, at: datetime | None = None) -> Entry:
        created = embedded.get("created_at")
        return Entry(f"{doc_id}/{embedded.get('id')}", doc_id, list(embedded.get("events") or []),
                     created if isinstance(created, datetime) else (at or utcnow()),
                     {"doc_id": doc_id, "entry": embedded})

    async def due(self, before: datetime, limit: int) -> list[Entry]:
        entries: list[Entry] = []
        for doc in await self.store.outbox_leftovers(self.collection, before, limit):
            outbox: dict[str, Any] = doc.get("outbox") or {}
            if not outbox:
                await self.store.drop_outbox_marker(self.collection, doc["_id"])
            for embedded in sorted(outbox.values(), key=lambda e: str(e.get("created_at", ""))):
                entries.append(self.entry(doc["_id"], embedded, doc.get("outbox_at")))
        return entries

    async def prepare(self, entry: Entry) -> bool:
        embedded = entry.data["entry"]
        for item in embedded.get("inserts") or []:
            await self.store.insert_item(item)
        if embedded.get("apply") == "outbound_message":
            message = await self.store.get_item(entry.data["doc_id"])
            if message is not None:
                await self.publisher.apply_outbound_message(message)
        elif embedded.get("apply") == "note_mentions":  # before its events: a mention read is a mention counted
            note = await self.store.get_item(entry.data["doc_id"])
            if note is not None:
                author = (note.get("author") or {}).get("id")  # one's own note is never unseen by oneself
                await self.store.repos.mentions.add(
                    note["workspace_id"], note["conversation_id"], note["_id"],
                    [m["id"] for m in note.get("mentions") or [] if m.get("id") != author], note["at"])
        return True

    async def finished(self, entry: Entry) -> None:
        embedded = entry.data["entry"]
        conversation_id = embedded.get("conversation_id")
        if conversation_id and embedded.get("conversation_updated"):
            await self.publisher.conversation_updated(conversation_id,
                                                      domain.event_id(embedded["id"], "conversation.updated"))
        await self.store.clear_outbox_entry(self.collection, entry.data["doc_id"], str(embedded["id"]))

    async def park(self, entry: Entry) -> None:
        # Out of the document, so its marker no longer brings it back every round.
        await self.store.clear_outbox_entry(self.collection, entry.data["doc_id"], str(entry.data["entry"]["id"]))

    async def restore(self, entry: Entry) -> None:
        data = entry.data.get("legacy") or entry.data  # parked before the shared outbox: {doc_id, entry} too
        await self.store.restore_outbox_entry(self.collection, str(data["doc_id"]), data["entry"])


class Publisher:
    def __init__(self, store: ConversationsStore, broker: KafkaBroker, topics: Topics | None = None) -> None:
        self.store = store
        self.broker = broker
        self.topics = topics or Topics()
        self.sources = {name: EmbeddedEntries(self, name) for name in ("timeline", "conversations")}
        self.outbox = Outbox(store.db, self._publish, list(self.sources.values()), batch=100)
        self.parking = self.outbox.parking

    async def _publish(self, out: Outgoing) -> None:
        await publish(self.broker, out.topic, out.key, out.event)

    async def conversation_event(self, workspace_id: str, conversation_id: str, payload: BaseModel,
                                 event_id: str) -> None:
        event = Event.of(payload, workspace_id=workspace_id, id=event_id)
        await publish(self.broker, self.topics.conversations, conversation_id, event)

    async def conversation_updated(self, conversation_id: str, event_id: str, *, created: bool = False) -> None:
        """Publishes the conversation as it is now (``created``: also conversation.created, once)."""
        doc = await self.store.find_conversation(conversation_id)
        if doc is None:
            return
        now = utcnow()
        summary = views.summary(doc, now)
        if created or not doc.get("announced", True):
            await self.conversation_event(doc["workspace_id"], conversation_id,
                                          ConversationCreated(conversation=summary),
                                          domain.event_id(conversation_id, "conversation.created"))
            await self.store.mark_announced(conversation_id)
        await self.conversation_event(doc["workspace_id"], conversation_id, ConversationUpdated(conversation=summary),
                                      event_id)

    # --- the outbox --------------------------------------------------------------------------------------

    async def apply_outbound_message(self, message: Document) -> None:
        """A message sent here becomes the conversation's last message (idempotent)."""
        await self.store.apply_last_message(message["conversation_id"], documents.last_message(message),
                                            awaiting_reply=False)

    async def carry_out(self, collection: str, doc_id: str, entry: Document) -> None:
        """Does what an outbox entry says, then removes it. Safe to repeat. Raises what failed."""
        source = self.sources[collection]
        await self.outbox.carry_out(source, source.entry(doc_id, entry))

    async def try_carry_out(self, collection: str, doc_id: str, entry: Document, wait_s: float) -> bool:
        """Carries out a request's own entry; on failure (Kafka down, slow) the relay finishes it later."""
        source = self.sources[collection]
        outcome, _ = await self.outbox.deliver(source, source.entry(doc_id, entry), timeout_s=wait_s)
        return outcome == "published"

    async def relay_once(self, grace: timedelta, pending_ttl_purge: bool = True) -> int:
        """Carries out every entry older than ``grace``; the number of entries done. Kafka or the
        database away raises, after what the round could do."""
        result = await self.outbox.relay_once(grace=grace)
        if pending_ttl_purge:
            await self.store.purge_pending(utcnow())
        if result.error is not None:
            raise result.error
        return result.published

    async def relay_forever(self, interval: float, grace: timedelta) -> None:
        """The relay loop (inbox_core.outbox's), with the purge of expired pending items each round."""
        self.outbox.grace = grace
        await self.outbox.run(interval, also=lambda: self.store.purge_pending(utcnow()))
