"""Members and invitations in a real browser (Debian's Chromium) against the whole stack: an admin invites an
email and the link creates the account with the invitee's own password; an existing account signs in to
accept a second workspace; a password change signs out the agent's other session; a removed member's open
page loses the workspace. Each browser context here signs in through the form itself, so every one is a
session of its own (open_screen's later contexts share the first one's cookie)."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from browser_kit import LAPTOP, PASSWORD, AgentLogin, Inbox, Screen, new_customer
from playwright.sync_api import Browser, BrowserContext, Page, expect

OpenScreen = Callable[..., Screen]
NewPage = Callable[[], Page]

INBOX_OPEN = ".app[data-stream='open']"


def login_token(inbox: Inbox, email: str, password: str = PASSWORD) -> str:
    answer = httpx.post(f"{inbox.gateway}/api/auth/login", json={"email": email, "password": password}, timeout=20)
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["token"]
    return token


def make_member(inbox: Inbox, name: str, role: str = "agent") -> AgentLogin:
    """A new account in the inbox's workspace, made as the UI does it: Sara invites, the invitee accepts."""
    email = f"{name.lower()}-{secrets.token_hex(3)}@shop.test"
    with inbox.api(inbox.sara) as admin:
        invited = admin.post("/api/admin/invitations", json={"workspace_id": inbox.workspace_id, "email": email,
                                                             "role": role})
        assert invited.status_code == 201, invited.text
    accepted = httpx.post(f"{inbox.gateway}/api/invitations/{invited.json()['token']}/accept", timeout=30,
                          json={"name": name, "password": PASSWORD})
    assert accepted.status_code == 200, accepted.text
    return AgentLogin(accepted.json()["agent"]["id"], email, name, login_token(inbox, email))


