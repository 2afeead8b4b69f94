"""Event payloads of ``whatsapp.events.v1``: everything Meta told us, normalised, and our send results.

Every webhook-derived payload carries the business account id (``waba_id``, Meta's ``entry.id``), the
``phone_number_id`` and display number where Meta gives them, the webhook ``field`` it came from, and
the original object (``raw`` or ``value``), so that nothing Meta sent is ever lost, even what these
models do not (yet) name.

Kinds:

- ``whatsapp.message.received``: a message, live (``field`` "messages", ``origin`` "live"), backfilled
  (``history``, must not count as new inbound) or sent by the business from the WhatsApp Business app
  (``smb_message_echoes``, ``origin`` "echo", ``direction`` "out"). ``type`` is Meta's, unknown ones kept.
- ``whatsapp.message.edited`` / ``whatsapp.message.revoked``: the customer edited or deleted a message.
- ``whatsapp.status.updated``: sent / delivered / read / failed / played ... of a message we sent.
- ``whatsapp.template.status_changed`` / ``.quality_changed`` / ``.category_changed``.
- ``whatsapp.phone_number.quality_changed``.
- ``whatsapp.webhook.error``: a value-level error (e.g. 130429) that belongs to no message.
- ``whatsapp.change.unhandled``: any change or item we do not model, or could not read, with a reason.
- ``whatsapp.send.accepted`` / ``whatsapp.send.failed``: the outcome of our own call to the Graph API.
- ``whatsapp.media.stored`` / ``whatsapp.media.unavailable``: an inbound media file fetched (or given up).
- ``whatsapp.templates.synced``: a business account's message templates, as Meta lists them.
"""

from __future__ import annotations

from inbox_core.events.whatsapp.account import (
    PhoneNumberQualityChanged,
    TemplateCategoryChanged,
    TemplateEvent,
    TemplateQualityChanged,
    TemplateStatusChanged,
)
from inbox_core.events.whatsapp.graph import (
    MediaStored,
    MediaUnavailable,
    SendAccepted,
    SendFailed,
    SendResult,
    TemplatesSynced,
)
from inbox_core.events.whatsapp.messages import (
    Direction,
    MessageEdited,
    MessageEvent,
    MessageReceived,
    MessageRevoked,
    Origin,
    StatusUpdated,
)
from inbox_core.events.whatsapp.parts import (
    KNOWN_MESSAGE_TYPES,
    MEDIA_TYPES,
    Button,
    Context,
    FlowReply,
    Interactive,
    Location,
    Media,
    MessageContent,
    MetaError,
    Order,
    OrderItem,
    Part,
    Reaction,
    Referral,
    System,
)
from inbox_core.events.whatsapp.timestamps import MetaTimestamp, parse_meta_timestamp
from inbox_core.events.whatsapp.webhook import ChangeUnhandled, WebhookError, WebhookEvent

TOPIC = "whatsapp.events.v1"

__all__ = [
    "KNOWN_MESSAGE_TYPES",
    "MEDIA_TYPES",
    "TOPIC",
    "Button",
    "ChangeUnhandled",
    "Context",
    "Direction",
    "FlowReply",
    "Interactive",
    "Location",
    "Media",
    "MediaStored",
    "MediaUnavailable",
    "MessageContent",
    "MessageEdited",
    "MessageEvent",
    "MessageReceived",
    "MessageRevoked",
    "MetaError",
    "MetaTimestamp",
    "Order",
    "OrderItem",
    "Origin",
    "Part",
    "PhoneNumberQualityChanged",
    "Reaction",
    "Referral",
    "SendAccepted",
    "SendFailed",
    "SendResult",
    "StatusUpdated",
    "System",
    "TemplateCategoryChanged",
    "TemplateEvent",
    "TemplateQualityChanged",
    "TemplateStatusChanged",
    "TemplatesSynced",
    "WebhookError",
    "WebhookEvent",
    "parse_meta_timestamp",
]
