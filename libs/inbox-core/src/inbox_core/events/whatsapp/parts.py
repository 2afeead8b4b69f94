"""The nested objects of Meta's messages (media, location, interactive replies, ...) and MessageContent,
what a message says: shared by received messages and the new version of an edited one."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Meta's message types at the time of writing; ``type`` is a plain string so new ones are kept too.
KNOWN_MESSAGE_TYPES: frozenset[str] = frozenset(
    {
        "text", "image", "video", "audio", "document", "sticker", "location", "contacts",
        "interactive", "button", "reaction", "order", "system", "unsupported", "unknown",
        "edit", "revoke", "request_welcome", "media_placeholder",
    }
)
MEDIA_TYPES: frozenset[str] = frozenset({"image", "video", "audio", "document", "sticker"})


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
