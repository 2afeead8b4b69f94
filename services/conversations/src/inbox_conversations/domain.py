"""Pure rules of the inbox (no I/O): delivery status order, Meta's 24-hour window, what a message does
to its conversation, list previews, search tokens and queries, statuses, ids (a template's
parameters are template_sends.py's).
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inbox_core.errors import InvalidRequest

# --- ids ----------------------------------------------------------------------------------------------

_NAMESPACE = uuid.UUID("0c8f5e0a-51b7-4b61-9d8e-5b6f2f3c9a41")  # fixed forever: ids depend on it


def derived_id(prefix: str, *parts: str) -> str:
    """A stable id made from facts, so a replayed input lands on the same document or event."""
    return prefix + uuid.uuid5(_NAMESPACE, "\x1f".join(parts)).hex[:24]


def event_id(*parts: str) -> str:
    return uuid.uuid5(_NAMESPACE, "event\x1f" + "\x1f".join(parts)).hex


def inbound_message_id(workspace_id: str, wamid: str) -> str:
    """A message that came from Meta (inbound, history, echo) is named by its wamid."""
    return derived_id("msg_", "wamid", workspace_id, wamid)


def outbound_message_id(workspace_id: str, conversation_id: str, idempotency_key: str) -> str:
    """A message sent here is named by the client's idempotency key: a retried call finds it again."""
    return derived_id("msg_", "send", workspace_id, conversation_id, idempotency_key)


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex[:24]


def to_ms(value: datetime) -> datetime:
    """MongoDB keeps milliseconds: truncate before storing so what we return equals what we read back."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


# --- delivery status ------------------------------------------------------------------------------------

# pending < sent < delivered < read < played (voice notes); failed is final.
STATUS_RANK: dict[str, int] = {"pending": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4, "failed": 9}


def status_rank(status: str) -> int | None:
    return STATUS_RANK.get(status)


def status_advances(current: str | None, new: str) -> bool:
    """Whether ``new`` may replace ``current``: only forward, failed is final (usecases/facts.py decides by
    it; the write is guarded by the same ranks against a change made meanwhile)."""
    rank = STATUS_RANK.get(new)
    if rank is None:
        return False
    if current is None:
        return True
    return rank > STATUS_RANK.get(current, -1)


# --- Meta's 24-hour customer-service window ---------------------------------------------------------------

WINDOW = timedelta(hours=24)


def window_expires_at(last_customer_message_at: datetime | None) -> datetime | None:
    return None if last_customer_message_at is None else last_customer_message_at + WINDOW


def window_open(expires_at: datetime | None, now: datetime) -> bool:
    """Open until exactly 24 h after the customer's last live message: at 24 h it is closed."""
    return expires_at is not None and now < expires_at


@dataclass(frozen=True)
class MessageEffects:
    """What one message does to its conversation."""

    unread: bool  # counts as a new unread message
    opens_window: bool  # refreshes Meta's 24-hour window
    becomes_last: bool  # may become the list's last message (and decides awaiting_reply)
    awaiting_reply: bool  # if it is the last message, the customer is waiting for an answer


# Not written by the customer: shown, but they neither count as unread nor open the window.
_NOT_CUSTOMER_WRITTEN = frozenset({"system"})


def message_effects(origin: str, direction: str, type_: str) -> MessageEffects:
    """History backfill and SMB-app echoes never count as new inbound: no unread, no window."""
    live_in = origin == "live" and direction == "in"
    customer_written = type_ not in _NOT_CUSTOMER_WRITTEN
    if type_ == "reaction":
        # Folded into the message it targets; a live one still shows the customer is there.
        return MessageEffects(unread=False, opens_window=live_in, becomes_last=False, awaiting_reply=False)
    return MessageEffects(
        unread=live_in and customer_written,
        opens_window=live_in and customer_written,
        becomes_last=True,
        awaiting_reply=direction == "in" and customer_written,
    )


# --- previews -------------------------------------------------------------------------------------------

PREVIEW_LENGTH = 120
_LABELS = {
    "image": "Photo",
    "video": "Video",
    "audio": "Audio",
    "document": "Document",
    "sticker": "Sticker",
    "location": "Location",
    "contacts": "Contact",
    "order": "Order",
    "reaction": "Reaction",
    "system": "System message",
    "request_welcome": "Opened the chat",
}


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"


