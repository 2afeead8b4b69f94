"""The sandbox's memory: numbers, tokens, templates, customers, media, faults and what happened.

Nothing is durable and nothing is shared: each process has its own state, lost on restart, and
``POST /sandbox/reset`` puts it back to what the settings say. Run one sandbox process.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field

from inbox_sandbox.catalog import builtin_templates
from inbox_sandbox.domain import ids, signing, webhooks
from inbox_sandbox.settings import NumberConfig, SandboxSettings


class RuntimeConfig(BaseModel):
    """Settings that tests and the page may change while the sandbox runs (``PATCH /sandbox/config``)."""

    webhook_url: str
    status_delays_ms: tuple[int, int, int]
    auto_read: bool
    webhook_max_attempts: int = Field(ge=1)


class FaultIn(BaseModel):
    """The next ``count`` requests of a number fail this way (``POST /sandbox/faults``)."""

    phone_number_id: str
    status: int = Field(default=500, ge=200, le=599)
    code: int = 131000
    count: int = Field(default=1, ge=1)
    message: str | None = None
    details: str | None = None
    # response: the HTTP answer is the error; status_webhook: 200 with a wamid, then a failed status.
    delivery: Literal["response", "status_webhook"] = "response"
    # Which Graph API call fails: message sends (and mark-as-read) or media uploads.
    endpoint: Literal["messages", "media"] = "messages"
    delay_ms: int = Field(default=0, ge=0, le=60_000)  # wait this long before answering


@dataclass
class Fault:
    spec: FaultIn
    remaining: int


@dataclass
class Customer:
    """A customer of one business number; ``last_inbound`` drives the 24-hour window."""

    profile: webhooks.Profile
    last_inbound: int | None = None


@dataclass
class StoredMedia:
    id: str
    phone_number_id: str
    data: bytes
    mime_type: str
    sha256_hex: str
    filename: str | None
    origin: Literal["upload", "simulator"]
    created_at: float


@dataclass
class Outbound:
    """A message the business sent through the Graph API, and what became of it."""

    wamid: str
    phone_number_id: str
    to: str
    type: str
    request: dict[str, Any]
    created_at: float
    statuses: list[str] = field(default_factory=list)
    error_code: int | None = None
    text: str | None = None  # what the customer sees (text body, caption, rendered template, emoji)

    def view(self) -> dict[str, Any]:
        return {"wamid": self.wamid, "phone_number_id": self.phone_number_id, "to": self.to, "type": self.type,
                "text": self.text, "statuses": list(self.statuses), "error_code": self.error_code,
                "created_at": self.created_at, "request": self.request}


class SandboxState:
    def __init__(self, settings: SandboxSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self.rng = rng or random.SystemRandom()
        # Signs media download URLs; random per process, so URLs die with the process as Meta's expire.
        self.url_secret = "".join(self.rng.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=32))
        self.reset()

    def reset(self) -> None:
        s = self.settings
        self.config = RuntimeConfig(webhook_url=s.webhook_url, status_delays_ms=s.status_delays_ms,
                                    auto_read=s.auto_read, webhook_max_attempts=s.webhook_max_attempts)
        self.numbers: dict[str, NumberConfig] = {}
        self.tokens: dict[str, set[str]] = {}
        self.templates: dict[str, list[dict[str, Any]]] = {}
        for number in s.numbers:
            self.add_number(number)
        self.customers: dict[str, list[Customer]] = {}
        self.media: dict[str, StoredMedia] = {}
        self.faults: dict[tuple[str, str], deque[Fault]] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=s.history_limit)
        self.webhooks: deque[dict[str, Any]] = deque(maxlen=s.history_limit)
        self.outbound: dict[str, Outbound] = {}
        self.inbound: deque[dict[str, Any]] = deque(maxlen=s.history_limit)
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # numbers and tokens

    def add_number(self, number: NumberConfig) -> None:
        self.numbers[number.phone_number_id] = number
        tokens = self.tokens.setdefault(number.phone_number_id, set())
        if number.access_token:
            tokens.add(number.access_token)
        self.templates.setdefault(number.waba_id, builtin_templates())

    def business(self, phone_number_id: str) -> webhooks.Business | None:
        number = self.numbers.get(phone_number_id)
        if number is None:
            return None
        return webhooks.Business(number.phone_number_id, number.display_phone_number, number.waba_id)

    def first_number(self) -> NumberConfig | None:
        return next(iter(self.numbers.values()), None)

    def token_ok(self, token: str | None, phone_number_ids: list[str]) -> bool:
        """A token is good for a node when it is the default token or one registered for its number(s)."""
        if not token:
            return False
        default = self.settings.access_token
        candidates = [default.get_secret_value()] if default is not None and default.get_secret_value() else []
        for pnid in phone_number_ids:
            candidates.extend(self.tokens.get(pnid, ()))
        # Every candidate is compared, so the time taken does not tell which one nearly matched.
        matches = [hmac.compare_digest(token.encode(), c.encode()) for c in candidates]
        return any(matches)

    def numbers_of_waba(self, waba_id: str) -> list[str]:
        return [n.phone_number_id for n in self.numbers.values() if n.waba_id == waba_id]

    # customers and the window

    def customer(self, phone_number_id: str, *, wa_id: str = "", user_id: str | None = None) -> Customer | None:
        for customer in self.customers.get(phone_number_id, []):
            if wa_id and customer.profile.wa_id == wa_id:
                return customer
            if user_id and customer.profile.user_id == user_id:
                return customer
        return None

    def note_inbound(self, phone_number_id: str, profile: webhooks.Profile, timestamp: int) -> Customer:
        customer = self.customer(phone_number_id, wa_id=profile.wa_id, user_id=profile.user_id)
        if customer is None:
            customer = Customer(profile)
            self.customers.setdefault(phone_number_id, []).append(customer)
        else:
            # Learn what this message tells (a user id, a new name) without forgetting the number.
            old = customer.profile
            customer.profile = webhooks.Profile(
                wa_id=profile.wa_id or old.wa_id, name=profile.name or old.name,
                user_id=profile.user_id or old.user_id, username=profile.username or old.username,
                country_code=profile.country_code or old.country_code)
        if customer.last_inbound is None or timestamp > customer.last_inbound:
            customer.last_inbound = timestamp
        return customer

    # faults

    def add_fault(self, spec: FaultIn) -> None:
        self.faults.setdefault((spec.phone_number_id, spec.endpoint), deque()).append(Fault(spec, spec.count))

    def take_fault(self, phone_number_id: str, endpoint: str) -> FaultIn | None:
        queue = self.faults.get((phone_number_id, endpoint))
        if not queue:
            return None
        fault = queue[0]
        fault.remaining -= 1
        if fault.remaining <= 0:
            queue.popleft()
        return fault.spec

    def fault_views(self) -> list[dict[str, Any]]:
        return [{**f.spec.model_dump(), "remaining": f.remaining} for q in self.faults.values() for f in q]

    # media

    def store_media(self, phone_number_id: str, data: bytes, mime_type: str, filename: str | None,
                    origin: Literal["upload", "simulator"]) -> StoredMedia:
        media_id = ids.new_numeric_id(self.rng)
        item = StoredMedia(media_id, phone_number_id, data, mime_type, hashlib.sha256(data).hexdigest(), filename,
                           origin, time.time())
        self.media[media_id] = item
        return item

    def media_url(self, base_url: str, media_id: str, now: float) -> str:
        expires = int(now) + self.settings.media_url_ttl_s
        sig = signing.url_signature(self.url_secret, media_id, expires)
        return f"{base_url.rstrip('/')}/sandbox/media-download/?mid={media_id}&ext={expires}&hash={sig}"
