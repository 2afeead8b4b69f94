"""The customer simulator: what a request to it says, turned into the inbound message Meta would send."""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from inbox_sandbox.domain.ids import digits, new_bsuid
from inbox_sandbox.domain.sends import MEDIA_TYPES
from inbox_sandbox.domain.webhooks import Business, Profile

INBOUND_KINDS = ("text", "image", "video", "audio", "document", "sticker", "location", "contacts",
                 "button_reply", "list_reply", "nfm_reply", "button", "reaction", "order", "referral",
                 "system", "unsupported", "edit", "revoke")


class ContextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message_id: str | None = None  # the wamid replied to
    from_: str | None = Field(default=None, alias="from")  # who sent it (default: the business number)
    forwarded: bool = False
    frequently_forwarded: bool = False
    referred_product: dict[str, str] | None = None  # {"catalog_id", "product_retailer_id"}


class SimulateIn(BaseModel):
    """What the customer simulator sends: who, to which number, what. Unset fields get Meta-like defaults."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: str = "text"
    phone_number_id: str | None = None  # default: the first registered number
    # The customer
    wa_id: str = "16505551234"
    name: str = "Sheena Nelson"
    user_id: str | None = None  # business-scoped user id
    username: str | None = None
    country_code: str | None = None
    bsuid_only: bool = False  # a username adopter: "from" and wa_id are "" (a user_id is made up if missing)
    # The message
    wamid: str | None = None  # reuse one to simulate Meta's duplicate deliveries
    timestamp: int | None = None  # Meta's timestamp (unix seconds); default now. Also moves the 24 h window.
    context: ContextIn | None = None
    body: str | None = None  # text body, order text, button text, edit's new text, system body
    caption: str | None = None
    filename: str | None = None
    mime_type: str | None = None
    content_base64: str | None = None  # the media file; default a tiny generated one
    voice: bool = True  # audio: a voice note
    animated: bool = False  # sticker
    latitude: float = 37.44221496582
    longitude: float = -122.16165924072
    location_name: str | None = "Philz Coffee"
    address: str | None = "101 Forest Ave, Palo Alto, CA 94301"
    url: str | None = None
    contacts: list[dict[str, Any]] | None = None
    reply_id: str | None = None  # interactive reply id
    title: str | None = None
    description: str | None = None
    response_json: str | None = None  # flow (nfm_reply) answer
    payload: str | None = None  # button (template quick reply) payload
    message_id: str | None = None  # reaction target, edited or revoked message
    emoji: str | None = "\U0001f44d"  # reaction; None or "" removes the reaction
    catalog_id: str = "194836987003835"
    product_items: list[dict[str, Any]] | None = None
    referral: dict[str, Any] | None = None
    new_wa_id: str | None = None  # system: the customer's new number
    unsupported_type: str = "edit"
    # Merged over the generated type object (e.g. extra referral or interactive fields).
    fields: dict[str, Any] | None = None


@dataclass(frozen=True)
class MediaRef:
    """A stored file an inbound media message points at."""

    id: str
    mime_type: str
    sha256: str  # base64, as webhooks carry it
    url: str
    filename: str | None = None


@dataclass
class Built:
    message: dict[str, Any]
    profile: Profile | None  # None: the webhook carries no contacts (system messages)
    extra: dict[str, Any] = field(default_factory=dict)


class SimulationError(ValueError):
    """The simulator request cannot be turned into a message (answered 400)."""


def simulator_profile(spec: SimulateIn, rng: random.Random) -> Profile:
    if spec.bsuid_only:
        user_id = spec.user_id or new_bsuid(spec.country_code, rng)
        return Profile("", spec.name, user_id, spec.username, spec.country_code or "US")
    wa_id = digits(spec.wa_id)
    if not wa_id:
        raise SimulationError("wa_id must be a phone number (or set bsuid_only)")
    return Profile(wa_id, spec.name, spec.user_id, spec.username, spec.country_code)


def build_inbound(spec: SimulateIn, business: Business, profile: Profile, wamid: str, timestamp: int,
                  media: MediaRef | None) -> Built:
    """The ``messages[]`` item of an inbound webhook for a simulator request, in Meta's shape."""
    kind = spec.type
    if kind not in INBOUND_KINDS:
        raise SimulationError(f"unknown type {kind!r}; one of {', '.join(INBOUND_KINDS)}")
    message: dict[str, Any] = {}
    context = _context(spec, business)
    if context is not None:
        message["context"] = context
    message["from"] = profile.wa_id
    if profile.user_id:
        message["from_user_id"] = profile.user_id
    message["id"] = wamid
    message["timestamp"] = str(timestamp)
    meta_type, content = _content(spec, profile, media)
    if kind == "referral":
        message["referral"] = content.pop("referral")
    if kind == "unsupported":
        message["errors"] = [{"code": 131051, "title": "Message type unknown", "message": "Message type unknown",
                              "error_data": {"details": "Message type is currently not supported."}}]
    message["type"] = meta_type
    message[meta_type] = content[meta_type]
    return Built(message, None if kind == "system" else profile)


def _context(spec: SimulateIn, business: Business) -> dict[str, Any] | None:
    ctx = spec.context
    if ctx is None:
        return None
    context: dict[str, Any] = {}
    if ctx.forwarded:
        context["forwarded"] = True
    if ctx.frequently_forwarded:
        context["frequently_forwarded"] = True
    if ctx.message_id:
        context["from"] = ctx.from_ or business.display_phone_number
        context["id"] = ctx.message_id
    if ctx.referred_product:
        context["referred_product"] = dict(ctx.referred_product)
    return context or None


