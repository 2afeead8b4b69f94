"""Publishing what a use case changed: events with ids derived from the input, so a redelivery
republishes the same ids (consumers deduplicate on them) with current content."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from inbox_conversations import documents, domain, views
from inbox_conversations.outbox import Publisher, next_arrival, outbox_event, utcnow
from inbox_conversations.repositories import Conversations
from inbox_core.events import Event
from inbox_core.events.conversations import (
    ActivityCreated,
    ConversationAssigned,
    ConversationCreated,
    ConversationUpdated,
    MessageUpdated,
)
from inbox_core.mongo import Document


@dataclass
class Applied:
    """A message changed (or confirmed) by a fact, to publish; ``conversations`` whose summary it touched."""

    message: Document
    changes: list[str]
    source: str  # what made the change: an event id or a pending id (for the event id published)
    conversations: set[str] = field(default_factory=set)


class Announcer:
    """Publishes conversation and message events from the documents a use case holds."""

    def __init__(self, publisher: Publisher, conversations: Conversations) -> None:
        self.publisher = publisher
        self.conversations = conversations

    async def conversation(self, doc: Document, event_id: str) -> None:
        """conversation.updated with the summary of ``doc`` (the document after the use case's write);
        the first time also conversation.created, then the conversation is marked announced."""
        conversation_id = doc["_id"]
        summary = views.summary(doc, utcnow())
        if not doc.get("announced", True):
            await self.publisher.conversation_event(doc["workspace_id"], conversation_id,
                                                    ConversationCreated(conversation=summary),
                                                    domain.event_id(conversation_id, "conversation.created"))
            await self.conversations.mark_announced(conversation_id)
        await self.publisher.conversation_event(doc["workspace_id"], conversation_id,
                                                ConversationUpdated(conversation=summary), event_id)

    async def conversation_by_id(self, conversation_id: str, event_id: str) -> None:
        doc = await self.conversations.find(conversation_id)
        if doc is not None:
            await self.conversation(doc, event_id)

    async def applied(self, workspace_id: str, applied: list[Applied], *, skip_message: str = "",
                      skip_conversation: str = "") -> None:
        """message.updated for each change (and conversation.updated where a summary changed)."""
        conversations: dict[str, str] = {}
        for item in applied:
            message = item.message
            conversation_id = message["conversation_id"]
            if message["_id"] != skip_message:
                await self.publisher.conversation_event(
                    workspace_id, conversation_id,
                    MessageUpdated(conversation_id=conversation_id, message=views.message(message),
                                   changes=item.changes),
                    domain.event_id(item.source, message["_id"], "message.updated"))
            for cid in item.conversations - {skip_conversation}:
                conversations.setdefault(cid, item.source)
        for cid, source in conversations.items():
            await self.conversation_by_id(cid, domain.event_id(source, cid, "conversation.updated"))


def assignment_entry(topic: str, conv: Document, entry_id: str, activity_id: str, new: Document | None,
                     previous: Document | None, by: Document | None, details: Document, now: datetime,
                     seq: int) -> Document:
    """The outbox entry of an assignment (by an agent, or by auto-assignment with ``by`` None): its
    ``assigned`` / ``unassigned`` activity, conversation.assigned and activity.created."""
    workspace_id, conversation_id = conv["workspace_id"], conv["_id"]
    activity = documents.activity(activity_id, workspace_id, conversation_id, "assigned" if new else "unassigned", by,
                                  {"assignee": new, "previous": previous, **details}, now, next_arrival(), seq)
    events = [
        Event.of(ConversationAssigned(conversation_id=conversation_id, assignee=views.actor(new),
                                      previous=views.actor(previous), by=views.actor(by)),
                 workspace_id=workspace_id, id=domain.event_id(entry_id, "conversation.assigned")),
        Event.of(ActivityCreated(conversation_id=conversation_id, activity=views.activity(activity)),
                 workspace_id=workspace_id, id=domain.event_id(activity_id, "activity.created")),
    ]
    return {"id": entry_id, "created_at": now, "conversation_id": conversation_id, "inserts": [activity],
            "events": [outbox_event(topic, conversation_id, e) for e in events], "conversation_updated": True}
