"""Fixtures of the browser tests: the whole stack (``stack``, tests/conftest.py) serving the built web UI,
a workspace seeded through the real admin CLI and API, and Debian's Chromium driven by Playwright
(browsers cannot be downloaded here, so Playwright's own builds are never used)."""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Playwright, expect, sync_playwright

# The tests import their helpers (browser_kit) from this folder.
sys.path.insert(0, str(Path(__file__).parent))

from browser_kit import CHROMIUM, CHROMIUM_ARGS, LAPTOP, PASSWORD, AgentLogin, Inbox, Number, Screen

from inbox_core.events import Event
from inbox_core.events.commands import SyncTemplatesCommand
from inbox_core.kafka import make_broker, publish
from inbox_core.settings import InboxSettings
from inbox_core.topics import WHATSAPP_COMMANDS
from inbox_testkit.stack import STACK_SECRETS, Stack


def _login(gateway: str, email: str) -> str:
    answer = httpx.post(f"{gateway}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=20)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


async def _sync_templates(bootstrap: str, workspace_id: str, numbers: list[Number]) -> None:
    """Asks ingest (whatsapp.commands.v1) to fetch the new accounts' templates now, rather than at its next
    periodic sync."""
    settings = InboxSettings(kafka_bootstrap=bootstrap, mongo_url="mongodb://unused/", db_prefix="browser")
    broker = make_broker(settings, "browser-tests")
    await broker.start()
    try:
        for number in numbers:
            command = SyncTemplatesCommand(waba_id=number.waba_id, phone_number_id=number.phone_number_id)
            await publish(broker, WHATSAPP_COMMANDS, f"{number.phone_number_id}:",
                          Event.of(command, workspace_id=workspace_id, id=uuid.uuid4().hex))
    finally:
        await broker.stop()


@pytest.fixture(scope="module")
def inbox(stack: Stack) -> Inbox:
    """A fresh workspace: the first admin through the CLI (as an operator does), the second agent by invitation
    and two sandbox numbers of its own through the admin API, so that no other test shares a number or customer."""
    gateway = stack.url("gateway")
    workspace_id = stack.admin("create-workspace", "--name", "Browser shop", "--currency", "EUR")[
        "workspace"]["id"]
    tag = secrets.token_hex(3)
    sara_email = f"sara-{tag}@shop.test"
    created = stack.admin("create-agent", "--email", sara_email, "--name", "Sara", "--password", PASSWORD,
                         "--workspace", workspace_id, "--role", "admin")
    sara = AgentLogin(created["agent"]["id"], sara_email, "Sara", _login(gateway, sara_email))
    omar_email = f"omar-{tag}@shop.test"
    numbers: list[Number] = []
    with httpx.Client(base_url=gateway, headers={"Authorization": f"Bearer {sara.token}"}, timeout=30) as admin:
        invited = admin.post("/api/admin/invitations", json={"workspace_id": workspace_id, "email": omar_email,
                                                             "role": "agent"})
        assert invited.status_code == 201, invited.text
        accepted = httpx.post(f"{gateway}/api/invitations/{invited.json()['token']}/accept", timeout=30,
                              json={"name": "Omar", "password": PASSWORD})
        assert accepted.status_code == 200, accepted.text
        omar = AgentLogin(accepted.json()["agent"]["id"], omar_email, "Omar", _login(gateway, omar_email))
        for index, name in enumerate(("Shop", "Support")):
            digits = str(uuid.uuid4().int)[:12]
            number = Number(phone_number_id=f"9{digits}{index}", display_phone_number=f"1555{digits[:6]}{index}",
                            waba_id=f"8{digits}{index}", name=name)
            registered = httpx.post(f"{stack.url('sandbox')}/sandbox/numbers", timeout=20, json={
                "phone_number_id": number.phone_number_id, "display_phone_number": number.display_phone_number,
                "waba_id": number.waba_id, "verified_name": name})
            assert registered.status_code == 200, registered.text
            connected = admin.post("/api/admin/numbers", json={
                "workspace_id": workspace_id, "phone_number_id": number.phone_number_id,
                "display_phone_number": number.display_phone_number, "name": name, "waba_id": number.waba_id,
                "access_token": STACK_SECRETS["SANDBOX_ACCESS_TOKEN"]})
            assert connected.status_code == 201, connected.text
            numbers.append(number)
    # In a thread of its own: Playwright's sync API keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, _sync_templates(stack.infra.kafka_bootstrap, workspace_id, numbers)).result()
    return Inbox(stack, workspace_id, sara, omar, numbers)


@pytest.fixture(scope="module")
def ui_url(inbox: Inbox) -> str:
    """The gateway serves the built UI (web/dist) at ``/``."""
    url = inbox.gateway + "/"
    page = httpx.get(url, timeout=20)
    assert page.status_code == 200 and 'id="app"' in page.text, (
        f"the gateway does not serve the web UI at / (answered {page.status_code}); it is built with "
        "`cd web && npm ci && npm run build`")
    return url


@pytest.fixture(scope="module")
def playwright_driver(stack: Stack) -> Iterator[Playwright]:
    """Module-scoped, and started after the stack: while it runs, Playwright's sync API keeps an event loop
    running in the main thread, which asyncio.run (the stack's setup) and async tests cannot share."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install -y chromium"
    launched = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture
def open_screen(browser: Browser, inbox: Inbox, ui_url: str) -> Iterator[Callable[..., Screen]]:
    """Opens the inbox for an agent in a browser context of its own, signed in through the login form once
    per agent (later contexts reuse the session cookie, as a reopened tab does), and waits for the live
    stream to be connected."""
    contexts: list[BrowserContext] = []

    def open_for(agent: AgentLogin, viewport: dict[str, int] | None = None, init_script: str | None = None) -> Screen:
        state = inbox.states.get(agent.email)
        context = browser.new_context(viewport=viewport or LAPTOP, storage_state=state)  # type: ignore[arg-type]
        if init_script:  # runs in every page before the app's own code (stubs of browser APIs)
            context.add_init_script(init_script)
        contexts.append(context)
        page = context.new_page()
        screen = Screen(page, agent, [])
        page.on("pageerror", lambda exc: screen.errors.append(str(exc)))
        page.goto(ui_url)
        if state is None:
            expect(page.get_by_role("heading", name="Sign in to the inbox")).to_be_visible()
            if not inbox.states:
                screen.screenshot("login")
            page.get_by_label("Email").fill(agent.email)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".app[data-stream='open']")).to_be_visible()
        if state is None:
            inbox.states[agent.email] = context.storage_state()
        return screen

    yield open_for
    for context in contexts:
        context.close()
