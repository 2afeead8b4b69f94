"""Webhook bodies in the exact shape of Meta's (tests/fixtures/meta-webhooks): inbound messages, statuses
sent/delivered/read/failed, template status updates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from inbox_sandbox.domain.pricing import Billing
from inbox_sandbox.domain.sends import Recipient

WEBHOOK_OBJECT = "whatsapp_business_account"



@dataclass(frozen=True)
class Business:
    phone_number_id: str
    display_phone_number: str
    waba_id: str


@dataclass
class Profile:
    """A simulated customer, as Meta describes them in ``contacts[]``."""

    wa_id: str  # "" for a username adopter whose number is not shared
    name: str
    user_id: str | None = None
    username: str | None = None
    country_code: str | None = None

    def contact(self, *, with_username: bool = True) -> dict[str, Any]:
        profile: dict[str, Any] = {"name": self.name}
        if self.username and with_username:
            profile["username"] = self.username
        if self.country_code and self.user_id:
            profile["country_code"] = self.country_code
        contact: dict[str, Any] = {"profile": profile, "wa_id": self.wa_id}
        if self.user_id:
            contact["user_id"] = self.user_id
        return contact


def _envelope(business: Business, value: dict[str, Any]) -> dict[str, Any]:
    return {"object": WEBHOOK_OBJECT,
            "entry": [{"id": business.waba_id, "changes": [{"value": value, "field": "messages"}]}]}


def _metadata(business: Business) -> dict[str, str]:
    return {"display_phone_number": business.display_phone_number, "phone_number_id": business.phone_number_id}


def inbound_webhook(business: Business, profile: Profile | None, message: dict[str, Any]) -> dict[str, Any]:
    """A messages webhook carrying one inbound message; ``profile`` None leaves out ``contacts`` (system)."""
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": _metadata(business)}
    if profile is not None:
        value["contacts"] = [profile.contact()]
    value["messages"] = [message]
    return _envelope(business, value)


StatusName = Literal["sent", "delivered", "read", "failed"]


@dataclass(frozen=True)
class StatusInfo:
    """One status of an outbound message, with what Meta attaches to it."""

    wamid: str
    status: StatusName
    timestamp: int
    recipient: Recipient
    billing: Billing | None = None
    conversation_id: str | None = None
    conversation_expires: int | None = None
    errors: tuple[dict[str, Any], ...] = ()
    biz_opaque_callback_data: str | None = None
    profile: Profile | None = None  # known customer, for the BSUID-era contacts block


def status_webhook(business: Business, info: StatusInfo) -> dict[str, Any]:
    """A status webhook (meta-docs-status-*.json, meta-docs-bsuid-status-*.json)."""
    status: dict[str, Any] = {
        "id": info.wamid,
        "status": info.status,
        "timestamp": str(info.timestamp),
        "recipient_id": info.recipient.wa_id,
    }
    if info.recipient.user_id is not None:
        status["recipient_user_id"] = info.recipient.user_id
    if info.status in {"sent", "delivered"} and info.billing is not None:
        if info.conversation_id is not None:
            conversation: dict[str, Any] = {"id": info.conversation_id}
            if info.status == "sent" and info.conversation_expires is not None:
                conversation["expiration_timestamp"] = str(info.conversation_expires)
            conversation["origin"] = {"type": info.billing.category}
            status["conversation"] = conversation
        status["pricing"] = info.billing.pricing()
    if info.biz_opaque_callback_data is not None:
        status["biz_opaque_callback_data"] = info.biz_opaque_callback_data
    if info.errors:
        status["errors"] = list(info.errors)
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": _metadata(business)}
    # Customers with a business-scoped user id come with a contacts block on sent/delivered/read (never on
    # failed); the username is left out of sent ones.
    if info.status != "failed" and info.profile is not None and info.profile.user_id:
        contact = info.profile.contact(with_username=info.status != "sent")
        if info.recipient.wa_id == "":
            contact["wa_id"] = ""
        value["contacts"] = [contact]
    value["statuses"] = [status]
    return _envelope(business, value)


def template_status_webhook(waba_id: str, template: dict[str, Any], event: str, reason: str, time: int,
                            rejection_info: dict[str, str] | None = None) -> dict[str, Any]:
    """A ``message_template_status_update`` webhook (meta-docs-message_template_status_update-*.json)."""
    value: dict[str, Any] = {
        "event": event,
        "message_template_id": int(template["id"]),
        "message_template_name": template["name"],
        "message_template_language": template["language"],
        "reason": reason,
        "message_template_category": template.get("category", "UTILITY"),
    }
    if rejection_info:
        value["rejection_info"] = rejection_info
    return {"entry": [{"id": waba_id, "time": time,
                       "changes": [{"value": value, "field": "message_template_status_update"}]}],
            "object": WEBHOOK_OBJECT}
