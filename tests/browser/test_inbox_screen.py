"""The three-column screen in a real browser (Debian's Chromium), against the whole stack with the sandbox
standing in for Meta: what an agent sees as customers write, as replies are delivered and read, as a
colleague types, when the 24-hour window has closed, and when an order is made from the conversation.
Screenshots of the main states are taken; `make screenshots` saves them to docs/screenshots/."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
from browser_kit import TABLET, Inbox, Screen, new_customer
from playwright.sync_api import expect

from inbox.conversations.v1 import conversations_pb2, conversations_pb2_grpc
from inbox_conversations import domain
from inbox_testkit.stack import Stack

OpenScreen = Callable[..., Screen]

TYPING = "Sara is typing…"

# Records every delivery status the newest outbound bubble shows, in order, as the stream updates it.
RECORD_STATUSES = """() => {
  window.__statuses = [];
  const read = () => {
    const bubbles = document.querySelectorAll("[data-testid=message][data-direction=out]");
    const ticks = bubbles.length ? bubbles[bubbles.length - 1].querySelector("[data-status]") : null;
    const status = ticks && ticks.getAttribute("data-status");
    if (status && window.__statuses[window.__statuses.length - 1] !== status) window.__statuses.push(status);
  };
  new MutationObserver(read).observe(document.body, {subtree: true, childList: true, attributes: true,
                                                      attributeFilter: ["data-status"]});
}"""
ORDER = ["pending", "sent", "delivered", "read"]


def wait_stored(stack: Stack, workspace_id: str, wa_id: str, timeout: float = 30.0) -> None:
    """Until the conversations service has the customer's conversation (asked directly, over gRPC)."""
    deadline = time.monotonic() + timeout
    with grpc.insecure_channel(stack.grpc_target("conversations")) as channel:
        service = conversations_pb2_grpc.ConversationsServiceStub(channel)
        while time.monotonic() < deadline:
            found = service.ListConversations(conversations_pb2.ListConversationsRequest(
                workspace_id=workspace_id, query=wa_id, limit=5), timeout=10)
            if any(c.customer.wa_id == wa_id for c in found.items):
                return
            time.sleep(0.2)
    raise AssertionError(f"the conversation of {wa_id} was not stored in {timeout}s")


