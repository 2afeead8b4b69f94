"""Lenient readers of Meta's values: a wrong type is ``None`` (the caller decides), never an exception."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from inbox_core.events.whatsapp import MetaError, parse_meta_timestamp


def waba_of(entry: Any) -> str:
    return (str_or_none(entry.get("id")) or "") if isinstance(entry, dict) else ""


def describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def str_or_none(value: Any) -> str | None:
    """A string; ids Meta sends as numbers become strings; anything else is None (kept in raw)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            return str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            return None
    return None


def int_or_none(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def float_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def digits_only(value: str | None) -> str:
    return "".join(ch for ch in value if ch.isdigit()) if value else ""


def ts_or_none(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_meta_timestamp(value)
    except ValueError:
        return None


def json_object_or_none(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def meta_errors(errors: Any) -> list[MetaError]:
    if not isinstance(errors, list):
        return []
    return [meta_error(e) for e in errors if isinstance(e, dict)]


def meta_error(error: dict[str, Any]) -> MetaError:
    data = error.get("error_data")
    data = data if isinstance(data, dict) else None
    return MetaError(
        code=int_or_none(error.get("code")),
        title=str_or_none(error.get("title")),
        message=str_or_none(error.get("message")),
        details=str_or_none(data.get("details")) if data else str_or_none(error.get("details")),
        href=str_or_none(error.get("href")),
        error_data=data,
    )
