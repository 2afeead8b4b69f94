"""What the browser tests share: Debian's Chromium settings, the seeded workspace (``Inbox``) with the
sandbox's customer simulator, unique customers, and one agent's browser window (``Screen``)."""

from __future__ import annotations

import os
import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from inbox_testkit.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Every run takes the screenshots (so taking them is tested); `make screenshots` keeps them in the docs,
# other runs leave the repository as it was.
SCREENSHOTS = Path(os.environ.get("INBOX_SCREENSHOTS_DIR") or Path(tempfile.gettempdir()) / "inbox-screenshots")
PASSWORD = "browser-test-password"
LAPTOP = {"width": 1366, "height": 800}
TABLET = {"width": 1024, "height": 768}

# Live updates travel sandbox -> ingest -> Kafka -> services -> Kafka -> gateway -> browser.
expect.set_options(timeout=20_000)


@dataclass
class AgentLogin:
    id: str
    email: str
    name: str
    token: str = ""


@dataclass
class Number:
    phone_number_id: str
    display_phone_number: str
    waba_id: str
    name: str


@dataclass
class Customer:
    wa_id: str
    name: str


def new_customer(first_name: str) -> Customer:
    """A customer no other test (nor an earlier run on the same servers) has used."""
    digits = str(uuid.uuid4().int)[:9]
    return Customer(wa_id=f"1555{digits}", name=f"{first_name} {secrets.token_hex(2).upper()}")


@dataclass
class Inbox:
    """A workspace of its own on the shared stack: two agents and two connected sandbox numbers."""

    stack: Stack
    workspace_id: str
    sara: AgentLogin  # admin
    omar: AgentLogin  # agent
    numbers: list[Number]
    states: dict[str, Any] = field(default_factory=dict)  # email -> the browser's signed-in storage

    @property
    def gateway(self) -> str:
        return self.stack.url("gateway")

    def api(self, agent: AgentLogin) -> httpx.Client:
        return httpx.Client(base_url=self.gateway, headers={"Authorization": f"Bearer {agent.token}"}, timeout=20)

    def simulate(self, kind: str, **fields: Any) -> dict[str, Any]:
        """A customer sends a message through the sandbox (a signed webhook to ingest, as Meta does)."""
        fields.setdefault("phone_number_id", self.numbers[0].phone_number_id)
        answer = httpx.post(f"{self.stack.url('sandbox')}/sandbox/simulate/{kind}", json=fields, timeout=20)
        answer.raise_for_status()
        result: dict[str, Any] = answer.json()
        assert result.get("status_code") == 200, f"ingest did not take the webhook: {result}"
        return result

    def timeline(self, agent: AgentLogin, conversation_id: str) -> list[dict[str, Any]]:
        """A conversation's timeline items (the newest page) through the API."""
        with self.api(agent) as client:
            answer = client.get(f"/api/conversations/{conversation_id}/timeline")
            answer.raise_for_status()
            items: list[dict[str, Any]] = answer.json()["items"]
            return items

    def conversation_of(self, agent: AgentLogin, wa_id: str, timeout: float = 20.0) -> dict[str, Any]:
        """A customer's conversation through the API, once the services have it."""
        deadline = time.monotonic() + timeout
        with self.api(agent) as client:
            while True:
                page = client.get("/api/conversations", params={"q": wa_id, "limit": 5}).json()
                found = [c for c in page.get("items", []) if c["customer"]["wa_id"] == wa_id]
                if found:
                    return found[0]
                if time.monotonic() > deadline:
                    raise AssertionError(f"no conversation for {wa_id} after {timeout}s: {page}")
                time.sleep(0.2)


@dataclass
class Screen:
    """One agent's browser window on the inbox."""

    page: Page
    agent: AgentLogin
    errors: list[str]  # uncaught errors of the page's scripts

    def row(self, customer: Customer) -> Locator:
        return self.page.locator("button.conv-row", has_text=customer.name)

    def search(self, text: str) -> None:
        self.page.get_by_role("searchbox", name="Search conversations").fill(text)

    def open_conversation(self, customer: Customer) -> None:
        self.row(customer).click()
        expect(self.page.get_by_role("heading", level=1, name=customer.name)).to_be_visible()

    def screenshot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), animations="disabled")
