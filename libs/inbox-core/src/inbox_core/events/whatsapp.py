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

import math
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from inbox_core.events import EventData, event_type

TOPIC = "whatsapp.events.v1"

# Meta's message types at the time of writing; ``type`` is a plain string so new ones are kept too.
KNOWN_MESSAGE_TYPES: frozenset[str] = frozenset(
    {
        "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
        "interactive", "button", "reaction", "order", "system", "unsupported", "unknown",
        "edit", "revoke", "request_welcome", "media_placeholder",
    }
)
MEDIA_TYPES: frozenset[str] = frozenset({"image", "video", "audio", "document", "sticker"})

Origin = Literal["live", "history", "echo"]
Direction = Literal["in", "out"]


# --- timestamps -----------------------------------------------------------------------------------


def parse_meta_timestamp(value: Any) -> datetime:
    """Meta's ``timestamp``: unix seconds as a string (Meta's examples) or a number (some fixtures).

    Also accepts an aware or naive ``datetime`` (naive is taken as UTC) and ISO 8601 strings.
    Raises ``ValueError`` for anything else, including booleans, NaN and out-of-range values.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    seconds: float | None = None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError as exc:
            raise ValueError("timestamp out of range") from exc
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"not a timestamp: {value!r}") from exc
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    else:
        raise ValueError(f"not a timestamp: {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError("not a finite timestamp")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"timestamp out of range: {value!r}") from exc


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


MetaTimestamp = Annotated[datetime, BeforeValidator(parse_meta_timestamp), AfterValidator(_as_utc)]


# --- parts ----------------------------------------------------------------------------------------


class Part(BaseModel):
    """Base of the nested objects: unknown fields are kept, and ``from`` is written as ``from``."""

    model_config = ConfigDict(
        extra="allow", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )


class MetaError(Part):
    """One of Meta's ``errors[]`` (or a Graph API ``error``): ``details`` is ``error_data.details``."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    details: str | None = None
    href: str | None = None
    error_data: dict[str, Any] | None = None


class Media(Part):
    media_id: str | None = None
    mime_type: str | None = None
    sha256: str | None = None
    filename: str | None = None
    caption: str | None = None
    voice: bool | None = None
    animated: bool | None = None
    url: str | None = None


class Location(Part):
    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None
    url: str | None = None


class FlowReply(Part):
    """``interactive.nfm_reply``: a WhatsApp Flow's answer; ``response`` is ``response_json`` parsed."""

    name: str | None = None
    body: str | None = None
    response_json: str | None = None
    response: dict[str, Any] | None = None


class Interactive(Part):
    """``type`` is button_reply, list_reply, nfm_reply or whatever Meta adds (kept in ``raw``)."""

    type: str | None = None
    id: str | None = None
    title: str | None = None
    description: str | None = None
    flow: FlowReply | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


class Button(Part):
    """A template quick-reply tap."""

    payload: str | None = None
    text: str | None = None


class Reaction(Part):
    """``emoji`` is "" and ``removed`` true when the customer took the reaction back."""

    message_id: str | None = None
    emoji: str = ""
    removed: bool = False


class OrderItem(Part):
    product_retailer_id: str | None = None
    quantity: float | None = None
    item_price: float | None = None
    currency: str | None = None


class Order(Part):
    catalog_id: str | None = None
    text: str | None = None
    product_items: list[OrderItem] = Field(default_factory=list)


class System(Part):
    """E.g. ``user_changed_number``: ``wa_id`` is the new number."""

    type: str | None = None
    body: str | None = None
    wa_id: str | None = None
    customer: str | None = None
    user_id: str | None = None


class Referral(Part):
    """Click-to-WhatsApp ad (or post) the customer came from."""

    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None
    body: str | None = None
    headline: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None
    welcome_message: dict[str, Any] | None = None


class Context(Part):
    """What the message refers to: ``message_id`` is the quoted wamid (reply-to), ``from`` its sender."""

    message_id: str | None = None
    from_: str | None = Field(default=None, alias="from")
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: dict[str, Any] | None = None


class MessageContent(Part):
    """What a message says; shared by received messages and the new version of an edited one."""

    type: str = "unknown"
    text: str | None = None
    caption: str | None = None
    media: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    referral: Referral | None = None
    unsupported: dict[str, Any] | None = None
    context: Context | None = None
    errors: list[MetaError] = Field(default_factory=list)


# --- webhook events -------------------------------------------------------------------------------


