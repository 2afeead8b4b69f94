"""What the simulated Meta does, as pure functions: no I/O, the clock and randomness passed in.

- Identifiers shaped like Meta's: wamids (``wamid.`` + base64 of the binary key Meta uses), numeric
  media and template ids, 32-hex conversation ids, business-scoped user ids.
- The 24-hour customer service window, and what a send costs (pricing and conversation objects).
- Webhook bodies in the exact shape of Meta's (tests/fixtures/meta-webhooks): inbound messages of every
  type, statuses sent/delivered/read/failed, template status updates; serialised the way Meta
  serialises them (compact, ASCII-only with lowercase ``\\uXXXX`` escapes, ``/`` escaped) and signed
  with ``X-Hub-Signature-256``.
- Graph API request validation and error bodies for ``POST /{phone_number_id}/messages``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import re
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WEBHOOK_OBJECT = "whatsapp_business_account"
WINDOW_S = 24 * 3600
ERROR_HREF = "/documentation/business-messaging/whatsapp/support/error-codes"

# ---------------------------------------------------------------------------------------------- ids


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


_PHONE_CHARS = re.compile(r"^[+0-9 ()\-.]+$")


def is_bsuid(to: str) -> bool:
    """A send's ``to`` is a business-scoped user id (``US.1349...``, ``user.9373...``), not a phone number."""
    return not _PHONE_CHARS.match(to) or not digits(to)


def new_wamid(customer: str, *, inbound: bool, rng: random.Random) -> str:
    """A wamid in Meta's layout: the customer's number and a random key, tagged inbound (0x12) or outbound
    (0x11); inbound keys are 20 hex digits starting ``3A``, outbound ones 18 (as in Meta's examples)."""
    number = (customer or "0").encode()
    key = ("3A" + "".join(rng.choices("0123456789ABCDEF", k=18)) if inbound
           else "".join(rng.choices("0123456789ABCDEF", k=18))).encode()
    raw = (b"\x1c\x18" + bytes([len(number)]) + number + b"\x15\x02\x00" + (b"\x12" if inbound else b"\x11")
           + b"\x18" + bytes([len(key)]) + key + b"\x00")
    return "wamid." + base64.b64encode(raw).decode()


def new_numeric_id(rng: random.Random, length: int = 16) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=length - 1))


def new_conversation_id(rng: random.Random) -> str:
    return "".join(rng.choices("0123456789abcdef", k=32))


def new_fbtrace_id(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "_-", k=27))


def new_bsuid(country_code: str | None, rng: random.Random) -> str:
    return f"{(country_code or 'US').upper()}.{new_numeric_id(rng, 20)}"


# ------------------------------------------------------------------------------ window and pricing


def window_open(last_inbound: int | None, now: float) -> bool:
    """Free-form messages may go out only within 24 h of the customer's last inbound message."""
    return last_inbound is not None and now - last_inbound < WINDOW_S


@dataclass(frozen=True)
class Billing:
    category: str  # service, utility, marketing, authentication
    billable: bool
    pricing_type: str  # regular, free_customer_service

    def pricing(self) -> dict[str, Any]:
        return {"billable": self.billable, "pricing_model": "PMP", "type": self.pricing_type,
                "category": self.category}


def billing_for(template_category: str | None, in_window: bool) -> Billing:
    """Per-message pricing: free-form replies and utility templates inside the window are free."""
    if template_category is None:
        return Billing("service", False, "free_customer_service")
    category = template_category.lower()
    if category == "utility" and in_window:
        return Billing("utility", False, "free_customer_service")
    return Billing(category, True, "regular")


# ------------------------------------------------------------------------------------- signature


def meta_json(payload: Any) -> bytes:
    """Serialises a webhook body as Meta does: compact, ASCII-only, lowercase ``\\u`` escapes, ``\\/``."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=True)
    # "/" occurs only inside JSON strings, where "\/" is a valid escape of it.
    return text.replace("/", "\\/").encode("ascii")


def signature(secret: str | bytes, body: bytes) -> str:
    """``X-Hub-Signature-256`` of a body: HMAC-SHA256 of the raw bytes with the app secret."""
    key = secret.encode() if isinstance(secret, str) else secret
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


def url_signature(secret: str, media_id: str, expires: int) -> str:
    digest = hmac.new(secret.encode(), f"{media_id}:{expires}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode().rstrip("=")


def url_signature_valid(secret: str, media_id: str, expires: int, given: str, now: float) -> bool:
    return now < expires and hmac.compare_digest(url_signature(secret, media_id, expires), given)


def sha256_b64(data: bytes) -> str:
    """Webhooks carry a media file's SHA-256 in base64 (the media URL endpoint gives it in hex)."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# ------------------------------------------------------------------------------------ Graph errors

