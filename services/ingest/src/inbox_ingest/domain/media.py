"""Media rules: Meta's size limits per message type, and when stored media may be purged.

Meta's Cloud API ("Supported media types", docs/meta-cloud-api.md section 7): image 5 MB, audio and video
16 MB, document 100 MB, sticker 500 KB animated (100 KB static; which one a sticker is, is known only from
its bytes, so the larger bound). Sizes in MB of 1024 * 1024 bytes, as the gateway's upload limits.
"""

from __future__ import annotations

from datetime import datetime, timedelta

MB = 1024 * 1024
KB = 1024

INBOUND_LIMITS: dict[str, int] = {
    "image": 5 * MB,
    "video": 16 * MB,
    "audio": 16 * MB,
    "document": 100 * MB,
    "sticker": 500 * KB,
}
# The largest file Meta carries at all (a document); also the bound of an agent's upload.
MAX_MEDIA_BYTES = max(INBOUND_LIMITS.values())


def inbound_limit(kind: str | None) -> int:
    """The largest file a customer's message of this type can carry (unknown types: the largest of all)."""
    return INBOUND_LIMITS.get(kind or "", MAX_MEDIA_BYTES)


def human_size(size: int) -> str:
    if size >= MB:
        return f"{size / MB:.1f} MB".replace(".0 MB", " MB")
    return f"{size // KB} KB"


def oversize_reason(kind: str | None, size: int | None, limit: int) -> str:
    """Why a file is refused: its size (when known) beside Meta's limit for its type."""
    what = f"{kind} files" if kind else "files"
    told = f" ({human_size(size)})" if size is not None else ""
    return f"the file{told} is larger than Meta's limit for {what}, {human_size(limit)}"


def retention_cutoff(now: datetime, days: float) -> datetime:
    """Stored things older than this (by their own date) may be purged."""
    return now - timedelta(days=days)
