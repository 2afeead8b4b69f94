"""Bytes as Meta signs them: webhook bodies serialised the way Meta serialises them (compact, ASCII-only with
lowercase ``\\uXXXX`` escapes, ``/`` escaped) and their ``X-Hub-Signature-256``; signed media URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


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
