"""Pure rules of the send path: the Graph API request bodies, what to retry, backoff, the token bucket.

No I/O here; sender.py, media.py and graph.py do the calls. Request shapes follow docs/meta-cloud-api.md
sections 5 (messages), 6 (templates) and 8 (mark as read).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from inbox_core.events.commands import MarkReadCommand, SendCommand

# Meta's error codes that pass on their own: throughput and pair limits, service hiccups.
# 1 unknown API error, 2 service temporarily unavailable, 4 app rate limit, 17 user rate limit,
# 341 application limit, 80007 WABA rate limit, 130429 Cloud API throughput, 131000 "something went
# wrong", 131016 service unavailable, 131056 (business, consumer) pair rate limit, 131057 account in
# maintenance (throughput upgrade), 133004 server temporarily unavailable.
RETRYABLE_META_CODES: frozenset[int] = frozenset(
    {1, 2, 4, 17, 341, 80007, 130429, 131000, 131016, 131056, 131057, 133004}
)
# Codes that will not change however often we ask, even when Meta answers them with a 5xx.
# 100 invalid parameter, 131047 re-engagement (24-hour window closed), 131026 undeliverable,
# 131051 unsupported type, 131052/131053 media errors, 132000-132001 template params/missing,
# 190 token expired, 10/200 permission, 131062 BSUID recipient not supported.
PERMANENT_META_CODES: frozenset[int] = frozenset(
    {10, 100, 190, 200, 131026, 131047, 131051, 131052, 131053, 131062, 132000, 132001, 470}
)

# A local failure that never reached Meta (unknown channel, stored file missing): code 0.
LOCAL_ERROR_CODE = 0

# Meta keeps inbound media downloadable for 7 days (docs/meta-cloud-api.md section 7); uploads live 30 days.
INBOUND_MEDIA_RETENTION = timedelta(days=7)
UPLOADED_MEDIA_LIFETIME = timedelta(days=30)

Retry = Literal["retry", "permanent"]

# Media types whose Graph object takes a caption (audio and stickers do not).
_CAPTIONED = frozenset({"image", "video", "document"})
_MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})
_NAMESPACE = uuid.UUID("6f1d3a52-9a51-4d3e-b7f3-0c3c5a8e2b17")


class InvalidCommand(ValueError):
    """The command cannot be turned into a Graph request (missing content): a permanent failure."""


# --- retry classification and backoff ---------------------------------------------------------------


def classify(status: int | None, meta_code: int | None) -> Retry:
    """``retry`` for network errors (``status`` None), 429, 5xx and Meta's throttling codes; else permanent.

    Meta's own code wins over the HTTP status where we know it: a 400 with 130429 is a rate limit,
    a 500 with 131047 will not get better.
    """
    if meta_code is not None:
        if meta_code in RETRYABLE_META_CODES:
            return "retry"
        if meta_code in PERMANENT_META_CODES:
            return "permanent"
    if status is None or status in (408, 429) or status >= 500:
        return "retry"
    return "permanent"


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after_s: float | None = None,
    jitter: float = 0.5,
) -> float:
    """Seconds to wait after failed ``attempt`` (1-based): exponential, capped, with "equal jitter".

    ``jitter`` in [0, 1] is the random draw (given by the caller, so this stays pure): the delay is
    between half and all of the exponential step. A server's ``Retry-After`` is a floor.
    """
    step = min(max_s, base_s * 2.0 ** max(0, attempt - 1))
    delay = step / 2 + step / 2 * min(1.0, max(0.0, jitter))
    if retry_after_s is not None and retry_after_s > delay:
        delay = min(max_s, retry_after_s)
    return delay


def media_retry_at(now: datetime, attempt: int, *, base_s: float, max_s: float) -> datetime:
    """When a media download that failed ``attempt`` times is tried again (no jitter: a job schedule)."""
    return now + timedelta(seconds=min(max_s, base_s * 2.0 ** max(0, attempt - 1)))


def media_expired(received_at: datetime, now: datetime) -> bool:
    """Meta no longer serves an inbound media id this long after the message."""
    return now - received_at > INBOUND_MEDIA_RETENTION


# --- the token bucket -------------------------------------------------------------------------------


@dataclass
class TokenBucket:
    """``rate`` tokens per second, up to ``capacity``; :meth:`reserve` takes one and says how long to wait.

    Tokens may go negative: a caller that must wait has already reserved its slot, so concurrent
    callers queue up one ``1/rate`` apart instead of all waking at once.
    """

    rate: float
    capacity: float
    tokens: float
    updated: float

    @classmethod
    def full(cls, rate: float, now: float, capacity: float | None = None) -> TokenBucket:
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError("rate must be a positive number")
        cap = capacity if capacity is not None else max(1.0, rate)
        return cls(rate=rate, capacity=cap, tokens=cap, updated=now)

    def reserve(self, now: float) -> float:
        elapsed = max(0.0, now - self.updated)
        self.tokens = min(self.capacity, self.tokens + elapsed * self.rate)
        self.updated = max(self.updated, now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# --- ids ---------------------------------------------------------------------------------------------


def outcome_event_id(command_id: str) -> str:
    """The outcome event of a command always has this id, so a re-published outcome is deduplicated."""
    return uuid.uuid5(_NAMESPACE, f"send-outcome:{command_id}").hex


def media_event_id(media_id: str) -> str:
    return uuid.uuid5(_NAMESPACE, f"media-outcome:{media_id}").hex


def inbound_storage_id(media_id: str) -> str:
    """Where an inbound media file is stored: derived from Meta's id, so a message event can find it."""
    return f"wa-media-{media_id}"


