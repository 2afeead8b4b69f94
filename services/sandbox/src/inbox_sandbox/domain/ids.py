"""Identifiers shaped like Meta's: wamids (``wamid.`` + base64 of the binary key Meta uses), numeric media
and template ids, 32-hex conversation ids, business-scoped user ids; randomness passed in."""

from __future__ import annotations

import base64
import random
import re
import string


def digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


_PHONE_CHARS = re.compile(r"^[+0-9 ()\-.]+$")


def is_bsuid(to: str) -> bool:
    """A send's ``to`` is a business-scoped user id (``US.1349...``, ``user.9373...``), not a phone number."""
    return not _PHONE_CHARS.match(to) or not digits(to)


def new_wamid(customer: str, *, inbound: bool, rng: random.Random) -> str:
    """A wamid in Meta's layout: the customer's number and a random key, tagged inbound (0x12) or outbound
    (0x11); inbound keys are 20 hex digits starting ``3A``, outbound ones 18 (as in Meta's examples)."""
    number = (customer or "0").encode()
    key = ("3A" + "".join(rng.choices("0123456789ABCDEF", k=18)) if inbound
           else "".join(rng.choices("0123456789ABCDEF", k=18))).encode()
    raw = (b"\x1c\x18" + bytes([len(number)]) + number + b"\x15\x02\x00" + (b"\x12" if inbound else b"\x11")
           + b"\x18" + bytes([len(key)]) + key + b"\x00")
    return "wamid." + base64.b64encode(raw).decode()


def new_numeric_id(rng: random.Random, length: int = 16) -> str:
    return str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=length - 1))


def new_conversation_id(rng: random.Random) -> str:
    return "".join(rng.choices("0123456789abcdef", k=32))


def new_fbtrace_id(rng: random.Random) -> str:
    return "".join(rng.choices(string.ascii_letters + string.digits + "_-", k=27))


def new_bsuid(country_code: str | None, rng: random.Random) -> str:
    return f"{(country_code or 'US').upper()}.{new_numeric_id(rng, 20)}"