def workspaces_of(inbox: Inbox, token: str) -> dict[str, str]:
    me = httpx.get(f"{inbox.gateway}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert me.status_code == 200, me.text
    return {w["name"]: w["role"] for w in me.json()["workspaces"]}


@pytest.fixture
def new_page(browser: Browser) -> Iterator[NewPage]:
    """A page in a fresh browser context (no cookie: a browser that never saw the inbox)."""
    contexts: list[BrowserContext] = []
    pages: list[Page] = []
    errors: list[str] = []

    def make() -> Page:
        context = browser.new_context(viewport=LAPTOP)  # type: ignore[arg-type]
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        pages.append(page)
        return page

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def sign_in(page: Page, ui_url: str, email: str, password: str = PASSWORD) -> None:
    page.goto(ui_url)
    expect(page.get_by_role("heading", name="Sign in to the inbox")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(INBOX_OPEN)).to_be_visible()


def test_an_admin_invites_an_email_and_the_link_creates_the_account_in_a_fresh_browser(
        inbox: Inbox, ui_url: str, open_screen: OpenScreen, new_page: NewPage) -> None:
    sara = open_screen(inbox.sara)
    sara.page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=inbox.gateway)
    sara.page.get_by_role("button", name="Team").click()
    team = sara.page.get_by_role("dialog", name="Team")
    members = team.get_by_role("list", name="Members")
    expect(members.get_by_test_id("member").filter(has_text="Sara")).to_contain_text("(you)")
    expect(members.get_by_test_id("member").filter(has_text="Omar")).to_contain_text("Agent")
    # No "Remove" for oneself: the API refuses it, so the dialog does not offer it.
    expect(team.get_by_role("button", name="Remove Sara")).to_have_count(0)

    email = f"nia-{secrets.token_hex(3)}@shop.test"
    team.get_by_label("Email to invite").fill(email)
    team.get_by_label("Role").select_option("agent")
    team.get_by_role("button", name="Invite", exact=True).click()
    link_box = team.get_by_label("Acceptance link")
    expect(link_box).to_have_value(re.compile(r"#/invite/[\w-]{20,}$"))
    link = link_box.input_value()
    assert link.startswith(f"{ui_url}#/invite/"), link
    expect(team.get_by_test_id("invite-link-note")).to_contain_text("This link is shown only now")
    team.get_by_role("button", name="Copy").click()
    expect(team.get_by_role("status").filter(has_text="Copied")).to_be_visible()
    assert sara.page.evaluate("navigator.clipboard.readText()") == link
    expect(team.get_by_test_id("invitation-row").filter(has_text=email)).to_contain_text("Agent")
    sara.screenshot("team-invite")

    # A second invitation, revoked: it leaves the list and its token stops working.
    later = f"later-{secrets.token_hex(3)}@shop.test"
    team.get_by_label("Email to invite").fill(later)
    team.get_by_role("button", name="Invite", exact=True).click()
    expect(team.get_by_test_id("invite-link")).to_contain_text(later)
    later_token = link_box.input_value().split("#/invite/")[1]
    team.get_by_role("button", name=f"Revoke the invitation of {later}").click()
    expect(team.get_by_test_id("invitation-row").filter(has_text=later)).to_have_count(0)
    expect(team.get_by_test_id("invitation-row").filter(has_text=email)).to_have_count(1)
    assert httpx.get(f"{inbox.gateway}/api/invitations/{later_token}", timeout=20).status_code == 404

    invitee = new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Join Browser shop")).to_be_visible()
    expect(invitee.get_by_test_id("invite-email")).to_have_text(email)
    expect(invitee.get_by_test_id("invite-role")).to_have_text("Agent")
    invitee.get_by_label("Your name").fill("Nia")
    invitee.get_by_label("Password", exact=True).fill("short")
    invitee.get_by_label("Confirm the password").fill("short")
    create = invitee.get_by_role("button", name="Create my account and join")
    create.click()
    expect(invitee.get_by_role("alert")).to_have_text("The password needs at least 10 characters.")
    invitee.get_by_label("Password", exact=True).fill("nias own password")
    invitee.get_by_label("Confirm the password").fill("nias own passwrod")
    create.click()
    expect(invitee.get_by_role("alert")).to_have_text("The two passwords are not the same.")
    invitee.get_by_label("Confirm the password").fill("nias own password")
    Screen(invitee, AgentLogin("", email, "Nia"), []).screenshot("invite-accept")
    create.click()

    expect(invitee.locator(INBOX_OPEN)).to_be_visible()
    expect(invitee.locator(".me-name")).to_have_text("Nia")
    expect(invitee.get_by_test_id("workspaces")).to_have_text("Browser shop")
    expect(invitee.get_by_test_id("notice-info").filter(has_text="You joined Browser shop.")).to_be_visible()
    assert "invite" not in invitee.url  # the used token left the address
    # An agent, not an admin: no Team button. And the password is the one Nia chose.
    expect(invitee.get_by_role("button", name="Team")).to_have_count(0)
    assert workspaces_of(inbox, login_token(inbox, email, "nias own password")) == {"Browser shop": "agent"}

    # The token worked once: the same link now says so.
    again = new_page()
    again.goto(link)
    expect(again.get_by_role("heading", name="This invitation cannot be used")).to_be_visible()
    expect(again.get_by_test_id("invite-error")).to_contain_text("was used already")

    # Sara's dialog, reopened, lists Nia as a member and the invitation as no longer open.
    team.get_by_role("button", name="Close").first.click()
    expect(team).to_be_hidden()
    sara.page.get_by_role("button", name="Team").click()
    expect(members.get_by_test_id("member").filter(has_text="Nia")).to_be_visible()
    expect(team.get_by_test_id("invitation-row").filter(has_text=email)).to_have_count(0)
    assert not sara.errors


