"""Publishing: the topics, conversation events, and the outbox of changes made through gRPC.

A change made through gRPC is never acknowledged unless its events will be published. Without
multi-document transactions, the request writes its events *into the document it changes* (one
single-document write: a new message or note carries them, an assignment or read writes them onto the
conversation) under ``outbox.<entry id>`` with an ``outbox_at`` time. Then it carries the entry out:
inserts the timeline items it names, applies its effect on the conversation, publishes its events,
and removes the entry. A crash (or Kafka being down) anywhere leaves the entry in place; the relay
loop finds entries older than a grace period and carries them out again. Every step is idempotent
(timeline items by id, events by id, commands by command_id), so doing one twice is harmless. The relay
handles each entry on its own (``inbox_core.outbox``): one that keeps failing for a reason of its own is
moved to ``outbox_parked`` with that reason after a few rounds (a replay puts it back), and the entries
behind it go on; Kafka or the database away ends the round instead.

Consumer-side changes need no outbox: they publish before the handler returns and a redelivery
publishes the same event ids again.
"""

from __future__ import annotations

import asyncio
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
from inbox_core.kafka import is_transient, publish
from inbox_core.mongo import Document
from inbox_core.outbox import Parking
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


class Publisher:
    def __init__(self, store: ConversationsStore, broker: KafkaBroker, topics: Topics | None = None) -> None:
        self.store = store
        self.broker = broker
        self.topics = topics or Topics()
        self.parking = Parking(store.db)

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
        """Does what an outbox entry says, then removes it. Safe to repeat."""
        for item in entry.get("inserts") or []:
            await self.store.insert_item(item)
        if entry.get("apply") == "outbound_message":
            message = await self.store.get_item(doc_id)
            if message is not None:
                await self.apply_outbound_message(message)
        for out in entry.get("events") or []:
            await publish(self.broker, out["topic"], out["key"], Event.model_validate(out["event"]))
        conversation_id = entry.get("conversation_id")
        if conversation_id and entry.get("conversation_updated"):
            await self.conversation_updated(conversation_id, domain.event_id(entry["id"], "conversation.updated"))
        await self.store.clear_outbox_entry(collection, doc_id, entry["id"])

    async def try_carry_out(self, collection: str, doc_id: str, entry: Document, wait_s: float) -> bool:
        """Carries out a request's own entry; on failure (Kafka down, slow) the relay finishes it later."""
        try:
            await asyncio.wait_for(self.carry_out(collection, doc_id, entry), wait_s)
        except Exception as exc:
            log.warning("outbox entry %s of %s/%s left to the relay: %r", entry.get("id"), collection, doc_id, exc)
            return False
        return True

    async def relay_once(self, grace: timedelta, pending_ttl_purge: bool = True) -> int:
        """Carries out every entry older than ``grace``; the number of entries done."""
        now = utcnow()
        done = 0
        for collection in ("timeline", "conversations"):
            source = f"conversations.{collection}"
            for replay in await self.parking.replays(source):
                parked = replay.get("entry") or {}
                await self.store.restore_outbox_entry(collection, str(parked["doc_id"]), parked["entry"])
                await self.parking.taken(replay)
            for doc in await self.store.outbox_leftovers(collection, now - grace):
                outbox: dict[str, Any] = doc.get("outbox") or {}
                if not outbox:
                    await self.store.drop_outbox_marker(collection, doc["_id"])
                for entry in sorted(outbox.values(), key=lambda e: str(e.get("created_at", ""))):
                    entry_id = f"{doc['_id']}/{entry.get('id')}"
                    try:
                        await self.carry_out(collection, doc["_id"], entry)
                    except Exception as exc:
                        if is_transient(exc):
                            raise  # Kafka or the database away: the round ends, every entry waits
                        if await self.parking.failed(source, entry_id, exc, {"doc_id": doc["_id"], "entry": entry}):
                            # Out of the document, so its marker no longer brings it back every round.
                            await self.store.clear_outbox_entry(collection, doc["_id"], str(entry.get("id")))
                        continue  # the entries behind it go on
                    done += 1
        if pending_ttl_purge:
            await self.store.purge_pending(now)
        return done

    async def relay_forever(self, interval: float, grace: timedelta) -> None:
        while True:
            try:
                done = await self.relay_once(grace)
                if done:
                    log.info("relayed %d outbox entries", done)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay failed; retrying")
            await asyncio.sleep(interval)