class WebhookEvent(EventData):
    """Common to every payload made from a webhook: where it came from, for routing."""

    model_config = ConfigDict(
        extra="allow", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    waba_id: str = ""
    phone_number_id: str | None = None
    display_phone_number: str | None = None
    field: str = "messages"


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


@event_type("whatsapp.message.received")
class MessageReceived(MessageEvent):
    """A message, of any type. ``origin``/``direction`` tell live inbound, history backfill and echoes."""

    type: str = "unknown"
    text: str | None = None
    caption: str | None = None
    media: Media | None = None
    location: Location | None = None
    contacts: list[dict[str, Any]] = Field(default_factory=list)
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    referral: Referral | None = None
    unsupported: dict[str, Any] | None = None
    context: Context | None = None
    errors: list[MetaError] = Field(default_factory=list)


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


class TemplateEvent(WebhookEvent):
    entry_time: datetime | None = None
    message_template_id: str | None = None
    message_template_name: str | None = None
    message_template_language: str | None = None
    value: dict[str, Any] = Field(default_factory=dict)


@event_type("whatsapp.template.status_changed")
class TemplateStatusChanged(TemplateEvent):
    """``event`` is APPROVED, REJECTED, PAUSED, DISABLED, ... as Meta says it."""

    event: str
    reason: str | None = None
    message_template_category: str | None = None
    rejection_info: dict[str, Any] | None = None


@event_type("whatsapp.template.quality_changed")
class TemplateQualityChanged(TemplateEvent):
    previous_quality_score: str | None = None
    new_quality_score: str | None = None


@event_type("whatsapp.template.category_changed")
class TemplateCategoryChanged(TemplateEvent):
    previous_category: str | None = None
    new_category: str | None = None
    correct_category: str | None = None
    category_update_timestamp: datetime | None = None


@event_type("whatsapp.phone_number.quality_changed")
class PhoneNumberQualityChanged(WebhookEvent):
    """Meta names the number only by its display number here (no phone_number_id)."""

    entry_time: datetime | None = None
    event: str | None = None
    current_limit: str | None = None
    old_limit: str | None = None
    value: dict[str, Any] = Field(default_factory=dict)


@event_type("whatsapp.webhook.error")
class WebhookError(WebhookEvent):
    """A value-level error (e.g. 130429 rate limit hit) that belongs to no single message."""

    error: MetaError
    entry_time: datetime | None = None
    raw: dict[str, Any] = Field(default_factory=dict)


@event_type("whatsapp.change.unhandled")
class ChangeUnhandled(WebhookEvent):
    """Anything we do not model or could not read: kept whole (``value``), with the ``reason``."""

    reason: str
    entry_time: datetime | None = None
    wa_id: str = ""
    user_id: str | None = None
    value: Any = None


# --- send results -----------------------------------------------------------------------------------


class SendResult(EventData):
    """The outcome of one ``whatsapp.commands.v1`` command (``command_id`` is its idempotency key)."""

    command_id: str
    phone_number_id: str
    waba_id: str | None = None
    wa_id: str = ""
    user_id: str | None = None
    attempts: int = 1
    # Copied from the command, so conversations can match the outcome without a lookup.
    conversation_id: str | None = None
    message_id: str | None = None


@event_type("whatsapp.send.accepted")
class SendAccepted(SendResult):
    """Meta accepted the message (not yet delivered); later statuses carry the same ``wamid``."""

    wamid: str
    message_status: str | None = None
    group_id: str | None = None


@event_type("whatsapp.send.failed")
class SendFailed(SendResult):
    """Meta refused (e.g. 131047 outside the 24-hour window), or we gave up retrying."""

    error: MetaError
    retryable: bool = False


# --- media and templates (ingest's own fetches from the Graph API) ----------------------------------


@event_type("whatsapp.media.stored")
class MediaStored(EventData):
    """An inbound media file is in ingest's media store under ``storage_id`` ("wa-media-" + media_id)."""

    media_id: str
    storage_id: str
    mime_type: str | None = None
    size: int
    sha256: str
    wamid: str | None = None
    phone_number_id: str | None = None


@event_type("whatsapp.media.unavailable")
class MediaUnavailable(EventData):
    """Ingest gave up fetching an inbound media file (retries exhausted, Meta's 7 days passed, ...)."""

    media_id: str
    wamid: str | None = None
    reason: str
    phone_number_id: str | None = None
    attempts: int = 0


@event_type("whatsapp.templates.synced")
class TemplatesSynced(EventData):
    """One part of a business account's message templates as Meta lists them (``GET /{waba_id}/message_templates``).

    A sync is published in bounded parts (at most 250 templates and about 256 KiB each, so an account with
    thousands stays far under Kafka's 1 MiB message limit), all keyed ``waba:{waba_id}``, in order: ``part`` 0 to
    ``parts - 1``, sharing ``sync_id`` and ``synced_at``. A consumer applies each part as it comes and, once
    the last has come, forgets the templates that sync did not list. An event without these fields is a
    whole list (one part).
    """

    waba_id: str
    templates: list[dict[str, Any]] = Field(default_factory=list)
    sync_id: str | None = None
    part: int = Field(default=0, ge=0)
    parts: int = Field(default=1, ge=1)
    # When the sync began (the same in every part): a part of an older sync than the one last applied is ignored.
    synced_at: datetime | None = None


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
