"""Meta's timestamps, read into aware UTC datetimes whatever form a webhook gives them in."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator


def parse_meta_timestamp(value: Any) -> datetime:
    """Meta's ``timestamp``: unix seconds as a string (Meta's examples) or a number (some fixtures).

    Also accepts an aware or naive ``datetime`` (naive is taken as UTC) and ISO 8601 strings.
    Raises ``ValueError`` for anything else, including booleans, NaN and out-of-range values.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    seconds: float | None = None
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError as exc:
            raise ValueError("timestamp out of range") from exc
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError as exc:
                raise ValueError(f"not a timestamp: {value!r}") from exc
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    else:
        raise ValueError(f"not a timestamp: {type(value).__name__}")
    if not math.isfinite(seconds):
        raise ValueError("not a finite timestamp")
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as exc:
        raise ValueError(f"timestamp out of range: {value!r}") from exc


def _as_utc(value: datetime) -> datetime:
    return value.astimezone(UTC)


MetaTimestamp = Annotated[datetime, BeforeValidator(parse_meta_timestamp), AfterValidator(_as_utc)]
