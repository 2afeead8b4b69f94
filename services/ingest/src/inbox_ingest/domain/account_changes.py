"""Account-level changes: template status, quality and category updates, phone number quality."""

from __future__ import annotations

from typing import Any

from inbox_core.events.whatsapp import (
    PhoneNumberQualityChanged,
    TemplateCategoryChanged,
    TemplateQualityChanged,
    TemplateStatusChanged,
)
from inbox_ingest.domain.envelope import NormalisedEvent, emit, hash_id, unhandled, waba_key
from inbox_ingest.domain.readers import str_or_none, ts_or_none
from inbox_ingest.domain.source import Where


def _template_common(where: Where, value: dict[str, Any]) -> dict[str, Any]:
    return {
        **where.common(),
        "entry_time": where.entry_time,
        "message_template_id": str_or_none(value.get("message_template_id")),
        "message_template_name": str_or_none(value.get("message_template_name")),
        "message_template_language": str_or_none(value.get("message_template_language")),
        "value": value,
    }


def template_status_event(where: Where, value: dict[str, Any]) -> NormalisedEvent:
    event = str_or_none(value.get("event"))
    if event is None:
        return unhandled(where, "template status update without event", value, ("template_status",))
    rejection = value.get("rejection_info")
    payload = TemplateStatusChanged(
        **_template_common(where, value),
        event=event,
        reason=str_or_none(value.get("reason")),
        message_template_category=str_or_none(value.get("message_template_category")),
        rejection_info=rejection if isinstance(rejection, dict) else None,
    )
    return emit(payload, hash_id("template_status", where, value), waba_key(where), where.entry_time)


def template_quality_event(where: Where, value: dict[str, Any]) -> NormalisedEvent:
    payload = TemplateQualityChanged(
        **_template_common(where, value),
        previous_quality_score=str_or_none(value.get("previous_quality_score")),
        new_quality_score=str_or_none(value.get("new_quality_score")),
    )
    return emit(payload, hash_id("template_quality", where, value), waba_key(where), where.entry_time)


def template_category_event(where: Where, value: dict[str, Any]) -> NormalisedEvent:
    payload = TemplateCategoryChanged(
        **_template_common(where, value),
        previous_category=str_or_none(value.get("previous_category")),
        new_category=str_or_none(value.get("new_category")),
        correct_category=str_or_none(value.get("correct_category")),
        category_update_timestamp=ts_or_none(value.get("category_update_timestamp")),
    )
    return emit(payload, hash_id("template_category", where, value), waba_key(where), where.entry_time)


def phone_quality_event(where: Where, value: dict[str, Any]) -> NormalisedEvent:
    payload = PhoneNumberQualityChanged(
        **where.common(),
        entry_time=where.entry_time,
        event=str_or_none(value.get("event")),
        current_limit=str_or_none(value.get("current_limit")),
        old_limit=str_or_none(value.get("old_limit")),
        value=value,
    )
    return emit(payload, hash_id("phone_quality", where, value), waba_key(where), where.entry_time)
