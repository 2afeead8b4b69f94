"""What every area of the API shares: the small value types, ids and money, and the error body."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

Role = Literal["admin", "agent"]
Direction = Literal["in", "out"]
MessageStatus = Literal["pending", "sent", "delivered", "read", "played", "failed"]
MediaType = Literal["image", "video", "audio", "document"]
LibraryType = Literal["text", "image", "video", "audio", "document"]
Stage = Literal["new", "confirmed", "shipped", "delivered", "cancelled", "returned"]
Filter = Literal["all", "unread", "mine", "no_reply", "mentions"]
Status = Literal["open", "resolved", "snoozed"]
StatusFilter = Literal["open", "resolved", "snoozed", "any"]

Id = Annotated[str, Meta(min_length=1, max_length=200)]
Decimal = Annotated[str, Meta(pattern=r"^\d{1,12}(\.\d{1,4})?$", description="A decimal number as a string")]
Currency = Annotated[str, Meta(pattern=r"^[A-Z]{3}$", description="ISO 4217")]


# --- errors ---------------------------------------------------------------------------------------------


class ErrorDetail(Struct):
    code: str
    message: str
    details: dict[str, Any]


class ErrorBody(Struct):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorDetail


# --- shared small types ----------------------------------------------------------------------------------


class ActorRef(Struct):
    id: str
    name: str


class Money(Struct):
    amount: str
    currency: str