def _merged(base: dict[str, Any], spec: SimulateIn) -> dict[str, Any]:
    if spec.fields:
        base.update(copy.deepcopy(spec.fields))
    return base


def _content(spec: SimulateIn, profile: Profile, media: MediaRef | None) -> tuple[str, dict[str, Any]]:
    kind = spec.type
    if kind in MEDIA_TYPES:
        if media is None:
            raise SimulationError(f"{kind} needs a stored file")
        obj: dict[str, Any] = {}
        if spec.caption is not None and kind in {"image", "video", "document"}:
            obj["caption"] = spec.caption
        if kind == "document":
            obj["filename"] = media.filename or spec.filename or "document.pdf"
        obj.update({"mime_type": media.mime_type, "sha256": media.sha256, "id": media.id, "url": media.url})
        if kind == "audio":
            obj["voice"] = spec.voice
        if kind == "sticker":
            obj["animated"] = spec.animated
        return kind, {kind: _merged(obj, spec)}
    if kind == "text":
        return "text", {"text": _merged({"body": spec.body if spec.body is not None else "Hello!"}, spec)}
    if kind == "referral":
        referral = {
            "source_url": "https://fb.me/3cr4Wqqkv",
            "source_id": "120226305854810726",
            "source_type": "ad",
            "body": "Summer Succulents are here!",
            "headline": "Chat with us",
            "media_type": "image",
            "image_url": "https://scontent.xx.fbcdn.net/v/t45.1/sandbox-ad.jpg",
            "ctwa_clid": "ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0-eM-GABDLOPaOdRMv",
            "welcome_message": {"text": "Hi there! Let us know how we can help!"},
        }
        referral.update(copy.deepcopy(spec.referral or {}))
        text = _merged({"body": spec.body if spec.body is not None else "Can I get more info about this?"}, spec)
        return "text", {"text": text, "referral": referral}
    if kind == "location":
        location: dict[str, Any] = {}
        if spec.address is not None:
            location["address"] = spec.address
        location["latitude"] = spec.latitude
        location["longitude"] = spec.longitude
        if spec.location_name is not None:
            location["name"] = spec.location_name
        if spec.url is not None:
            location["url"] = spec.url
        return "location", {"location": _merged(location, spec)}
    if kind == "contacts":
        cards = copy.deepcopy(spec.contacts) if spec.contacts is not None else [{
            "name": {"first_name": "Barbara", "last_name": "Johnson", "formatted_name": "Barbara J. Johnson"},
            "org": {"company": "Social Tsunami"},
            "phones": [{"phone": "+1 (415) 555-0829", "wa_id": "14125550829", "type": "MOBILE"}],
        }]
        return "contacts", {"contacts": cards}
    if kind in {"button_reply", "list_reply"}:
        reply: dict[str, Any] = {"id": spec.reply_id or ("cancel-button" if kind == "button_reply"
                                                        else "priority_express"),
                                 "title": spec.title or ("Cancel" if kind == "button_reply"
                                                         else "Priority Mail Express")}
        if kind == "list_reply":
            reply["description"] = spec.description if spec.description is not None else "Next Day to 2 Days"
        return "interactive", {"interactive": {"type": kind, kind: _merged(reply, spec)}}
    if kind == "nfm_reply":
        flow = {"response_json": spec.response_json or '{"flow_token": "sandbox-flow", "size": "M"}',
                "body": spec.body or "Sent", "name": "flow"}
        return "interactive", {"interactive": {"type": "nfm_reply", "nfm_reply": _merged(flow, spec)}}
    if kind == "button":
        label = spec.body or spec.payload or "Unsubscribe"
        return "button", {"button": _merged({"payload": spec.payload or label, "text": label}, spec)}
    if kind == "reaction":
        if not spec.message_id:
            raise SimulationError("reaction needs message_id (the wamid reacted to)")
        reaction: dict[str, Any] = {"message_id": spec.message_id}
        if spec.emoji:
            reaction["emoji"] = spec.emoji
        return "reaction", {"reaction": _merged(reaction, spec)}
    if kind == "order":
        items = copy.deepcopy(spec.product_items) if spec.product_items is not None else [
            {"product_retailer_id": "di9ozbzfi4", "quantity": 2, "item_price": 30, "currency": "USD"},
            {"product_retailer_id": "nqryix03ez", "quantity": 1, "item_price": 25, "currency": "USD"},
        ]
        order = {"catalog_id": spec.catalog_id, "text": spec.body if spec.body is not None else "Love these!",
                 "product_items": items}
        return "order", {"order": _merged(order, spec)}
    if kind == "system":
        new = digits(spec.new_wa_id or "") or "12195555358"
        old = profile.wa_id
        system = {"body": spec.body or f"User {profile.name} changed from {old} to {new}", "wa_id": new,
                  "type": "user_changed_number"}
        return "system", {"system": _merged(system, spec)}
    if kind == "unsupported":
        return "unsupported", {"unsupported": _merged({"type": spec.unsupported_type}, spec)}
    if kind == "edit":
        if not spec.message_id:
            raise SimulationError("edit needs message_id (the wamid of the edited message)")
        edited = {"type": "text", "text": {"body": spec.body if spec.body is not None else "Edited text"}}
        return "edit", {"edit": _merged({"original_message_id": spec.message_id, "message": edited}, spec)}
    # revoke
    if not spec.message_id:
        raise SimulationError("revoke needs message_id (the wamid of the deleted message)")
    return "revoke", {"revoke": _merged({"original_message_id": spec.message_id}, spec)}