def test_an_existing_account_signs_in_as_itself_to_accept_a_second_workspace(
        inbox: Inbox, ui_url: str, new_page: NewPage) -> None:
    lina = make_member(inbox, "Lina", role="admin")
    second = inbox.stack.admin("create-workspace", "--name", "Second shop", "--currency", "EUR")["workspace"]["id"]
    boss_email = f"boss-{secrets.token_hex(3)}@second.test"
    inbox.stack.admin("create-agent", "--email", boss_email, "--name", "Boss", "--password", PASSWORD,
                      "--workspace", second, "--role", "admin")
    invited = httpx.post(f"{inbox.gateway}/api/admin/invitations", timeout=20,
                         headers={"Authorization": f"Bearer {login_token(inbox, boss_email)}"},
                         json={"workspace_id": second, "email": lina.email, "role": "admin"})
    assert invited.status_code == 201, invited.text
    link = f"{ui_url}#/invite/{invited.json()['token']}"

    # The browser is signed in as someone else (Sara): it must sign out first.
    page = new_page()
    sign_in(page, ui_url, inbox.sara.email)
    page.goto(link)
    expect(page.get_by_role("heading", name="Sign out to accept")).to_be_visible()
    expect(page.get_by_test_id("invite-other-account")).to_contain_text(f"You are signed in as {inbox.sara.email}")
    expect(page.get_by_test_id("invite-workspace")).to_have_text("Second shop")
    page.get_by_role("button", name="Sign out").click()

    expect(page.get_by_role("heading", name=f"Sign in as {lina.email} to accept")).to_be_visible()
    email = page.get_by_label("Email")
    expect(email).to_have_value(lina.email)
    expect(email).to_have_attribute("readonly", "")
    expect(page.get_by_test_id("invite-role")).to_have_text("Admin")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or the password is not right.")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    expect(page.locator(INBOX_OPEN)).to_be_visible()
    expect(page.locator(".me-name")).to_have_text("Lina")
    expect(page.get_by_test_id("notice-info").filter(has_text="You joined Second shop.")).to_be_visible()
    expect(page.get_by_test_id("workspaces")).to_have_text(
        re.compile("^(Browser shop · Second shop|Second shop · Browser shop)$"))
    assert workspaces_of(inbox, lina.token) == {"Browser shop": "admin", "Second shop": "admin"}
    # Admin of both: the Team dialog has a workspace selector.
    page.get_by_role("button", name="Team").click()
    team = page.get_by_role("dialog", name="Team")
    team.get_by_label("Workspace").select_option(label="Second shop")
    expect(team.get_by_role("heading", name="Members of Second shop")).to_be_visible()
    expect(team.get_by_test_id("member").filter(has_text="Boss")).to_contain_text("Admin")
    expect(team.get_by_test_id("member").filter(has_text="Lina")).to_contain_text("(you)")
    expect(team.get_by_test_id("member").filter(has_text="Sara")).to_have_count(0)
    team.get_by_label("Workspace").select_option(label="Browser shop")
    expect(team.get_by_role("heading", name="Members of Browser shop")).to_be_visible()
    expect(team.get_by_test_id("member").filter(has_text="Sara")).to_contain_text("Admin")
    # The sign-out ended that browser's session only: Sara's other sessions live on.
    with httpx.Client(base_url=inbox.gateway, timeout=20) as client:
        assert client.get("/api/me", headers={"Authorization": f"Bearer {inbox.sara.token}"}).status_code == 200


def test_a_password_change_signs_out_the_agents_other_session(
        inbox: Inbox, ui_url: str, new_page: NewPage) -> None:
    kim = make_member(inbox, "Kim")
    laptop, phone = new_page(), new_page()
    sign_in(laptop, ui_url, kim.email)
    sign_in(phone, ui_url, kim.email)

    laptop.get_by_role("button", name="Change password").click()
    dialog = laptop.get_by_role("dialog", name="Change password")
    dialog.get_by_label("Current password").fill("not my password")
    dialog.get_by_label("New password", exact=True).fill("kims new password")
    dialog.get_by_label("Confirm the new password").fill("kims new password")
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_role("alert")).to_have_text("The current password is not right.")
    # Refused: the other session lives on.
    expect(phone.locator(INBOX_OPEN)).to_be_visible()

    dialog.get_by_label("Current password").fill(PASSWORD)
    dialog.get_by_role("button", name="Change password").click()
    expect(dialog.get_by_test_id("password-changed")).to_contain_text("other sessions")
    expect(dialog.get_by_test_id("password-changed")).to_contain_text("signed out")

    # The phone's open page is signed out by itself (its stream is ended by the server).
    expect(phone.get_by_role("heading", name="Sign in to the inbox")).to_be_visible()
    # The laptop, which changed it, stays signed in, after a reload too.
    dialog.get_by_role("button", name="Close").first.click()
    laptop.reload()
    expect(laptop.locator(INBOX_OPEN)).to_be_visible()
    phone.get_by_label("Email").fill(kim.email)
    phone.get_by_label("Password").fill(PASSWORD)
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.get_by_role("alert")).to_have_text("The email or the password is not right.")
    phone.get_by_label("Password").fill("kims new password")
    phone.get_by_role("button", name="Sign in").click()
    expect(phone.locator(INBOX_OPEN)).to_be_visible()


