"""Message-shaped webhook events: a message received (live, backfilled or echoed), edited or revoked, and the
statuses of the messages we sent."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from inbox_core.events import event_type
from inbox_core.events.whatsapp.parts import Context, MessageContent, MetaError
from inbox_core.events.whatsapp.timestamps import MetaTimestamp
from inbox_core.events.whatsapp.webhook import WebhookEvent

Origin = Literal["live", "history", "echo"]
Direction = Literal["in", "out"]


class MessageEvent(WebhookEvent):
    """Who and when, for every message-shaped event. ``wa_id`` may be "" (username users)."""

    origin: Origin = "live"
    direction: Direction = "in"
    wamid: str
    wa_id: str = ""
    user_id: str | None = None
    from_user_id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    to: str | None = None
    profile_name: str | None = None
    username: str | None = None
    group_id: str | None = None
    timestamp: MetaTimestamp
    history_status: str | None = None
    history: dict[str, Any] | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


# What it says is MessageContent, as an edit's new version is. The bases' order keeps the JSON's field order
# as it always was (pydantic lists the last base's fields first): who and when, then the content.
@event_type("whatsapp.message.received")
class MessageReceived(MessageContent, MessageEvent):
    """A message, of any type. ``origin``/``direction`` tell live inbound, history backfill and echoes."""


@event_type("whatsapp.message.edited")
class MessageEdited(MessageEvent):
    """``wamid`` is the edit's own id; ``original_message_id`` the message edited; ``message`` the new one."""

    original_message_id: str | None = None
    message: MessageContent | None = None
    context: Context | None = None
    errors: list[MetaError] = Field(default_factory=list)


@event_type("whatsapp.message.revoked")
class MessageRevoked(MessageEvent):
    """The customer deleted ``original_message_id`` for everyone."""

    original_message_id: str | None = None
    errors: list[MetaError] = Field(default_factory=list)


@event_type("whatsapp.status.updated")
class StatusUpdated(WebhookEvent):
    """A status of a message we sent. ``wa_id``/``user_id`` are the customer's (from recipient or contacts)."""

    wamid: str
    status: str
    timestamp: MetaTimestamp
    recipient_id: str = ""
    recipient_user_id: str | None = None
    recipient_type: str | None = None
    group_id: str | None = None
    wa_id: str = ""
    user_id: str | None = None
    conversation: dict[str, Any] | None = None
    pricing: dict[str, Any] | None = None
    errors: list[MetaError] = Field(default_factory=list)
    biz_opaque_callback_data: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)
