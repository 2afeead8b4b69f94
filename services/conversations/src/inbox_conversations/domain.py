"""Pure rules of the inbox (no I/O): delivery status order, Meta's 24-hour window, what a message does
to its conversation, list previews, search tokens and queries, template parameters, ids.
"""

from __future__ import annotations

import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from inbox_core.errors import InvalidRequest, ValidationFailed

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


# --- templates ------------------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_HEADER_FORMATS = frozenset({"IMAGE", "VIDEO", "DOCUMENT"})


def template_variables(text: str | None) -> list[str]:
    """Distinct variables in order of first appearance: ``["1", "2"]`` or ``["first_name"]``."""
    seen: list[str] = []
    for name in _VARIABLE.findall(text or ""):
        if name not in seen:
            seen.append(name)
    return seen


def _is_positional(variables: Sequence[str]) -> bool:
    return all(v.isdigit() for v in variables)


@dataclass
class TemplateSend:
    """What SendTemplate sends: Meta's components array, and the text to show in the timeline."""

    components: list[dict[str, Any]]
    text: str
    header_media: dict[str, Any] | None = None


def _component(components: Iterable[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    for comp in components:
        if str(comp.get("type", "")).upper() == kind:
            return comp
    return None


def _text_values(section: str, variables: list[str], given: Any, problems: list[str]) -> list[tuple[str, str]]:
    """Matches ``given`` against the section's variables; ``[(variable, value)]`` in template order.

    Positional variables ({{1}}) take a list of strings (or ``{"text": ...}``); named ones ({{name}})
    take ``[{"name": ..., "text": ...}]`` or ``{name: value}``.
    """
    if not variables:
        if given:
            problems.append(f"{section}: the template takes no parameters here")
        return []
    positional = _is_positional(variables)
    values: dict[str, str] = {}
    if positional:
        if isinstance(given, Mapping) or not isinstance(given, list):
            problems.append(f"{section}: expects a list of {len(variables)} positional values")
            return []
        if any(isinstance(item, Mapping) and ("name" in item or "parameter_name" in item) for item in given):
            problems.append(f"{section}: positional variables take values without names")
            return []
        expected = sorted(variables, key=int)
        if expected != [str(i) for i in range(1, len(expected) + 1)]:
            problems.append(f"{section}: the template's variables are not numbered 1..n")
            return []
        if len(given) != len(expected):
            problems.append(f"{section}: expects {len(expected)} values, got {len(given)}")
            return []
        for index, item in enumerate(given, start=1):
            value = item.get("text") if isinstance(item, Mapping) else item
            values[str(index)] = value if isinstance(value, str) else ""
    else:
        pairs: list[tuple[Any, Any]]
        if isinstance(given, Mapping):
            pairs = list(given.items())
        elif isinstance(given, list) and all(isinstance(item, Mapping) for item in given):
            pairs = [(item.get("name", item.get("parameter_name")), item.get("text")) for item in given]
        else:
            problems.append(f"{section}: named variables take [{{name, text}}] or {{name: value}}")
            return []
        for name, value in pairs:
            if not isinstance(name, str) or not name:
                problems.append(f"{section}: every named value needs a name")
                return []
            values[name] = value if isinstance(value, str) else ""
        missing = [v for v in variables if v not in values]
        unknown = [n for n in values if n not in variables]
        if missing:
            problems.append(f"{section}: missing {', '.join(missing)}")
        if unknown:
            problems.append(f"{section}: unknown {', '.join(unknown)}")
        if missing or unknown:
            return []
    empty = [v for v in variables if not values.get(v, "").strip()]
    if empty:
        problems.append(f"{section}: empty value for {', '.join(empty)}")
        return []
    return [(v, values[v]) for v in variables]


def _text_parameters(pairs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    params: list[dict[str, Any]] = []
    for name, value in pairs:
        param: dict[str, Any] = {"type": "text", "text": value}
        if not name.isdigit():
            param["parameter_name"] = name
        params.append(param)
    return params


def _render(text: str, pairs: list[tuple[str, str]]) -> str:
    values = dict(pairs)
    return _VARIABLE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def _as_index(value: Any) -> int | None:
    """A button index given as 1, 1.0 (JSON numbers through protobuf Struct) or "1"."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


# Template parameters: each value's text (Meta's body variables take up to about a thousand characters) and
# all of them as JSON (they are stored with the message and travel in the send command).
MAX_TEMPLATE_PARAM_CHARS = 1024
MAX_TEMPLATE_PARAMS_BYTES = 16 * 1024


def check_template_params_size(params: Mapping[str, Any]) -> None:
    """Raises ValidationFailed (422) when a parameter's text or all of them are over their caps."""
    size = len(json.dumps(params, separators=(",", ":"), ensure_ascii=False, default=str).encode())
    if size > MAX_TEMPLATE_PARAMS_BYTES:
        raise ValidationFailed(f"template parameters have at most {MAX_TEMPLATE_PARAMS_BYTES} bytes in all",
                               {"field": "params", "bytes": size})

    def texts(value: Any) -> list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, Mapping):
            return [t for v in value.values() for t in texts(v)]
        if isinstance(value, list | tuple):
            return [t for v in value for t in texts(v)]
        return []

    longest = max((len(t) for t in texts(params)), default=0)
    if longest > MAX_TEMPLATE_PARAM_CHARS:
        raise ValidationFailed(f"a template parameter has at most {MAX_TEMPLATE_PARAM_CHARS} characters",
                               {"field": "params", "characters": longest})


def build_template_send(components: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> TemplateSend:
    """Checks ``params`` ({header?, body?, buttons?}) against the template's components and builds Meta's
    send components. Raises ValidationFailed (422) listing every problem.

    - header TEXT with a variable: one value; header IMAGE/VIDEO/DOCUMENT: required,
      ``[{"type": "image", "link": ...}]`` or ``{"id": <Meta media id>}``;
    - body: every variable, positional ({{1}}) or named ({{name}}) as the template defines them;
    - buttons: one value per dynamic button (a URL with a variable, COPY_CODE), in button order,
      as strings or ``{"index": i, "text": ...}``.
    """
    problems: list[str] = []
    unknown_sections = sorted(set(params) - {"header", "body", "buttons"})
    if unknown_sections:
        problems.append(f"unknown sections: {', '.join(unknown_sections)}")
    out: list[dict[str, Any]] = []
    shown: list[str] = []
    header_media: dict[str, Any] | None = None

    header = _component(components, "HEADER")
    given_header = params.get("header")
    if header is not None:
        fmt = str(header.get("format", "TEXT")).upper()
        if fmt in MEDIA_HEADER_FORMATS:
            kind = fmt.lower()
            item = given_header[0] if isinstance(given_header, list) and len(given_header) == 1 else None
            if not isinstance(item, Mapping):
                problems.append(f"header: the template's {kind} header needs one media parameter")
            elif item.get("type", kind) != kind:
                problems.append(f"header: expects {kind}, got {item.get('type')}")
            elif not (isinstance(item.get("link"), str) and item["link"]) and not (
                    isinstance(item.get("id"), str) and item["id"]):
                problems.append(f"header: the {kind} needs a link or a media id")
            else:
                media = {k: item[k] for k in ("link", "id", "filename") if isinstance(item.get(k), str) and item[k]}
                header_media = {"type": kind, **media}
                out.append({"type": "header", "parameters": [{"type": kind, kind: media}]})
        elif fmt == "TEXT":
            text = str(header.get("text", ""))
            pairs = _text_values("header", template_variables(text), given_header, problems)
            if pairs:
                out.append({"type": "header", "parameters": _text_parameters(pairs)})
            if text:
                shown.append(_render(text, pairs))
        elif given_header:
            problems.append(f"header: a {fmt} header takes no parameters")
    elif given_header:
        problems.append("header: the template has no header")

    body = _component(components, "BODY")
    body_text = str(body.get("text", "")) if body is not None else ""
    pairs = _text_values("body", template_variables(body_text), params.get("body"), problems)
    if pairs:
        out.append({"type": "body", "parameters": _text_parameters(pairs)})
    if body_text:
        shown.append(_render(body_text, pairs))

    buttons_comp = _component(components, "BUTTONS")
    buttons = list(buttons_comp.get("buttons", [])) if buttons_comp is not None else []
    dynamic: list[tuple[int, str]] = []  # (button index, sub_type)
    for index, button in enumerate(buttons):
        kind = str(button.get("type", "")).upper()
        if kind == "URL" and template_variables(str(button.get("url", ""))):
            dynamic.append((index, "url"))
        elif kind == "COPY_CODE":
            dynamic.append((index, "copy_code"))
    given_buttons = params.get("buttons") or []
    if not isinstance(given_buttons, list):
        problems.append("buttons: expects a list")
        given_buttons = []
    if len(given_buttons) != len(dynamic):
        problems.append(f"buttons: expects {len(dynamic)} values (dynamic URL and copy-code buttons), "
                        f"got {len(given_buttons)}")
    else:
        for (index, sub_type), item in zip(dynamic, given_buttons, strict=True):
            if isinstance(item, Mapping):
                if "index" in item and _as_index(item["index"]) != index:
                    problems.append(f"buttons: expected button {index}, got {item['index']}")
                    continue
                value = item.get("text", item.get("coupon_code"))
            else:
                value = item
            if not isinstance(value, str) or not value.strip():
                problems.append(f"buttons: empty value for button {index}")
                continue
            param = ({"type": "coupon_code", "coupon_code": value} if sub_type == "copy_code"
                     else {"type": "text", "text": value})
            out.append({"type": "button", "sub_type": sub_type, "index": str(index), "parameters": [param]})

    if problems:
        raise ValidationFailed("the parameters do not fit the template", {"problems": problems})
    return TemplateSend(components=out, text="\n".join(s for s in shown if s), header_media=header_media)