_ERRORS: dict[int, tuple[str, str]] = {
    1: ("An unknown error occurred", "Please retry your request later."),
    2: ("Service temporarily unavailable", "Service temporarily unavailable. Please retry your request later."),
    4: ("Application request limit reached", "The app has reached its API call rate limit."),
    100: ("Invalid parameter", "Invalid parameter."),
    130429: ("Rate limit hit", "Cloud API message throughput has been reached."),
    131000: ("Something went wrong", "Message failed to send due to an unknown error."),
    131005: ("Access denied", "Permission is either not granted or has been removed."),
    131008: ("Required parameter is missing", "A required parameter is missing."),
    131009: ("Parameter value is not valid", "One or more parameter values are invalid."),
    131016: ("Service unavailable", "A service is temporarily unavailable. Please retry your request later."),
    131021: ("Recipient cannot be sender", "Sender and recipient phone number is the same."),
    131026: ("Message undeliverable",
             "Unable to deliver message. Reasons can include: the recipient phone number is not a WhatsApp "
             "phone number; the recipient has not accepted the new Terms of Service and Privacy Policy; "
             "the recipient is using an old WhatsApp version."),
    131031: ("Account has been locked", "The business account has been restricted or disabled."),
    131042: ("Business eligibility payment issue", "There was an error related to your payment method."),
    131047: ("Re-engagement message",
             "Message failed to send because more than 24 hours have passed since the customer last replied "
             "to this number."),
    131048: ("Spam rate limit hit", "Message failed to send because there are restrictions on how many "
             "messages can be sent from this phone number."),
    131049: ("This message was not delivered to maintain healthy ecosystem engagement.",
             "In order to maintain a healthy ecosystem engagement, the message failed to be delivered."),
    131050: ("Unable to deliver the message", "The user has stopped marketing messages from this business."),
    131051: ("Unsupported message type", "Message type is currently not supported."),
    131052: ("Media download error", "Unable to download the media sent by the user."),
    131053: ("Media upload error", "Unable to upload the media used in the message."),
    131056: ("(Business Account, Consumer Account) pair rate limit hit",
             "Too many messages sent from the sender phone number to the same recipient phone number in a "
             "short period of time."),
    131057: ("Account in maintenance mode", "Business account is in maintenance mode."),
    131062: ("Business-scoped user ID not supported for this message",
             "You can only send authentication messages to recipients' phone numbers, not their "
             "business-scoped user IDs."),
    132000: ("Number of parameters does not match the expected number of params",
             "The number of parameters does not match the template."),
    132001: ("Template name does not exist in the translation", "Template does not exist."),
    132012: ("Parameter format does not match format in the created template",
             "Parameter format does not match the template."),
    132015: ("Template is paused", "Template is paused due to low quality."),
    132016: ("Template is disabled", "Template has been paused too many times due to low quality."),
    135000: ("Generic user error", "Message failed to send because of an unknown error with your request "
             "parameters."),
}


def error_title(code: int) -> str:
    return _ERRORS.get(code, ("Unknown error", ""))[0]


def error_details(code: int) -> str:
    return _ERRORS.get(code, ("", "An error occurred."))[1]


class GraphError(Exception):
    """A Graph API error answer: HTTP status plus Meta's ``{"error": {...}}`` body."""

    def __init__(self, http_status: int, code: int, message: str, *, details: str | None = None,
                 error_type: str = "OAuthException", subcode: int | None = None,
                 whatsapp: bool = True) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.details = details
        self.error_type = error_type
        self.subcode = subcode
        self.whatsapp = whatsapp  # WhatsApp errors carry error_data; generic Graph ones do not

    def body(self, fbtrace_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message, "type": self.error_type, "code": self.code}
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.whatsapp:
            error["error_data"] = {"messaging_product": "whatsapp",
                                   "details": self.details if self.details is not None else self.message}
        error["fbtrace_id"] = fbtrace_id
        return {"error": error}