def event_key(phone_number_id: str, wa_id: str, user_id: str | None) -> str:
    """The key of whatsapp.events.v1 and whatsapp.commands.v1: one customer of one number."""
    return f"{phone_number_id}:{wa_id or user_id or ''}"


# --- Graph API request bodies ----------------------------------------------------------------------


def _addressed(command: SendCommand | MarkReadCommand) -> dict[str, Any]:
    body: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual"}
    # ``to`` takes a phone number; ``recipient`` a business-scoped user id (username-only customers).
    if command.wa_id:
        body["to"] = command.wa_id
    elif command.user_id:
        body["recipient"] = command.user_id
    else:
        raise InvalidCommand("the command names no recipient (wa_id or user_id)")
    return body


def message_body(command: SendCommand, media_id: str | None = None) -> dict[str, Any]:
    """The JSON of ``POST /{phone_number_id}/messages`` for a send command.

    ``media_id`` is Meta's id of the file uploaded from our storage (for ``media.storage_id``);
    without it a media send must carry a ``link``.
    """
    body = _addressed(command)
    kind = command.kind
    body["type"] = kind
    if kind == "text":
        if not command.text:
            raise InvalidCommand("a text send needs text")
        body["text"] = {"preview_url": command.preview_url, "body": command.text}
    elif kind in _MEDIA_KINDS:
        media = command.media
        if media is None:
            raise InvalidCommand(f"a {kind} send needs media")
        obj: dict[str, Any]
        if media_id:
            obj = {"id": media_id}
        elif media.link:
            obj = {"link": media.link}
        else:
            raise InvalidCommand(f"a {kind} send needs a stored file or a link")
        if media.caption and kind in _CAPTIONED:
            obj["caption"] = media.caption
        if kind == "document" and media.filename:
            obj["filename"] = media.filename
        body[kind] = obj
    elif kind == "template":
        template = command.template
        if template is None:
            raise InvalidCommand("a template send needs a template")
        tpl: dict[str, Any] = {"name": template.name, "language": {"code": template.language}}
        if template.components:
            tpl["components"] = template.components
        body["template"] = tpl
    elif kind == "reaction":
        reaction = command.reaction
        if reaction is None:
            raise InvalidCommand("a reaction send needs a reaction")
        body["reaction"] = {"message_id": reaction.message_wamid, "emoji": reaction.emoji}
    elif kind == "location":
        if not command.location:
            raise InvalidCommand("a location send needs a location")
        body["location"] = dict(command.location)
    else:  # pragma: no cover - SendKind is a closed Literal
        raise InvalidCommand(f"unknown send kind {kind!r}")
    # A reaction names its message itself; anything else may quote one.
    if command.reply_to_wamid and kind != "reaction":
        body["context"] = {"message_id": command.reply_to_wamid}
    if command.biz_opaque_callback_data:
        body["biz_opaque_callback_data"] = command.biz_opaque_callback_data
    return body


