"""Webhook events about the business account rather than a message: its templates' status, quality and
category, and a number's quality."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from inbox_core.events import event_type
from inbox_core.events.whatsapp.webhook import WebhookEvent


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