def whatsapp_error(code: int, details: str | None = None, http_status: int = 400,
                   message: str | None = None) -> GraphError:
    return GraphError(http_status, code, message or f"(#{code}) {error_title(code)}",
                      details=details if details is not None else error_details(code))


def invalid_parameter(details: str) -> GraphError:
    return whatsapp_error(100, details)


def oauth_error(missing: bool) -> GraphError:
    # Meta's answer to a missing or unusable token: OAuthException 190, no error_data.
    message = ("An active access token must be used to query information about the current user." if missing
               else "Invalid OAuth access token - Cannot parse access token")
    return GraphError(401, 190, message, whatsapp=False)


def unknown_object(node: str, method: str) -> GraphError:
    return GraphError(
        400, 100,
        f"Unsupported {method.lower()} request. Object with ID '{node}' does not exist, cannot be loaded due "
        "to missing permissions, or does not support this operation. Please read the Graph API documentation "
        "at https://developers.facebook.com/docs/graph-api",
        error_type="GraphMethodException", subcode=33, whatsapp=False)


def status_error(code: int, details: str | None = None) -> dict[str, Any]:
    """An entry of a failed status's ``errors`` (meta-docs-status-failed-131049.json)."""
    title = error_title(code)
    return {"code": code, "title": title, "message": title,
            "error_data": {"details": details if details is not None else error_details(code)},
            "href": ERROR_HREF}


# ----------------------------------------------------------------------------------------- sends

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


_POSITIONAL = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_NAMED = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


def placeholders(text: str, parameter_format: str) -> list[str]:
    """The distinct parameters a template text expects, in order of first appearance."""
    pattern = _NAMED if parameter_format == "NAMED" else _POSITIONAL
    seen: list[str] = []
    for name in pattern.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def find_template(templates: Sequence[dict[str, Any]], name: str, language: str) -> dict[str, Any] | None:
    for template in templates:
        if template.get("name") == name and template.get("language") == language:
            return template
    return None


