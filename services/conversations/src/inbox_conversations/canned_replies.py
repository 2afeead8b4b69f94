"""Canned replies, the pure part: what a valid reply is, how the list is filtered, and how a reply's
placeholders are filled for one conversation (no I/O here; usecases/replies.py does the reading)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from inbox_core.errors import InvalidRequest

MAX_SHORTCUT = 32
MAX_TITLE = 100
MAX_TEXT = 4096
MAX_PER_WORKSPACE = 1000  # a team's library of answers, not a database: listed whole, filtered here
_PLACEHOLDER = re.compile(r"\{\{([^{}]{0,100})\}\}")
_SHORTCUT = re.compile(r"[^\s/]+")


@dataclass(frozen=True)
class CannedReply:
    id: str
    workspace_id: str
    shortcut: str
    title: str
    text: str


def shortcut_key(shortcut: str) -> str:
    """What makes two shortcuts the same one (`/Thanks` and `/thanks` would be ambiguous to type)."""
    return shortcut.casefold()


def checked_shortcut(value: str) -> str:
    shortcut = value.strip().removeprefix("/")
    if not shortcut:
        raise InvalidRequest("a canned reply needs a shortcut", {"field": "shortcut"})
    if len(shortcut) > MAX_SHORTCUT or not _SHORTCUT.fullmatch(shortcut):
        raise InvalidRequest(f"a shortcut is one word of at most {MAX_SHORTCUT} characters, without spaces or '/'",
                             {"field": "shortcut"})
    return shortcut


def checked_title(value: str) -> str:
    title = value.strip()
    if len(title) > MAX_TITLE:
        raise InvalidRequest(f"a title has at most {MAX_TITLE} characters", {"field": "title"})
    return title


def checked_text(value: str) -> str:
    text = value.strip()
    if not text:
        raise InvalidRequest("a canned reply needs text", {"field": "text"})
    if len(text) > MAX_TEXT:
        raise InvalidRequest(f"a canned reply's text has at most {MAX_TEXT} characters", {"field": "text"})
    return text


def matching(replies: Iterable[CannedReply], query: str) -> list[CannedReply]:
    """The replies whose shortcut or title starts with the query (case-insensitive), by shortcut."""
    prefix = query.strip().removeprefix("/").casefold()
    kept = [r for r in replies if r.shortcut.casefold().startswith(prefix) or r.title.casefold().startswith(prefix)]
    return sorted(kept, key=lambda r: (shortcut_key(r.shortcut), r.id))


def first_name(name: str) -> str:
    words = name.split()
    return words[0] if words else ""


def render(text: str, values: Mapping[str, str]) -> str:
    """The text with each ``{{ placeholder }}`` replaced by its value; an unknown placeholder or a value
    that is not known (a customer without a name) becomes empty, never the raw braces."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1).strip(), ""), text)


def values_for(customer_name: str, agent_name: str) -> dict[str, str]:
    name = customer_name.strip()
    return {"customer.name": name, "customer.first_name": first_name(name), "agent.name": agent_name.strip()}
