"""The three-column screen in a real browser (Debian's Chromium), against the whole stack with the sandbox
standing in for Meta: what an agent sees as customers write, as replies are delivered and read, as a
colleague opens the conversation, and when an order is made from the conversation (the reply box is
test_composer.py's). Screenshots of the main states are taken; `make screenshots` saves them to docs/screenshots/."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

import grpc
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