def check_template(content: dict[str, Any], templates: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The catalogue entry a template send names, after checking its parameters against it."""
    name = content.get("name")
    language = content.get("language")
    code = language.get("code") if isinstance(language, dict) else None
    if not isinstance(name, str) or not name:
        raise whatsapp_error(100, "The parameter template['name'] is required.",
                             message="(#100) The parameter template['name'] is required.")
    if not isinstance(code, str) or not code:
        raise whatsapp_error(100, "The parameter template['language']['code'] is required.",
                             message="(#100) The parameter template['language']['code'] is required.")
    template = find_template(templates, name, code)
    if template is None or template.get("status") in {"PENDING", "REJECTED", "IN_APPEAL", "DELETED"}:
        raise whatsapp_error(132001, f"template name ({name}) does not exist in {code}")
    if template.get("status") == "PAUSED":
        raise whatsapp_error(132015, f"Template {name} is paused.")
    if template.get("status") == "DISABLED":
        raise whatsapp_error(132016, f"Template {name} is disabled.")
    sent = content.get("components") or []
    if not isinstance(sent, list) or not all(isinstance(c, dict) for c in sent):
        raise invalid_parameter("Param template['components'] must be a list of objects.")
    _check_template_components(template, sent)
    return template


def _check_template_components(template: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    parameter_format = template.get("parameter_format", "POSITIONAL")

    def params_of(kind: str, index: int | None = None) -> list[Any]:
        for component in sent:
            if str(component.get("type", "")).lower() != kind:
                continue
            if index is not None and str(component.get("index")) != str(index):
                continue
            params = component.get("parameters") or []
            return params if isinstance(params, list) else []
        return []

    for component in template.get("components", []):
        kind = str(component.get("type", "")).lower()
        if kind == "header" and component.get("format", "TEXT") != "TEXT":
            expected_format = str(component["format"])
            params = params_of("header")
            got = str(params[0].get("type", "UNKNOWN")).upper() if params and isinstance(params[0], dict) else "UNKNOWN"
            if got != expected_format:
                raise whatsapp_error(132012, f"header: Format mismatch, expected {expected_format}, received {got}")
            media = params[0].get(expected_format.lower())
            if not isinstance(media, dict) or (media.get("id") is None and media.get("link") is None):
                raise whatsapp_error(132012, f"header: {expected_format.lower()} must have an id or a link")
        elif kind in {"header", "body"}:
            _check_text_params(kind, placeholders(component.get("text", ""), parameter_format), params_of(kind),
                               parameter_format)
        elif kind == "buttons":
            for index, button in enumerate(component.get("buttons", [])):
                if button.get("type") == "URL":
                    expected = placeholders(button.get("url", ""), "POSITIONAL")
                    _check_text_params(f"button at index {index}", expected, params_of("button", index),
                                       "POSITIONAL")


def _check_text_params(where: str, expected: list[str], params: list[Any], parameter_format: str) -> None:
    if len(params) != len(expected):
        raise whatsapp_error(
            132000, f"{where}: number of localizable_params ({len(params)}) does not match the expected number "
            f"of params ({len(expected)})")
    for param in params:
        if not isinstance(param, dict):
            raise invalid_parameter(f"{where}: every parameter must be an object")
    if parameter_format == "NAMED":
        names = sorted(str(p.get("parameter_name")) for p in params)
        if names != sorted(expected):
            raise whatsapp_error(
                132000, f"{where}: parameter names ({', '.join(names)}) do not match the expected names "
                f"({', '.join(sorted(expected))})")


def render_template(template: dict[str, Any], sent: list[dict[str, Any]]) -> str:
    """What the customer reads: the template's header and body with the send's parameters filled in."""
    parameter_format = template.get("parameter_format", "POSITIONAL")
    lines: list[str] = []
    for component in template.get("components", []):
        kind = str(component.get("type", "")).lower()
        if kind not in {"header", "body", "footer"} or "text" not in component:
            continue
        text = str(component["text"])
        params = next((c.get("parameters") or [] for c in sent if str(c.get("type", "")).lower() == kind), [])
        values: dict[str, str] = {}
        for position, param in enumerate(params, start=1):
            if isinstance(param, dict):
                key = str(param.get("parameter_name")) if parameter_format == "NAMED" else str(position)
                values[key] = _param_text(param)
        pattern = _NAMED if parameter_format == "NAMED" else _POSITIONAL

        def fill(match: re.Match[str], values: dict[str, str] = values) -> str:
            return values.get(match.group(1), match.group(0))

        lines.append(pattern.sub(fill, text))
    return "\n".join(lines)


def _param_text(param: dict[str, Any]) -> str:
    kind = param.get("type")
    if kind == "currency" and isinstance(param.get("currency"), dict):
        return str(param["currency"].get("fallback_value", ""))
    if kind == "date_time" and isinstance(param.get("date_time"), dict):
        return str(param["date_time"].get("fallback_value", ""))
    return str(param.get("text", param.get(str(kind), "")))


def send_response(send: Send, wamid: str) -> dict[str, Any]:
    contact: dict[str, Any] = {"input": send.recipient.input, "wa_id": send.recipient.wa_id}
    if send.recipient.user_id is not None:
        contact["user_id"] = send.recipient.user_id
    message: dict[str, Any] = {"id": wamid}
    if send.type == "template":
        message["message_status"] = "accepted"
    return {"messaging_product": "whatsapp", "contacts": [contact], "messages": [message]}


# -------------------------------------------------------------------------------------- webhooks


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


# ------------------------------------------------------------------------------ customer simulator

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


# ----------------------------------------------------------------------------------------- paging


def encode_cursor(template_id: str) -> str:
    return base64.urlsafe_b64encode(template_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def page_templates(templates: Sequence[dict[str, Any]], limit: int, after: str | None, before: str | None,
                   ) -> tuple[list[dict[str, Any]], dict[str, Any], bool, bool]:
    """A page of templates, Meta's ``paging.cursors``, and whether there is a next and a previous page."""
    ids = [str(t["id"]) for t in templates]
    start, end = 0, len(templates)
    if after is not None:
        anchor = decode_cursor(after)
        if anchor not in ids:
            raise invalid_parameter("Param after is not a valid cursor.")
        start = ids.index(anchor) + 1
        end = min(len(templates), start + limit)
    elif before is not None:
        anchor = decode_cursor(before)
        if anchor not in ids:
            raise invalid_parameter("Param before is not a valid cursor.")
        end = ids.index(anchor)
        start = max(0, end - limit)
    else:
        end = min(len(templates), limit)
    items = list(templates[start:end])
    cursors: dict[str, Any] = {}
    if items:
        cursors = {"before": encode_cursor(str(items[0]["id"])), "after": encode_cursor(str(items[-1]["id"]))}
    return items, {"cursors": cursors}, end < len(templates), start > 0