def test_an_admin_turns_on_auto_assignment_and_a_new_customer_is_assigned_to_someone_online(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    sara = open_screen(inbox.sara)
    expect(sara.page.locator(INBOX_OPEN)).to_be_visible()  # her stream is open: presence has her online
    sara.page.get_by_role("button", name="Team").click()
    team = sara.page.get_by_role("dialog", name="Team")
    switch = team.get_by_role("checkbox", name="Assign new customer messages automatically")
    expect(switch).to_be_enabled()
    expect(switch).not_to_be_checked()  # off by default
    switch.check()
    expect(sara.page.get_by_test_id("notice-info").filter(
        has_text="New conversations are now assigned automatically.")).to_be_visible()
    sara.screenshot("auto-assign-on")
    with inbox.api(inbox.sara) as api:
        assert api.get(f"/api/admin/workspaces/{inbox.workspace_id}").json()["workspace"]["auto_assign"] == (
            "round_robin")
    team.get_by_role("button", name="Close").click()

    try:
        nina = new_customer("Nina")
        inbox.simulate("text", wa_id=nina.wa_id, name=nina.name, body="Do you have this in blue?")
        # Sara is online; so may be members from the module's earlier tests (their pages, within presence's 45 s):
        # whoever of them has the fewest open conversations gets it, and the list and the timeline say who,
        # without a reload.
        conversation = inbox.conversation_of(inbox.sara, nina.wa_id)
        deadline = time.monotonic() + 20  # assigned right after the message is in (its own write)
        with inbox.api(inbox.sara) as api:
            while conversation["assignee"] is None and time.monotonic() < deadline:
                time.sleep(0.2)
                conversation = api.get(f"/api/conversations/{conversation['id']}").json()
        assignee = conversation["assignee"]
        with inbox.api(inbox.sara) as api:
            members = {m["id"] for m in api.get("/api/agents", params={"workspace": inbox.workspace_id}).json()[
                "items"]}
        assert assignee is not None and assignee["id"] in members, conversation
        shown = "You" if assignee["id"] == inbox.sara.id else assignee["name"]
        expect(sara.row(nina).get_by_test_id("row-assignee")).to_have_text(shown)
        sara.open_conversation(nina)
        expect(sara.page.get_by_test_id("activity").filter(
            has_text=f"Assigned automatically to {assignee['name']}")).to_be_visible()
        assert not sara.errors
    finally:
        with inbox.api(inbox.sara) as api:  # the module's other tests expect new conversations unassigned
            api.patch(f"/api/admin/workspaces/{inbox.workspace_id}", json={"auto_assign": "off"})


# Last in the module: Omar is the fixture's (module-scoped) agent, and stays removed.
def test_a_removed_member_loses_the_workspace_on_his_open_page(inbox: Inbox, open_screen: OpenScreen) -> None:
    quinn = new_customer("Quinn")
    inbox.simulate("text", wa_id=quinn.wa_id, name=quinn.name, body="Is the shop open on Sunday?")
    omar = open_screen(inbox.omar)
    expect(omar.row(quinn)).to_be_visible()

    sara = open_screen(inbox.sara)
    sara.page.get_by_role("button", name="Team").click()
    team = sara.page.get_by_role("dialog", name="Team")
    team.get_by_role("button", name="Remove Omar").click()
    confirm = sara.page.get_by_role("dialog", name="Remove Omar?")
    expect(confirm).to_contain_text("loses access to Browser shop at once")
    confirm.get_by_role("button", name="Cancel").click()
    expect(confirm).to_be_hidden()
    expect(team.get_by_test_id("member").filter(has_text="Omar")).to_be_visible()  # cancelled: still there
    team.get_by_role("button", name="Remove Omar").click()
    confirm.get_by_role("button", name="Remove Omar").click()
    expect(confirm).to_be_hidden()
    expect(team.get_by_test_id("member").filter(has_text="Omar")).to_have_count(0)
    removed = sara.page.get_by_test_id("notice-info").filter(has_text="Omar was removed from Browser shop.")
    expect(removed).to_be_visible()
    assert workspaces_of(inbox, inbox.omar.token) == {}

    # Omar's open page is told at once (the stream's workspaces event): no request of his is needed.
    expect(omar.page.get_by_test_id("no-workspace")).to_be_visible()
    expect(omar.page.get_by_test_id("notice-error").filter(
        has_text="You are no longer a member of Browser shop.")).to_be_visible()
    expect(omar.row(quinn)).to_have_count(0)
    omar.screenshot("removed-member")
    assert not sara.errors and not omar.errors
