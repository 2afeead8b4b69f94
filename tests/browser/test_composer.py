"""The reply box in a real browser, against the whole stack with the sandbox standing in for Meta: the
double-reply guard, canned replies ("/"), mentions in notes ("@"), the content library, a colleague
seeing "typing…", and templates when the 24-hour window has closed."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from browser_kit import TABLET, Inbox, Screen, new_customer
from playwright.sync_api import expect

OpenScreen = Callable[..., Screen]

TYPING = "Sara is typing…"


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


def test_the_content_library_puts_a_snippet_in_the_box_and_a_file_on_the_reply(
        inbox: Inbox, open_screen: OpenScreen) -> None:
    """An admin's library (a snippet and an image): a snippet goes into the text where the caret is, the
    image becomes the reply's attachment, a note is offered the snippet only, and an uploaded file is sent
    as a document with the text as its caption."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x01" * 200
    with inbox.api(inbox.sara) as api:
        snippet = api.post("/api/library", json={"workspace_id": inbox.workspace_id, "type": "text",
                                                 "title": "Returns", "text": "Returns are free for 30 days."})
        assert snippet.status_code == 201, snippet.text
        upload = api.post("/api/uploads", files={"file": ("size-chart.png", png, "image/png")})
        assert upload.status_code == 201, upload.text
        image = api.post("/api/library", json={"workspace_id": inbox.workspace_id, "type": "image",
                                               "title": "Size chart", "upload_id": upload.json()["upload_id"]})
        assert image.status_code == 201, image.text
    leo = new_customer("Leo")
    inbox.simulate("text", wa_id=leo.wa_id, name=leo.name, body="Can I send it back?")
    sara = open_screen(inbox.sara)
    sara.open_conversation(leo)
    page = sara.page
    box = page.get_by_label("Reply to the customer")
    box.fill("Sure! ")
    library = page.get_by_role("button", name="Insert from the content library")
    library.click()
    menu = page.get_by_role("menu", name="Content library")
    expect(menu.get_by_role("menuitem")).to_have_count(2)
    menu.get_by_role("menuitem", name=re.compile("Returns")).click()
    expect(menu).to_have_count(0)
    expect(box).to_have_value("Sure! Returns are free for 30 days.")

    library.click()
    page.get_by_role("menu", name="Content library").get_by_role("menuitem", name=re.compile("Size chart")).click()
    chip = page.get_by_test_id("attachment")
    expect(chip).to_contain_text("from the library · sent as image")
    chip.get_by_role("button", name="Remove the attachment").click()
    expect(chip).to_have_count(0)

    page.get_by_role("button", name="Note", exact=True).click()
    library.click()
    expect(page.get_by_role("menu", name="Content library").get_by_role("menuitem")).to_have_count(1)
    library.click()
    page.get_by_role("button", name="Reply", exact=True).click()

    page.get_by_label("File to attach").set_input_files(
        files=[{"name": "invoice.pdf", "mimeType": "application/pdf", "buffer": b"%PDF-1.4\n" + b"0" * 300}])
    expect(chip).to_contain_text("invoice.pdf")
    expect(chip).to_contain_text("sent as document")
    box.press("Enter")
    bubble = page.locator("[data-testid=message][data-type=document]")
    expect(bubble).to_contain_text("invoice.pdf")
    expect(chip).to_have_count(0)
    conv = inbox.conversation_of(inbox.sara, leo.wa_id)["id"]
    sent = [m for m in inbox.timeline(inbox.sara, conv) if m.get("direction") == "out"]
    assert [(m["type"], m["media"]["caption"], m["media"]["filename"]) for m in sent] == [
        ("document", "Sure! Returns are free for 30 days.", "invoice.pdf")], sent
    assert not sara.errors
