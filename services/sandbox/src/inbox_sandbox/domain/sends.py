"""``POST /{phone_number_id}/messages`` validated as Meta does, and its answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from inbox_sandbox.domain.graph_errors import error_title, invalid_parameter, whatsapp_error
from inbox_sandbox.domain.ids import digits, is_bsuid
from inbox_sandbox.domain.templating import check_template

SEND_TYPES = frozenset({"text", "image", "video", "audio", "document", "sticker", "template", "reaction",
                        "location", "contacts", "interactive"})
MEDIA_TYPES = frozenset({"image", "video", "audio", "document", "sticker"})
TEXT_LIMIT = 4096


@dataclass(frozen=True)
class Recipient:
    input: str  # what the send said in ``to``
    wa_id: str  # "" when sent to a business-scoped user id
    user_id: str | None


def recipient(to: str) -> Recipient:
    if is_bsuid(to):
        return Recipient(to, "", to)
    return Recipient(to, digits(to), None)


@dataclass(frozen=True)
class Send:
    """A validated ``POST /{phone_number_id}/messages`` that sends something."""

    recipient: Recipient
    type: str
    content: dict[str, Any]
    template: dict[str, Any] | None = None
    context_message_id: str | None = None
    biz_opaque_callback_data: str | None = None

    @property
    def media_id(self) -> str | None:
        if self.type in MEDIA_TYPES:
            value = self.content.get("id")
            return str(value) if value is not None else None
        return None


@dataclass(frozen=True)
class MarkRead:
    message_id: str
    typing_indicator: bool


def parse_messages_request(body: Any, templates: Sequence[dict[str, Any]]) -> Send | MarkRead:
    """Validates a ``POST /{phone_number_id}/messages`` body as Meta does; raises :class:`GraphError`."""
    if not isinstance(body, dict):
        raise invalid_parameter("The request body must be a JSON object.")
    if body.get("messaging_product") != "whatsapp":
        raise whatsapp_error(100, "The parameter messaging_product is required and must be whatsapp.",
                             message="(#100) The parameter messaging_product is required.")
    if body.get("status") is not None:
        if body.get("status") != "read":
            raise invalid_parameter("Param status must be read.")
        message_id = body.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise whatsapp_error(100, "The parameter message_id is required.",
                                 message="(#100) The parameter message_id is required.")
        typing = body.get("typing_indicator")
        if typing is not None and (not isinstance(typing, dict) or typing.get("type") != "text"):
            raise invalid_parameter("Param typing_indicator['type'] must be text.")
        return MarkRead(message_id, typing is not None)
    recipient_type = body.get("recipient_type", "individual")
    if recipient_type == "group":
        raise whatsapp_error(131009, "Group messages are not supported by the sandbox.")
    if recipient_type != "individual":
        raise invalid_parameter("Param recipient_type must be one of {individual, group}.")
    to = body.get("to")
    if not isinstance(to, str) or not to.strip():
        raise whatsapp_error(100, "The parameter to is required.", message="(#100) The parameter to is required.")
    kind = body.get("type", "text")
    if kind not in SEND_TYPES:
        raise invalid_parameter(f"Param type must be one of {{{', '.join(sorted(SEND_TYPES))}}}.")
    content = body.get(kind)
    if not isinstance(content, dict):
        raise whatsapp_error(131008, f"The parameter {kind} is required.",
                             message=f"(#131008) {error_title(131008)}")
    opaque = body.get("biz_opaque_callback_data")
    if opaque is not None and (not isinstance(opaque, str) or len(opaque) > 512):
        raise invalid_parameter("Param biz_opaque_callback_data must be a string of at most 512 characters.")
    context = body.get("context")
    context_id: str | None = None
    if context is not None:
        if not isinstance(context, dict) or not isinstance(context.get("message_id"), str):
            raise invalid_parameter("Param context['message_id'] must be a wamid.")
        context_id = context["message_id"]
    template: dict[str, Any] | None = None
    if kind == "text":
        text = content.get("body")
        if not isinstance(text, str) or not text:
            raise whatsapp_error(100, "The parameter text['body'] is required.",
                                 message="(#100) The parameter text['body'] is required.")
        if len(text) > TEXT_LIMIT:
            raise invalid_parameter(f"Param text['body'] must be at most {TEXT_LIMIT} characters long.")
    elif kind in MEDIA_TYPES:
        has_id, has_link = content.get("id") is not None, content.get("link") is not None
        if has_id == has_link:
            raise invalid_parameter(f"Param {kind} must have exactly one of id or link.")
        if kind in {"audio", "sticker"} and content.get("caption") is not None:
            raise invalid_parameter(f"Param {kind}['caption'] is not allowed.")
    elif kind == "reaction":
        if not isinstance(content.get("message_id"), str) or not content["message_id"]:
            raise whatsapp_error(100, "The parameter reaction['message_id'] is required.",
                                 message="(#100) The parameter reaction['message_id'] is required.")
        if not isinstance(content.get("emoji", ""), str):
            raise invalid_parameter("Param reaction['emoji'] must be a string.")
    elif kind == "template":
        template = check_template(content, templates)
        if template.get("category") == "AUTHENTICATION" and is_bsuid(to):
            raise whatsapp_error(131062)
    return Send(recipient(to), kind, content, template, context_id, opaque)



def send_response(send: Send, wamid: str) -> dict[str, Any]:
    contact: dict[str, Any] = {"input": send.recipient.input, "wa_id": send.recipient.wa_id}
    if send.recipient.user_id is not None:
        contact["user_id"] = send.recipient.user_id
    message: dict[str, Any] = {"id": wamid}
    if send.type == "template":
        message["message_status"] = "accepted"
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}
