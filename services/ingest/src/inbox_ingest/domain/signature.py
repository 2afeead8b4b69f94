"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``,
keyed by the app secret. Computed over the bytes exactly as received, never a re-serialisation."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_valid(secret: bytes, body: bytes, header: str | None) -> bool:
    if not header or not header.startswith(PREFIX):
        return False
    # Constant-time compare, so timing tells nothing about how much of a forged signature was right.
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().lower().encode())
