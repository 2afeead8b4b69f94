"""Events on ``inbox.conversations.v1`` (key: conversation id), published by the conversations service.

Each event carries what the gateway needs to stream it to browsers without calling back:
``conversation.created`` / ``conversation.updated`` the whole conversation summary (the left column's
row), message events the whole message, note and activity events the whole item. The summary's
``version`` grows with every change of the conversation, so of two copies the higher one is newer
(two processes of the service may publish updates of one conversation close together).

Event ids are deterministic where the change comes from another event (a redelivered input
republishes the same ids), so consumers deduplicate on ``Event.id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from inbox_core.events import EventData, event_type
from inbox_core.events.common import Actor as Actor  # re-exported: the one definition, under its topic's name too

Direction = Literal["in", "out"]


class CustomerRef(EventData):
    """The conversation's copy of the customer (the customers service owns the profile)."""

    id: str
    wa_id: str = ""
    user_id: str | None = None
    name: str = ""
    phone: str = ""  # E.164, "" when the customer has only a username


class LastMessage(EventData):
    id: str
    direction: Direction
    type: str
    preview: str
    at: datetime
    status: str | None = None  # pending | sent | delivered | read | played | failed; None for inbound


class Window(EventData):
    """Meta's 24-hour customer-service window, as it was when the event was made."""

    open: bool
    expires_at: datetime | None = None


class ConversationSummary(EventData):
    id: str
    workspace_id: str
    number_id: str
    customer: CustomerRef
    last_message: LastMessage | None = None
    unread_count: int = 0
    awaiting_reply: bool = False
    assignee: Actor | None = None
    window: Window
    updated_at: datetime
    created_at: datetime
    version: int = 0
    status: str = "open"  # open | resolved | snoozed (the proto's ConversationStatus, by name)
    snoozed_until: datetime | None = None  # while snoozed
    last_seq: int = 0  # the newest timeline item's seq


class MediaView(EventData):
    id: str = ""  # storage id (the gateway serves /api/media/{id}); "" until stored
    media_id: str | None = None  # Meta's id, for inbound files
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None
    size: int = 0
    sha256: str | None = None
    status: str = "stored"  # stored | pending | unavailable


class TemplateRef(EventData):
    name: str
    language: str
    params: dict[str, Any] = Field(default_factory=dict)


class ReactionRef(EventData):
    """Content of a reaction-type message: the message reacted to and the emoji ("" = removed)."""

    message_id: str
    emoji: str = ""


class MessageReaction(EventData):
    """A reaction attached to a message."""

    emoji: str
    by: Actor | None = None
    direction: Direction
    at: datetime


class MessageError(EventData):
    code: int | None = None
    title: str = ""
    detail: str = ""


class MessageView(EventData):
    id: str
    conversation_id: str
    wamid: str = ""
    direction: Direction
    origin: str = "live"  # live | history | echo | api
    type: str
    text: str | None = None
    media: MediaView | None = None
    template: TemplateRef | None = None
    location: dict[str, Any] | None = None
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    interactive: dict[str, Any] | None = None
    reaction: ReactionRef | None = None
    reply_to: str | None = None
    reactions: list[MessageReaction] = Field(default_factory=list)
    status: str | None = None
    status_at: datetime | None = None
    error: MessageError | None = None
    sent_by: Actor | None = None
    at: datetime
    edited: bool = False
    revoked: bool = False
    # The item's place in its conversation's timeline, in the order the inbox learned of it (none on items
    # stored before seqs existed, which come first).
    seq: int | None = None


class NoteView(EventData):
    id: str
    conversation_id: str
    text: str
    author: Actor | None = None
    at: datetime
    seq: int | None = None
    mentions: list[Actor] = Field(default_factory=list)  # the agents it mentions (each gets a `mention`)


class ActivityView(EventData):
    id: str
    conversation_id: str
    action: str  # assigned | unassigned | order_created | order_stage_changed | template_sent | ...
    actor: Actor | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    at: datetime
    seq: int | None = None


class ConversationEvent(EventData):
    conversation: ConversationSummary


@event_type("conversation.created")
class ConversationCreated(ConversationEvent):
    pass


@event_type("conversation.updated")
class ConversationUpdated(ConversationEvent):
    pass


@event_type("message.created")
class MessageCreated(EventData):
    conversation_id: str
    message: MessageView


@event_type("message.updated")
class MessageUpdated(EventData):
    """The message as it is now; ``changes`` says what moved (status, reactions, wamid, media, content)."""

    conversation_id: str
    message: MessageView
    changes: list[str] = Field(default_factory=list)


@event_type("note.created")
class NoteCreated(EventData):
    conversation_id: str
    note: NoteView


@event_type("activity.created")
class ActivityCreated(EventData):
    conversation_id: str
    activity: ActivityView


@event_type("conversation.assigned")
class ConversationAssigned(EventData):
    conversation_id: str
    assignee: Actor | None = None  # None: unassigned
    previous: Actor | None = None
    by: Actor | None = None


@event_type("conversation.read")
class ConversationRead(EventData):
    conversation_id: str
    by: Actor | None = None
    # The customer's message the read receipt was sent for, when one was.
    last_read_wamid: str | None = None


__all__ = [
    "ActivityCreated",
    "ActivityView",
    "Actor",
    "ConversationAssigned",
    "ConversationCreated",
    "ConversationEvent",
    "ConversationRead",
    "ConversationSummary",
    "ConversationUpdated",
    "CustomerRef",
    "LastMessage",
    "MediaView",
    "MessageCreated",
    "MessageError",
    "MessageReaction",
    "MessageUpdated",
    "MessageView",
    "NoteCreated",
    "NoteView",
    "ReactionRef",
    "TemplateRef",
    "Window",
]
