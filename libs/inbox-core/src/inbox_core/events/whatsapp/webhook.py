"""What every payload made from a webhook carries (where it came from, for routing), and the webhook's own
events that belong to no message: a value-level error, and whatever we do not model."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import ConfigDict, Field

from inbox_core.events import EventData, event_type
from inbox_core.events.whatsapp.parts import MetaError


class WebhookEvent(EventData):
    """Common to every payload made from a webhook: where it came from, for routing."""

    model_config = ConfigDict(
        extra="allow", validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    waba_id: str = ""
    phone_number_id: str | None = None
    display_phone_number: str | None = None
    field: str = "messages"


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
