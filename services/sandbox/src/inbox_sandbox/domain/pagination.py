"""Meta's cursor paging of a list (templates, numbers)."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from inbox_sandbox.domain.graph_errors import invalid_parameter


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