def mark_read_body(command: MarkReadCommand) -> dict[str, Any]:
    """``{"messaging_product":"whatsapp","status":"read","message_id":...}`` (docs/meta-cloud-api.md section 8)."""
    body: dict[str, Any] = {"messaging_product": "whatsapp", "status": "read", "message_id": command.message_wamid}
    if command.typing_indicator:
        body["typing_indicator"] = {"type": "text"}
    return body


def needs_upload(command: SendCommand) -> bool:
    return command.kind in _MEDIA_KINDS and command.media is not None and bool(command.media.storage_id)


def accepted_fields(response: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """``(wamid, message_status, group_id)`` from Meta's answer to a send (docs/meta-cloud-api.md section 5)."""
    messages = response.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[0], dict):
        raise ValueError("Meta's answer names no message")
    first = messages[0]
    wamid = first.get("id")
    if not isinstance(wamid, str) or not wamid:
        raise ValueError("Meta's answer has no wamid")
    status = first.get("message_status")
    group = first.get("group_id") or response.get("group_id")
    return wamid, status if isinstance(status, str) else None, group if isinstance(group, str) else None


# --- Meta's errors ----------------------------------------------------------------------------------


def meta_error_fields(body: Any, status: int | None) -> dict[str, Any]:
    """Meta's ``{"error": {...}}`` as MetaError fields: code, title, message, details (and the rest).

    ``title`` is Meta's user title where given, else its message; ``details`` is ``error_data.details``.
    A body that is not Meta's (an HTML 502 from a proxy) gives a message with the HTTP status.
    """
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        text = f"HTTP {status}" if status is not None else "network error"
        return {"code": None, "title": text, "message": text}
    code = error.get("code")
    message = error.get("message")
    error_data = error.get("error_data") if isinstance(error.get("error_data"), dict) else None
    details = error_data.get("details") if error_data else None
    title = error.get("error_user_title") or error.get("title") or message
    out: dict[str, Any] = {
        "code": code if isinstance(code, int) and not isinstance(code, bool) else _int_or_none(code),
        "title": title if isinstance(title, str) else None,
        "message": message if isinstance(message, str) else None,
        "details": details if isinstance(details, str) else None,
        "error_data": error_data,
    }
    for extra in ("type", "fbtrace_id", "error_subcode", "href"):
        if extra in error:
            out[extra] = error[extra]
    return out


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if isinstance(value, str) else None
    except ValueError:
        return None


# --- template paging --------------------------------------------------------------------------------


def next_page(response: dict[str, Any]) -> tuple[str | None, str | None]:
    """``(after_cursor, next_url)`` of a Graph list answer; both None on the last page.

    Meta leaves ``paging.next`` out on the last page; the cursor is preferred (we build the URL
    ourselves and keep the token in the header), the ``next`` URL is the fallback.
    """
    paging = response.get("paging")
    if not isinstance(paging, dict) or not paging.get("next"):
        return None, None
    cursors = paging.get("cursors")
    after = cursors.get("after") if isinstance(cursors, dict) else None
    nxt = paging.get("next")
    return (after if isinstance(after, str) and after else None), (nxt if isinstance(nxt, str) else None)
