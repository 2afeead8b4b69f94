"""What the normaliser's tests share: Meta's example bodies (``INBOX_WEBHOOK_SAMPLES`` points at another
directory), the example number and customer, and readers of bodies and typed payloads."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inbox_testkit.paths import META_WEBHOOK_SAMPLES

SAMPLES = (
    Path(os.environ["INBOX_WEBHOOK_SAMPLES"])
    if os.environ.get("INBOX_WEBHOOK_SAMPLES")
    else META_WEBHOOK_SAMPLES
)
SAMPLE_FILES = sorted(SAMPLES.glob("*.json"))

PNID = "106540352242922"
DISPLAY = "15550783881"
WABA = "102290129340398"
CUSTOMER = "16505551234"
WAMID_A = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
WAMID_B = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
QUOTED = "wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA="
BSUID = "user.9373795779eb6441c8adb2eaee5b848e7dd174ddd302d7db62142f4722d574b6"
KEY = f"{PNID}:{CUSTOMER}"
RECEIVED = "whatsapp.message.received"
STATUS = "whatsapp.status.updated"


def ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def load(name_or_path: str | Path) -> dict[str, Any]:
    path = name_or_path if isinstance(name_or_path, Path) else SAMPLES / name_or_path
    body: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return body


def inbound(**fields: Any) -> dict[str, Any]:
    """The common fields of a live inbound message from Sheena Nelson on the example number."""
    return {
        "waba_id": WABA, "phone_number_id": PNID, "display_phone_number": DISPLAY, "field": "messages",
        "origin": "live", "direction": "in", "wa_id": CUSTOMER, "profile_name": "Sheena Nelson", **fields,
    }

def get(obj: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(obj, dict):
            obj = obj[part]
        elif isinstance(obj, list):
            obj = obj[int(part)]
        else:
            obj = getattr(obj, part)
    return obj


def message_items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Every message-shaped object (messages, echoes, history, statuses) anywhere in a body."""
    found: list[dict[str, Any]] = []
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            for key in ("messages", "message_echoes", "statuses"):
                found.extend(value.get(key, []))
            for chunk in value.get("history", []):
                for thread in chunk.get("threads", []):
                    found.extend(thread.get("messages", []))
    return found