def preview(type_: str, text: str | None = None, caption: str | None = None, filename: str | None = None,
            template_name: str | None = None, voice: bool = False, revoked: bool = False) -> str:
    """The list's one-line preview of a message; an unknown type is named, never blank."""
    if revoked:
        return "Message deleted"
    if type_ in ("text", "button", "interactive") and text:
        return _short(text)
    if type_ == "template":
        return _short(text) if text else f"Template: {template_name or ''}".strip()
    label = "Voice message" if type_ == "audio" and voice else _LABELS.get(type_)
    if label is None:
        return _short(text) if text else f"Unsupported message ({type_})"
    detail = caption or (filename if type_ == "document" else None) or (text if type_ != "reaction" else None)
    return _short(f"{label}: {detail}") if detail else label


# --- search ---------------------------------------------------------------------------------------------

MAX_NAME_WORDS = 8
MIN_PHONE_GRAM = 3
_WORD = re.compile(r"[^\W_]+")
_PHONE_PUNCT = re.compile(r"[\s+\-().]")


def fold(text: str) -> str:
    """Case- and accent-insensitive form: NFKD without combining marks, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def name_words(name: str) -> list[str]:
    return _WORD.findall(fold(name))


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


@dataclass(frozen=True)
class SearchQuery:
    """The terms a conversation must all match: name prefixes and phone digits (search_index.py finds
    the candidates, ``matches`` checks each row)."""

    name_terms: list[str] = field(default_factory=list)
    phone_terms: list[str] = field(default_factory=list)

    def matches(self, name: str, phone: str) -> bool:
        words = name_words(name)
        number = digits(phone)
        return all(any(w.startswith(t) for w in words) for t in self.name_terms) and all(
            t in number for t in self.phone_terms)


def parse_query(query: str) -> SearchQuery | None:
    """A name (prefix of any word, case and accents ignored) or phone digits (any part, 3 or more).

    "+34 612-345" is one phone term; in "ana 612" "ana" is a name prefix and "612" phone digits. A
    digit term shorter than 3 is taken as a name prefix (nearly every number would match it).
    None when nothing searchable is left.
    """
    text = query.strip()
    if not text:
        return None
    compact = _PHONE_PUNCT.sub("", text)
    if compact.isdigit() and len(compact) >= MIN_PHONE_GRAM:
        words: list[str] = [compact]
    else:
        words = name_words(text)
    name_terms: list[str] = []
    phone_terms: list[str] = []
    for word in words:
        if word.isdigit() and len(word) >= MIN_PHONE_GRAM:
            phone_terms.append(word)
        else:
            name_terms.append(word)
    if not name_terms and not phone_terms:
        return None
    return SearchQuery(name_terms, phone_terms)


# --- list filters ---------------------------------------------------------------------------------------

FILTERS = ("all", "unread", "mine", "no_reply")
# The number selector's unread counts stop here: this many means this many or more.
UNREAD_COUNT_MAX = 1000
DEFAULT_PAGE = 30
MAX_PAGE = 100

# --- the team's status of a conversation --------------------------------------------------------------------

# Where a conversation stands; a document stored before statuses existed is open (the startup backfill
# writes it, so the list's indexes can take the status as an equality).
OPEN, RESOLVED, SNOOZED = "open", "resolved", "snoozed"
CONVERSATION_STATUSES = (OPEN, RESOLVED, SNOOZED)
# The activity item of a move to each status.
STATUS_ACTIONS = {OPEN: "reopened", RESOLVED: "resolved", SNOOZED: "snoozed"}


def status_of(conversation: Mapping[str, Any]) -> str:
    return str(conversation.get("status") or OPEN)


def status_change(conversation: Mapping[str, Any], status: str, until: datetime | None,
                  now: datetime) -> str | None:
    """The activity action of moving the conversation to ``status`` (``until``: the snooze's end), or
    None when it is there already (the same snooze end too). InvalidRequest for a status that is not
    one, a snooze without an end in the future, or an end given with another status."""
    if status not in CONVERSATION_STATUSES:
        raise InvalidRequest("status must be open, resolved or snoozed", {"field": "status"})
    if status == SNOOZED and (until is None or until <= now):
        raise InvalidRequest("a snooze needs until, in the future", {"field": "until"})
    if status != SNOOZED and until is not None:
        raise InvalidRequest("until is only for a snooze", {"field": "until"})
    if status == status_of(conversation) and (status != SNOOZED or conversation.get("snoozed_until") == until):
        return None
    return STATUS_ACTIONS[status]


def snooze_due(conversation: Mapping[str, Any], now: datetime) -> bool:
    until = conversation.get("snoozed_until")
    return status_of(conversation) == SNOOZED and isinstance(until, datetime) and until <= now


def page_size(requested: int, default: int = DEFAULT_PAGE, maximum: int = MAX_PAGE) -> int:
    if requested <= 0:
        return default
    return min(requested, maximum)