def test_a_customer_message_tops_the_list_with_a_badge_and_opening_it_clears_the_badge(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    sara = open_screen(inbox.sara)
    omar = open_screen(inbox.omar)
    nora, pablo = new_customer("Nora"), new_customer("Pablo")
    top = sara.page.locator("button.conv-row").first
    # Meta's timestamps are whole seconds: three messages a second apart have a certain order.
    now = int(time.time())

    inbox.simulate("text", wa_id=nora.wa_id, name=nora.name, body="Hello! Has my order shipped?",
                   timestamp=str(now - 2))
    expect(top).to_contain_text(nora.name)
    expect(sara.row(nora).get_by_test_id("unread-badge")).to_have_text("1")

    inbox.simulate("text", wa_id=pablo.wa_id, name=pablo.name, body="Do you have this in red?",
                   timestamp=str(now - 1))
    expect(top).to_contain_text(pablo.name)
    # Nora writes again: her conversation moves back to the top, live, with two unread.
    inbox.simulate("text", wa_id=nora.wa_id, name=nora.name, body="It was order 1042", timestamp=str(now))
    expect(top).to_contain_text(nora.name)
    expect(top.get_by_test_id("unread-badge")).to_have_text("2")
    expect(top).to_contain_text("It was order 1042")
    expect(omar.row(nora).get_by_test_id("unread-badge")).to_have_text("2")
    sara.screenshot("inbox-list")

    sara.open_conversation(nora)
    expect(sara.page.get_by_test_id("message").filter(has_text="It was order 1042")).to_be_visible()
    expect(sara.row(nora).get_by_test_id("unread-badge")).to_have_count(0)
    # The server marked it read: a colleague's list loses the badge live, and the API agrees.
    expect(omar.row(nora).get_by_test_id("unread-badge")).to_have_count(0)
    assert inbox.conversation_of(inbox.sara, nora.wa_id)["unread_count"] == 0
    expect(omar.row(pablo).get_by_test_id("unread-badge")).to_have_text("1")
    assert not sara.errors and not omar.errors


def test_four_messages_of_one_second_are_shown_in_the_order_they_came(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    """A question, an image, a voice note and a reply quoting the question, all stamped the same second by
    Meta: shown in the order they came, live and after a reload. The wamids are chosen so that their ids
    sort backwards (the old order by time, then id, showed them reversed)."""
    sheena = new_customer("Sheena")
    wamids = sorted((f"wamid.tie.{uuid.uuid4().hex}" for _ in range(4)),
                    key=lambda w: domain.inbound_message_id(inbox.workspace_id, w), reverse=True)
    second = int(time.time()) - 5
    inbox.simulate("text", wa_id=sheena.wa_id, name=sheena.name, wamid=wamids[0], timestamp=second,
                   body="Is the linen shirt back in stock?")
    sara = open_screen(inbox.sara)
    sara.open_conversation(sheena)
    inbox.simulate("image", wa_id=sheena.wa_id, name=sheena.name, wamid=wamids[1], timestamp=second,
                   caption="This one")
    inbox.simulate("audio", wa_id=sheena.wa_id, name=sheena.name, wamid=wamids[2], timestamp=second)
    inbox.simulate("text", wa_id=sheena.wa_id, name=sheena.name, wamid=wamids[3], timestamp=second,
                   body="In size L please", context={"message_id": wamids[0]})
    bubbles = sara.page.get_by_test_id("message")
    expected = ["text", "image", "audio", "text"]
    expect(bubbles).to_have_count(4)
    for shown in ("live", "after a reload"):
        assert [bubbles.nth(n).get_attribute("data-type") for n in range(4)] == expected, shown
        expect(bubbles.first).to_contain_text("Is the linen shirt back in stock?")
        expect(bubbles.last).to_contain_text("In size L please")
        if shown == "live":
            sara.page.reload()
            sara.open_conversation(sheena)
            expect(bubbles).to_have_count(4)
    assert not sara.errors


def test_resolve_snooze_and_the_customer_reopening(inbox: Inbox, open_screen: OpenScreen) -> None:
    """Sara resolves a conversation (it moves to Resolved, a colleague's Open list loses it), the customer
    writes again (open again, automatically), then she snoozes it for an hour and reopens it by hand."""
    mila = new_customer("Mila")
    inbox.simulate("text", wa_id=mila.wa_id, name=mila.name, body="Can I change my delivery address?")
    sara = open_screen(inbox.sara)
    omar = open_screen(inbox.omar)
    expect(omar.row(mila)).to_be_visible()
    sara.open_conversation(mila)
    header = sara.page.locator("header.conv-header")
    views = sara.page.get_by_role("tablist", name="Conversations by status")

    header.get_by_role("button", name="Resolve").click()
    expect(header).to_contain_text("resolved")
    expect(sara.page.locator("[data-testid=activity][data-action=resolved]")).to_contain_text(
        f"{inbox.sara.name} resolved the conversation")
    expect(omar.row(mila)).to_have_count(0)  # the colleague's Open view, live
    views.get_by_role("tab", name="Resolved").click()
    expect(sara.row(mila)).to_be_visible()
    sara.screenshot("resolved-view")

    inbox.simulate("text", wa_id=mila.wa_id, name=mila.name, body="Sorry, one more thing")
    expect(sara.page.locator("[data-testid=activity][data-action=reopened]")).to_contain_text(
        "Reopened: the customer wrote")
    expect(header.get_by_role("button", name="Resolve")).to_be_visible()
    expect(omar.row(mila)).to_be_visible()
    views.get_by_role("tab", name="Open").click()
    expect(sara.row(mila)).to_be_visible()

    header.get_by_label("Snooze the conversation").select_option(label="For an hour")
    expect(header).to_contain_text(re.compile(r"snoozed until (today|tomorrow) \d\d:\d\d"))
    expect(omar.row(mila)).to_have_count(0)
    views.get_by_role("tab", name="Snoozed").click()
    expect(sara.row(mila)).to_be_visible()
    header.get_by_role("button", name="Reopen").click()
    expect(header.get_by_role("button", name="Resolve")).to_be_visible()
    expect(sara.page.locator("[data-testid=activity][data-action=reopened]")).to_have_count(2)
    expect(omar.row(mila)).to_be_visible()
    assert not sara.errors and not omar.errors


def test_a_colleague_who_has_the_conversation_open_is_shown(inbox: Inbox, open_screen: OpenScreen) -> None:
    ines, tom = new_customer("Ines"), new_customer("Tom")
    inbox.simulate("text", wa_id=ines.wa_id, name=ines.name, body="Do you deliver on Saturdays?")
    inbox.simulate("text", wa_id=tom.wa_id, name=tom.name, body="Hi")
    sara = open_screen(inbox.sara)
    omar = open_screen(inbox.omar)
    sara.open_conversation(ines)
    viewing = sara.page.get_by_test_id("viewing")
    expect(viewing).to_have_count(0)
    omar.open_conversation(ines)
    expect(viewing).to_have_text(f"{inbox.omar.name} is also viewing")
    expect(omar.page.get_by_test_id("viewing")).to_have_text(f"{inbox.sara.name} is also viewing")
    omar.open_conversation(tom)  # he moves on: gone from Sara's header, live
    expect(viewing).to_have_count(0)
    sara.page.wait_for_timeout(1500)  # past the web's grace for a "left": it must not end his new viewing
    sara.open_conversation(tom)
    expect(viewing).to_have_text(f"{inbox.omar.name} is also viewing")
    assert not sara.errors and not omar.errors


# The browser's Notification and visibility, recorded and steered by the test: headless Chromium shows no
# notifications, and a tab cannot be hidden from the outside.
NOTIFICATIONS = """
window.__notices = [];
window.__hidden = false;
class RecordedNotification {
  static permission = "granted";
  static requestPermission() { return Promise.resolve("granted"); }
  constructor(title, options) { window.__notices.push({ title, body: options && options.body }); }
  close() {}
}
window.Notification = RecordedNotification;
Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
"""


def test_a_new_message_while_the_tab_is_hidden_raises_a_notification(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    """Only while hidden, only for a conversation that is the agent's or nobody's; the title counts unread."""
    kai, lea = new_customer("Kai"), new_customer("Lea")
    inbox.simulate("text", wa_id=lea.wa_id, name=lea.name, body="First question")
    sara = open_screen(inbox.sara, init_script=NOTIFICATIONS)
    expect(sara.row(lea)).to_be_visible()
    lea_id = inbox.conversation_of(inbox.sara, lea.wa_id)["id"]
    with inbox.api(inbox.omar) as omar:  # Lea's conversation is Omar's: none of Sara's business
        assert omar.post(f"/api/conversations/{lea_id}/assign", json={"agent_id": inbox.omar.id}).status_code == 200
    expect(sara.page).to_have_title(re.compile(r"^\(\d+\) Inbox$"))

    inbox.simulate("text", wa_id=kai.wa_id, name=kai.name, body="Visible tab, no notice")
    expect(sara.row(kai)).to_contain_text("Visible tab, no notice")
    sara.page.evaluate("window.__hidden = true")
    inbox.simulate("text", wa_id=lea.wa_id, name=lea.name, body="Omar's customer again")
    inbox.simulate("text", wa_id=kai.wa_id, name=kai.name, body="Are you there?")
    expect(sara.row(kai)).to_contain_text("Are you there?")
    expect(sara.row(lea)).to_contain_text("Omar's customer again")
    sara.page.wait_for_function("window.__notices.length >= 1")
    notices = sara.page.evaluate("window.__notices")
    assert [(n["title"], n["body"]) for n in notices] == [(kai.name, "Are you there?")], notices
    assert not sara.errors


def test_the_double_reply_guard_asks_before_sending(inbox: Inbox, open_screen: OpenScreen) -> None:
    """Omar answers while Sara's screen has not shown it yet (her stream is cut): her send is held with the
    question, and goes out when she insists."""
    noor = new_customer("Noor")
    inbox.simulate("text", wa_id=noor.wa_id, name=noor.name, body="Do you have it in green?")
    sara = open_screen(inbox.sara)
    sara.page.route("**/api/stream*", lambda route: route.abort())
    sara.page.reload()
    sara.open_conversation(noor)
    expect(sara.page.get_by_test_id("message").filter(has_text="Do you have it in green?")).to_be_visible()
    conv = inbox.conversation_of(inbox.sara, noor.wa_id)["id"]
    with inbox.api(inbox.omar) as omar:
        sent = omar.post(f"/api/conversations/{conv}/messages", json={"type": "text", "text": "Yes, in M and L."})
        assert sent.status_code == 202, sent.text
    box = sara.page.get_by_label("Reply to the customer")
    box.fill("Let me check for you")
    box.press("Enter")
    question = sara.page.get_by_role("alertdialog", name="A colleague replied")
    expect(question).to_contain_text(f"{inbox.omar.name} replied")
    expect(question).to_contain_text("send anyway?")
    expect(box).to_have_value("Let me check for you")  # nothing was sent
    assert [m["text"] for m in inbox.timeline(inbox.sara, conv) if m.get("direction") == "out"] == [
        "Yes, in M and L."]
    question.get_by_role("button", name="Send anyway").click()
    expect(question).to_have_count(0)
    expect(sara.page.get_by_test_id("message").filter(has_text="Let me check for you")).to_be_visible()
    assert not sara.errors


def test_a_canned_reply_added_by_the_admin_is_inserted_with_the_customers_first_name(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    """Sara (an admin) adds a canned reply in its dialog; Omar types "/" and part of its shortcut in the
    composer, the picker offers it, and Enter puts its text in the box with the customer's first name."""
    shortcut = f"thanks{uuid.uuid4().hex[:6]}"
    sara = open_screen(inbox.sara)
    sara.page.get_by_role("button", name="Replies").click()
    dialog = sara.page.get_by_role("dialog", name="Canned replies")
    dialog.get_by_label("Shortcut").fill(shortcut)
    dialog.get_by_label("Title").fill("Thanks for the order")
    dialog.get_by_label("Text").fill("Hi {{customer.first_name}}, thanks for your order! {{agent.name}}")
    dialog.get_by_role("button", name="Add reply").click()
    expect(dialog.get_by_test_id("reply-row").filter(has_text=f"/{shortcut}")).to_be_visible()
    dialog.get_by_label("Shortcut").fill(shortcut)  # the same shortcut again: refused, said why
    dialog.get_by_label("Text").fill("again")
    dialog.get_by_role("button", name="Add reply").click()
    expect(dialog.get_by_role("alert")).to_contain_text("already used")
    assert not sara.errors

    lina = new_customer("Lina")
    inbox.simulate("text", wa_id=lina.wa_id, name=lina.name, body="Thanks, it arrived!")
    omar = open_screen(inbox.omar)
    omar.open_conversation(lina)
    box = omar.page.get_by_label("Reply to the customer")
    box.press_sequentially("Great! /" + shortcut[:8], delay=20)
    picker = omar.page.get_by_test_id("reply-picker")
    expect(picker.get_by_role("option", name=f"/{shortcut}")).to_be_visible()
    expect(picker.get_by_role("option")).to_have_count(1)
    box.press("Enter")
    expect(picker).to_have_count(0)
    expect(box).to_have_value(f"Great! Hi Lina, thanks for your order! {inbox.omar.name}")
    conv = inbox.conversation_of(inbox.omar, lina.wa_id)["id"]
    assert [m for m in inbox.timeline(inbox.omar, conv) if m.get("direction") == "out"] == []  # inserted, not sent
    box.press("Enter")
    expect(omar.page.get_by_test_id("message").filter(has_text="thanks for your order!")).to_be_visible()
    assert not omar.errors


def test_a_mention_in_a_note_reaches_the_colleague(inbox: Inbox, open_screen: OpenScreen) -> None:
    """Sara types "@Om" in a note, picks Omar, and adds it: the note shows the mention; Omar, with another
    conversation open, is told at once, sees the @ badge, finds it under Mentions, and opening it clears it."""
    ines, other = new_customer("Ines"), new_customer("Theo")
    inbox.simulate("text", wa_id=ines.wa_id, name=ines.name, body="Can I pay by bank transfer?")
    inbox.simulate("text", wa_id=other.wa_id, name=other.name, body="Hello")
    omar = open_screen(inbox.omar)
    omar.open_conversation(other)
    sara = open_screen(inbox.sara)
    sara.open_conversation(ines)
    sara.page.get_by_role("button", name="Note", exact=True).click()
    box = sara.page.get_by_label("Internal note")
    box.press_sequentially("Bank transfer is fine? @Om", delay=20)
    picker = sara.page.get_by_test_id("mention-picker")
    expect(picker.get_by_role("option", name="Omar")).to_be_visible()
    box.press("Enter")
    expect(picker).to_have_count(0)
    expect(box).to_have_value("Bank transfer is fine? @Omar ")
    box.press_sequentially("please confirm", delay=10)
    box.press("Enter")
    note = sara.page.get_by_test_id("note").filter(has_text="please confirm")
    expect(note.get_by_test_id("mention")).to_have_text("@Omar")

    expect(omar.page.get_by_test_id("notice-info").filter(has_text="Sara mentioned you: Bank transfer")).to_be_visible()
    expect(omar.row(ines).get_by_test_id("mention-badge")).to_be_visible()
    omar.page.get_by_role("button", name="Mentions", exact=True).click()
    expect(omar.page.locator("button.conv-row")).to_have_count(1)
    expect(omar.row(ines)).to_be_visible()
    omar.open_conversation(ines)
    expect(omar.page.get_by_test_id("note").filter(has_text="please confirm")).to_be_visible()
    conv = inbox.conversation_of(inbox.omar, ines.wa_id)["id"]
    with inbox.api(inbox.omar) as api:
        deadline = time.monotonic() + 20
        while api.get(f"/api/conversations/{conv}").json()["unseen_mentions"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert api.get(f"/api/conversations/{conv}").json()["unseen_mentions"] == 0  # opened: read
    assert not sara.errors and not omar.errors


def test_a_reply_shows_its_ticks_as_the_sandbox_reports_delivered_and_read(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    lucia = new_customer("Lucia")
    inbox.simulate("text", wa_id=lucia.wa_id, name=lucia.name, body="Is the blue dress available in M?")
    inbox.simulate("image", wa_id=lucia.wa_id, name=lucia.name, caption="This one")
    sara = open_screen(inbox.sara)
    sara.open_conversation(lucia)
    expect(sara.page.locator("[data-testid=message][data-type=image] img")).to_be_visible()
    sara.page.evaluate(RECORD_STATUSES)

    reply = "Yes, size M is in stock. Shall I reserve one for you?"
    box = sara.page.get_by_label("Reply to the customer")
    box.fill(reply)
    box.press("Enter")
    bubble = sara.page.get_by_test_id("message").filter(has_text=reply)
    expect(bubble).to_have_attribute("data-direction", "out")
    expect(bubble.locator("[data-status]")).to_have_attribute("data-status", "read")
    expect(bubble.locator("[data-status]")).to_have_attribute("aria-label", "Read")
    seen = sara.page.evaluate("window.__statuses")
    assert seen[-1] == "read" and seen == sorted(seen, key=ORDER.index), seen
    # The list row shows the reply with its ticks too.
    expect(sara.row(lucia).locator("[data-status]")).to_have_attribute("data-status", "read")
    expect(box).to_have_value("")
    sara.screenshot("conversation")
    assert not sara.errors


def test_every_kind_of_customer_message_is_shown(inbox: Inbox, open_screen: OpenScreen) -> None:
    """Images and video shown, audio playable, documents downloadable (all through GET /api/media/{id}),
    locations and contacts readable, replies quoting their message, reactions on it, notes team-only."""
    rosa = new_customer("Rosa")
    asked = inbox.simulate("text", wa_id=rosa.wa_id, name=rosa.name, body="Which sizes does the coat come in?")
    for kind, extra in [("image", {"caption": "The grey coat"}), ("video", {}), ("audio", {"voice": True}),
                        ("document", {"filename": "receipt-1042.pdf", "caption": "My receipt"}),
                        ("location", {"latitude": 40.4168, "longitude": -3.7038, "location_name": "Home",
                                      "address": "Calle Mayor 1, Madrid"}),
                        ("contacts", {})]:
        inbox.simulate(kind, wa_id=rosa.wa_id, name=rosa.name, **extra)
    inbox.simulate("text", wa_id=rosa.wa_id, name=rosa.name, body="Also in black?",
                   context={"message_id": asked["wamid"]})
    inbox.simulate("reaction", wa_id=rosa.wa_id, name=rosa.name, message_id=asked["wamid"], emoji="👍")

    sara = open_screen(inbox.sara)
    sara.open_conversation(rosa)
    page = sara.page
    image = page.locator("[data-testid=message][data-type=image] img")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    expect(page.locator("[data-testid=message][data-type=image]")).to_contain_text("The grey coat")
    video = page.locator("[data-testid=message][data-type=video] video")
    expect(video).to_have_attribute("src", re.compile("/api/media/"))
    audio = page.locator("[data-testid=message][data-type=audio] audio")
    expect(audio).to_have_attribute("controls", "")
    document = page.get_by_role("link", name="Download receipt-1042.pdf")
    expect(document).to_have_attribute("download", "receipt-1042.pdf")
    # Fetched as the page does: with its session cookie, no token.
    downloaded = page.request.get(inbox.gateway + (document.get_attribute("href") or ""))
    assert downloaded.status == 200 and downloaded.body().startswith(b"%PDF"), downloaded.status
    audio_file = page.request.get(inbox.gateway + (audio.get_attribute("src") or ""))
    assert audio_file.status == 200 and audio_file.headers["content-type"].startswith("audio/")
    expect(page.get_by_test_id("location")).to_contain_text("Calle Mayor 1, Madrid")
    expect(page.get_by_test_id("contact").first).to_contain_text(re.compile(r"\+\d"))
    reply = page.get_by_test_id("message").filter(has_text="Also in black?")
    expect(reply.locator(".quote")).to_contain_text("Which sizes does the coat come in?")
    asked_bubble = page.locator("[data-testid=message]:not(:has(.quote))").filter(
        has_text="Which sizes does the coat come in?")
    expect(asked_bubble.get_by_role("list", name="Reactions")).to_contain_text("👍")

    page.get_by_role("button", name="Note", exact=True).click()
    page.get_by_label("Internal note").fill("Ask the warehouse about black coats")
    page.get_by_label("Internal note").press("Enter")
    expect(page.get_by_test_id("note")).to_contain_text("only your team sees this")
    expect(page.get_by_test_id("note")).to_contain_text("Ask the warehouse about black coats")
    sara.screenshot("message-types")
    assert not sara.errors


def test_a_colleague_sees_typing_and_the_reply_live(inbox: Inbox, open_screen: OpenScreen) -> None:
    mia = new_customer("Mia")
    inbox.simulate("text", wa_id=mia.wa_id, name=mia.name, body="Can I change the delivery address?")
    sara = open_screen(inbox.sara)
    omar = open_screen(inbox.omar, TABLET)
    sara.open_conversation(mia)
    omar.open_conversation(mia)

    reply = "Of course, send me the new address please."
    sara.page.get_by_label("Reply to the customer").press_sequentially(reply[:20], delay=40)
    expect(omar.page.get_by_test_id("typing")).to_have_text(TYPING)
    expect(omar.row(mia).get_by_test_id("row-typing")).to_have_text(TYPING)
    omar.screenshot("colleague-typing")
    # The one typing never sees itself as typing.
    expect(sara.page.get_by_test_id("typing")).to_have_text("")
    # The customer sees it too: Meta's typing indicator went once for these twenty keystrokes (every 25 s at
    # most), for the customer's message.
    typing = _wait_for_typing(inbox, mia.wa_id)
    assert typing["typing_count"] == 1 and typing["typing_at"], typing

    sara.page.get_by_label("Reply to the customer").press_sequentially(reply[20:], delay=10)
    sara.page.get_by_label("Reply to the customer").press("Enter")
    bubble = omar.page.get_by_test_id("message").filter(has_text=reply)
    expect(bubble).to_be_visible()
    expect(bubble).to_contain_text("Sara")
    expect(omar.page.get_by_test_id("typing")).to_have_text("")
    expect(omar.row(mia)).to_contain_text(reply)
    assert not sara.errors and not omar.errors


def _wait_for_typing(inbox: Inbox, wa_id: str, timeout_s: float = 10.0) -> dict[str, Any]:
    """The sandbox's record of the customer's message once a typing indicator reached it."""
    deadline = time.monotonic() + timeout_s
    while True:
        inbound = httpx.get(f"{inbox.stack.url('sandbox')}/sandbox/messages", timeout=10).json()["inbound"]
        item = next(i for i in inbound if i["from"] == wa_id)
        if item["typing_count"] or time.monotonic() > deadline:
            return dict(item)
        time.sleep(0.2)


def test_a_closed_window_shows_the_banner_and_a_template_goes_through(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    camille = new_customer("Camille")
    a_day_ago = int(time.time()) - 25 * 3600
    inbox.simulate("text", wa_id=camille.wa_id, name=camille.name, body="Thanks, all good!",
                   timestamp=str(a_day_ago))
    sara = open_screen(inbox.sara)
    # A day-old conversation sorts below the recent ones: found by searching, as an agent would.
    sara.search(camille.name)
    sara.open_conversation(camille)

    banner = sara.page.get_by_test_id("closed-banner")
    expect(banner).to_contain_text("This conversation is closed. Use a template to re-engage.")
    expect(sara.page.get_by_label("Reply to the customer")).to_be_disabled()
    expect(sara.page.get_by_role("button", name="Send", exact=True)).to_be_disabled()
    # The server refuses a free-form send too, with its reason.
    conversation = inbox.conversation_of(inbox.sara, camille.wa_id)
    assert conversation["window"]["open"] is False
    with inbox.api(inbox.sara) as api:
        refused = api.post(f"/api/conversations/{conversation['id']}/messages", json={"type": "text", "text": "hi"})
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "window_closed", refused.text
    sara.screenshot("closed-window")

    banner.get_by_role("button", name="Choose a template").click()
    dialog = sara.page.get_by_role("dialog", name="Send a template")
    dialog.locator("[data-template='order_update'][data-language='en_US']").click()
    first_name = camille.name.split()[0]
    dialog.get_by_label("Variable 1").fill(first_name)
    dialog.get_by_label("Variable 2").fill("#1042")
    expected = f"Hi {first_name}, your order #1042 is on its way."
    expect(dialog.get_by_test_id("template-preview")).to_contain_text(expected)
    sara.screenshot("template-picker")
    dialog.get_by_role("button", name="Send template").click()
    expect(dialog).to_be_hidden()

    bubble = sara.page.locator("[data-testid=message][data-type=template]").filter(has_text=expected)
    expect(bubble).to_be_visible()
    expect(bubble.locator("[data-status]")).to_have_attribute("data-status", re.compile("^(sent|delivered|read)$"))
    expect(sara.page.locator("[data-testid=activity][data-action=template_sent]")).to_contain_text(
        "Sara sent the template order_update")
    # Still closed: only the customer's reply opens the window again.
    expect(banner).to_be_visible()
    assert not sara.errors


def test_the_template_picker_asks_too_when_a_colleague_sent_one_meanwhile(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    """The guard covers templates: Omar re-engages the customer while Sara fills in hers (her stream is
    cut, so her screen has not shown his); her send asks first, and goes out when she insists."""
    ines = new_customer("Ines")
    inbox.simulate("text", wa_id=ines.wa_id, name=ines.name, body="Any news on my parcel?",
                   timestamp=str(int(time.time()) - 25 * 3600))
    sara = open_screen(inbox.sara)
    sara.page.route("**/api/stream*", lambda route: route.abort())
    sara.page.reload()
    sara.search(ines.name)
    sara.open_conversation(ines)
    conv = inbox.conversation_of(inbox.sara, ines.wa_id)["id"]
    params = {"body": ["Ines", "#2001"]}
    with inbox.api(inbox.omar) as omar:
        sent = omar.post(f"/api/conversations/{conv}/templates",
                         json={"name": "order_update", "language": "en_US", "params": params})
        assert sent.status_code == 202, sent.text
    sara.page.get_by_test_id("closed-banner").get_by_role("button", name="Choose a template").click()
    dialog = sara.page.get_by_role("dialog", name="Send a template")
    dialog.locator("[data-template='order_update'][data-language='en_US']").click()
    dialog.get_by_label("Variable 1").fill("Ines")
    dialog.get_by_label("Variable 2").fill("#2002")
    dialog.get_by_role("button", name="Send template").click()
    question = dialog.get_by_role("alertdialog", name="A colleague replied")
    expect(question).to_contain_text(f"{inbox.omar.name} replied")
    outbound = [m for m in inbox.timeline(inbox.sara, conv) if m.get("direction") == "out"]
    assert len(outbound) == 1, outbound  # Omar's only: Sara's was held
    question.get_by_role("button", name="Send anyway").click()
    expect(dialog).to_be_hidden()
    expect(sara.page.locator("[data-testid=message][data-type=template]").filter(
        has_text="your order #2002 is on its way")).to_be_visible()
    assert not sara.errors


def test_an_order_made_from_the_conversation_shows_in_the_panel_and_the_timeline(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    ines = new_customer("Ines")
    inbox.simulate("text", wa_id=ines.wa_id, name=ines.name, body="I'd like the blue dress and two belts")
    sara = open_screen(inbox.sara)
    sara.open_conversation(ines)
    panel = sara.page.get_by_role("complementary", name="Customer")
    expect(panel.get_by_test_id("customer-name")).to_have_text(ines.name)
    expect(panel.get_by_test_id("stat-orders")).to_have_text("0")

    panel.get_by_role("button", name="New order").click()
    form = sara.page.get_by_role("dialog", name="New order")
    form.get_by_label("SKU of line 1").fill("DRESS-BLUE-M")
    form.get_by_label("Item name of line 1").fill("Blue summer dress, M")
    form.get_by_label("Unit price of line 1").fill("49.90")
    form.get_by_role("button", name="Add a line").click()
    form.get_by_label("SKU of line 2").fill("BELT-01")
    form.get_by_label("Item name of line 2").fill("Leather belt")
    form.get_by_label("Quantity of line 2").fill("2")
    form.get_by_label("Unit price of line 2").fill("15.00")
    expect(form).to_contain_text("79.90")
    sara.screenshot("order-form")
    form.get_by_role("button", name="Create order").click()
    expect(form).to_be_hidden()

    row = panel.locator("li.order-row").first
    expect(row).to_be_visible()
    number = row.get_attribute("data-order-number")
    assert number and number.isdigit()
    expect(row).to_contain_text("79.90")
    expect(row.locator("select")).to_have_value("new")
    expect(panel.get_by_test_id("stat-orders")).to_have_text("1")
    expect(sara.page.locator("[data-testid=activity][data-action=order_created]")).to_have_text(
        re.compile(f"Sara created order #{number}"))

    row.get_by_label(f"Stage of order #{number}").select_option("confirmed")
    expect(row.locator("select")).to_have_value("confirmed")
    expect(sara.page.locator("[data-testid=activity][data-action=order_stage_changed]")).to_have_text(
        re.compile(f"Sara moved order #{number} from New to Confirmed"))

    panel.get_by_role("button", name=re.compile("Current order")).click()
    detail = sara.page.get_by_role("dialog", name=f"Order #{number}")
    expect(detail).to_contain_text("Leather belt")
    expect(detail.locator("[data-stage]").first).to_have_attribute("data-stage", "confirmed")
    detail.get_by_role("button", name="Close").click()
    sara.screenshot("order-panel")

    sara.page.set_viewport_size(TABLET)
    expect(panel).to_be_hidden()  # a slide-over at tablet widths, opened on demand
    sara.page.get_by_role("button", name="Show the customer panel").click()
    expect(panel.get_by_test_id("stat-orders")).to_have_text("1")
    sara.screenshot("tablet")
    assert not sara.errors


def test_the_page_recovers_after_the_stream_drops(inbox: Inbox, stack: Stack, open_screen: OpenScreen) -> None:
    """The gateway goes away (a restart, a deploy): the page says so, reconnects by itself, and re-reads the
    list, so a message that came while it was away shows up although its event was never streamed."""
    sara = open_screen(inbox.sara)
    olga = new_customer("Olga")
    gateway = stack.processes["gateway"]
    port = stack.ports["gateway_http"]
    ready = stack.ready_port("gateway")  # its ops port answers readiness
    gateway.terminate()
    try:
        expect(sara.page.get_by_test_id("stream-state")).to_have_text("Reconnecting…")
        inbox.simulate("text", wa_id=olga.wa_id, name=olga.name, body="Hello? Anyone there?")
        # Stored before the gateway is back: its event is then surely gone, and only re-reading shows it.
        wait_stored(stack, inbox.workspace_id, olga.wa_id)
    finally:
        gateway.start()
        gateway.wait_port(port, timeout=90)
        stack.wait_ready("gateway", ready)
    expect(sara.page.locator(".app[data-stream='open']")).to_be_visible()
    top = sara.page.locator("button.conv-row").first
    expect(top).to_contain_text(olga.name)
    expect(top.get_by_test_id("unread-badge")).to_have_text("1")
    assert not sara.errors
