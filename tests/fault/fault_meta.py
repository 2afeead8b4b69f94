"""Meta's side of the fault tests: signed webhooks of the sandbox's numbers, posted and retried until answered
200 (as Meta does), and the customers who send them."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from inbox_core import ids
from inbox_sandbox.domain.signing import signature
from inbox_testkit.stack import STACK_SECRETS

# The sandbox's default numbers (see services/sandbox/README.md).
NUMBER = "106540352242922"
WABA = "102290129340398"
DISPLAY = "15550783881"
NUMBER_B = "117650463353033"
WABA_B = "213301230451409"
APP_SECRET = STACK_SECRETS["INGEST_META_APP_SECRET"].encode()


def text_webhook(wa_id: str, name: str, wamid: str, body: str, ts: int | None = None,
                 number: str = NUMBER, waba: str = WABA) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number},
        "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": str(ts or int(time.time())), "type": "text",
                      "text": {"body": body}}],
    }
    return _envelope(waba, value)


def multi_text_webhook(messages: list[tuple[str, str, str, str]], number: str = NUMBER, waba: str = WABA) -> bytes:
    """One webhook carrying several messages (Meta batches): (wa_id, name, wamid, body) each."""
    ts = str(int(time.time()))
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number},
        "contacts": [{"profile": {"name": n}, "wa_id": w} for w, n, _, _ in messages],
        "messages": [{"from": w, "id": m, "timestamp": ts, "type": "text", "text": {"body": b}}
                     for w, _, m, b in messages],
    }
    return _envelope(waba, value)


def status_webhook(wamid: str, status: str, recipient: str, ts: int, number: str = NUMBER,
                   waba: str = WABA) -> bytes:
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": str(ts), "recipient_id": recipient}
    if status == "failed":
        item["errors"] = [{"code": 131049, "title": "This message was not delivered to maintain healthy ecosystem "
                           "engagement.", "message": "This message was not delivered to maintain healthy "
                           "ecosystem engagement.", "error_data": {"details": "In order to maintain a healthy "
                                                                   "ecosystem engagement, the message failed "
                                                                   "to be delivered."}}]
    elif status in ("sent", "delivered"):
        item["pricing"] = {"billable": False, "pricing_model": "PMP", "type": "free_customer_service",
                           "category": "service"}
    value = {"messaging_product": "whatsapp",
             "metadata": {"display_phone_number": DISPLAY, "phone_number_id": number},
             "statuses": [item]}
    return _envelope(waba, value)


def _envelope(waba: str, value: dict[str, Any]) -> bytes:
    body = {"object": "whatsapp_business_account",
            "entry": [{"id": waba, "changes": [{"value": value, "field": "messages"}]}]}
    return json.dumps(body, separators=(",", ":")).encode()


def sign(body: bytes) -> str:
    return signature(APP_SECRET, body)


@dataclass
class Meta:
    """Posts signed webhooks to ingest and retries every answer but 200 (and every connection error),
    with a growing pause, as Meta does (for days; here until the deadline given to ``drain``)."""

    url: str
    client: httpx.AsyncClient = field(default_factory=lambda: httpx.AsyncClient(timeout=15))
    answers: Counter[str] = field(default_factory=Counter)  # "200", "503", "ConnectError", ...
    retried: int = 0
    max_pause_s: float = 2.0

    async def post_once(self, body: bytes) -> str:
        try:
            response = await self.client.post(self.url, content=body, headers={
                "X-Hub-Signature-256": sign(body), "Content-Type": "application/json"})
            answer = str(response.status_code)
        except httpx.HTTPError as exc:
            answer = type(exc).__name__
        self.answers[answer] += 1
        return answer

    async def deliver(self, body: bytes, until: float) -> bool:
        """True once answered 200; False if the deadline passed first."""
        pause = 0.25
        while True:
            if await self.post_once(body) == "200":
                return True
            if time.monotonic() + pause > until:
                return False
            self.retried += 1
            await asyncio.sleep(pause)
            pause = min(self.max_pause_s, pause * 2)

    async def aclose(self) -> None:
        await self.client.aclose()


@dataclass
class Customer:
    wa_id: str
    name: str
    conversation_id: str
    customer_id: str


def new_customers(workspace_id: str, count: int, number: str = NUMBER) -> list[Customer]:
    out = []
    for _ in range(count):
        wa_id = "1" + "".join(random.choices("0123456789", k=11))
        out.append(Customer(wa_id, f"Fault Customer {wa_id[-4:]}", ids.conversation_id(workspace_id, number, wa_id),
                            ids.customer_id(workspace_id, wa_id)))
    return out


class WebhookLoad:
    """Uniquely numbered text messages from ``customers``, ``rate`` webhooks per second, each delivered
    (retried) until answered 200. ``accepted`` maps each wamid answered 200 to its customer."""

    def __init__(self, meta: Meta, customers: list[Customer], run: str, rate: float = 25.0,
                 concurrency: int = 24) -> None:
        self.meta = meta
        self.customers = customers
        self.run = run
        self.rate = rate
        self.sent: dict[str, Customer] = {}
        self.accepted: dict[str, Customer] = {}
        self.failed: set[str] = set()
        self._seq = 0
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._producer: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._deadline = time.monotonic() + 3600.0

    def start(self) -> WebhookLoad:
        self._producer = asyncio.create_task(self._produce())
        return self

    async def _produce(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self._seq += 1
            seq = self._seq
            customer = self.customers[seq % len(self.customers)]
            wamid = f"wamid.fault.{self.run}.{seq:06d}"
            self.sent[wamid] = customer
            body = text_webhook(customer.wa_id, customer.name, wamid, f"message {seq} of run {self.run}")
            task = asyncio.create_task(self._deliver(wamid, customer, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            # A steady rate: the n-th webhook leaves at n / rate seconds, however long posts take.
            await asyncio.sleep(max(0.0, started + seq / self.rate - time.monotonic()))

    async def _deliver(self, wamid: str, customer: Customer, body: bytes) -> None:
        async with self._slots:
            if await self.meta.deliver(body, self._deadline):
                self.accepted[wamid] = customer
            else:
                self.failed.add(wamid)

    async def stop_and_drain(self, within: float = 120.0) -> None:
        """Stops sending new messages; retries the unanswered ones until 200 (or ``within`` passes)."""
        self._stop.set()
        if self._producer is not None:
            await self._producer
        self._deadline = time.monotonic() + within
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
