"""Commands on ``whatsapp.commands.v1``: what the inbox asks Meta to do, carried out by ingest's sender.

The envelope's key is ``{phone_number_id}:{wa_id}`` (or the BSUID where the customer has no wa_id), so
one customer's commands stay in order. ``command_id`` is the idempotency key of the outbound message:
ingest records the outcome under it, and a redelivered command is never sent to Meta twice when its
outcome is already known. Outcomes come back on ``whatsapp.events.v1`` as ``whatsapp.send.accepted`` /
``whatsapp.send.failed`` (models in events/whatsapp/graph.py) with the same ``command_id``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from inbox_core.events import EventData, event_type

SendKind = Literal["text", "image", "video", "audio", "document", "sticker", "template", "reaction", "location"]


class CommandBase(EventData):
    command_id: str
    phone_number_id: str
    wa_id: str = ""
    # Business-scoped user id, for customers that have only a username (no wa_id).
    user_id: str | None = None
    # Where the inbox keeps the message, so the outcome can be matched without a lookup.
    conversation_id: str | None = None
    message_id: str | None = None

    @property
    def recipient(self) -> str:
        return self.wa_id or self.user_id or ""


class OutboundMedia(EventData):
    # A file ingest stores (uploaded by an agent, or from the content library) ...
    storage_id: str | None = None
    # ... or a public link Meta fetches itself.
    link: str | None = None
    mime_type: str | None = None
    filename: str | None = None
    caption: str | None = None


class OutboundTemplate(EventData):
    name: str
    language: str
    # Meta's components array as sent (header/body/button parameters), already checked by conversations.
    components: list[dict[str, Any]] = Field(default_factory=list)


class OutboundReaction(EventData):
    message_wamid: str
    emoji: str  # "" removes the reaction


@event_type("whatsapp.command.send")
class SendCommand(CommandBase):
    kind: SendKind
    text: str | None = None
    preview_url: bool = False
    media: OutboundMedia | None = None
    template: OutboundTemplate | None = None
    reaction: OutboundReaction | None = None
    location: dict[str, Any] | None = None
    reply_to_wamid: str | None = None
    biz_opaque_callback_data: str | None = None


@event_type("whatsapp.command.mark_read")
class MarkReadCommand(CommandBase):
    message_wamid: str
    typing_indicator: bool = False


@event_type("whatsapp.command.sync_templates")
class SyncTemplatesCommand(EventData):
    """Fetch a business account's templates now (they are also synced periodically)."""

    waba_id: str
    phone_number_id: str | None = None
