"""The pure rules of the send path: Graph request bodies, retry classification, backoff, token bucket."""

from datetime import UTC, datetime, timedelta

import pytest

from inbox_core.events.commands import (
    MarkReadCommand,
    OutboundMedia,
    OutboundReaction,
    OutboundTemplate,
    SendCommand,
)
from inbox_ingest.domain.sending import (
    InvalidCommand,
    TokenBucket,
    accepted_fields,
    backoff_delay,
    classify,
    event_key,
    inbound_storage_id,
    mark_read_body,
    media_expired,
    media_retry_at,
    message_body,
    meta_error_fields,
    needs_upload,
    next_page,
    outcome_event_id,
)


def cmd(**kw: object) -> SendCommand:
    base: dict[str, object] = {"command_id": "c1", "phone_number_id": "pn1", "wa_id": "16505551234"}
    base.update(kw)
    return SendCommand.model_validate(base)


# --- request bodies ---------------------------------------------------------------------------------


def test_text_reply_body_is_exactly_metas_shape() -> None:
    body = message_body(cmd(kind="text", text="Hi there", preview_url=True, reply_to_wamid="wamid.IN1",
                            biz_opaque_callback_data="msg-42"))
    assert body == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "16505551234",
        "type": "text",
        "text": {"preview_url": True, "body": "Hi there"},
        "context": {"message_id": "wamid.IN1"},
        "biz_opaque_callback_data": "msg-42",
    }


def test_plain_text_has_no_context_or_callback_data() -> None:
    body = message_body(cmd(kind="text", text="Hi"))
    assert body == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "16505551234",
                    "type": "text", "text": {"preview_url": False, "body": "Hi"}}


def test_username_only_customer_is_addressed_by_recipient() -> None:
    body = message_body(cmd(kind="text", text="Hi", wa_id="", user_id="US.1234"))
    assert body["recipient"] == "US.1234"
    assert "to" not in body


def test_no_recipient_is_an_invalid_command() -> None:
    with pytest.raises(InvalidCommand):
        message_body(cmd(kind="text", text="Hi", wa_id=""))


def test_media_bodies_by_uploaded_id_and_by_link() -> None:
    image = cmd(kind="image", media=OutboundMedia(storage_id="up-1", caption="look"))
    assert needs_upload(image)
    assert message_body(image, media_id="MID1")["image"] == {"id": "MID1", "caption": "look"}
    doc = cmd(kind="document", media=OutboundMedia(link="https://x.test/a.pdf", filename="a.pdf", caption="c"))
    assert not needs_upload(doc)
    assert message_body(doc)["document"] == {"link": "https://x.test/a.pdf", "caption": "c", "filename": "a.pdf"}
    # Audio and stickers take no caption.
    audio = message_body(cmd(kind="audio", media=OutboundMedia(link="https://x.test/a.ogg", caption="ignored")))
    assert audio["audio"] == {"link": "https://x.test/a.ogg"}
    with pytest.raises(InvalidCommand):
        message_body(cmd(kind="video", media=OutboundMedia(storage_id="up-2")))  # not uploaded, no link


def test_template_body_passes_components_as_given() -> None:
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "MID"}}]},
        {"type": "body", "parameters": [{"type": "text", "parameter_name": "discount_code", "text": "WELCOME25"}]},
        {"type": "button", "sub_type": "quick_reply", "index": "0",
         "parameters": [{"type": "payload", "payload": "more-aloes"}]},
    ]
    body = message_body(cmd(kind="template", template=OutboundTemplate(name="promo", language="en_US",
                                                                        components=components)))
    assert body["type"] == "template"
    assert body["template"] == {"name": "promo", "language": {"code": "en_US"}, "components": components}
    minimal = message_body(cmd(kind="template", template=OutboundTemplate(name="hello_world", language="en_US")))
    assert minimal["template"] == {"name": "hello_world", "language": {"code": "en_US"}}


def test_reaction_body_and_removal() -> None:
    body = message_body(cmd(kind="reaction", reaction=OutboundReaction(message_wamid="wamid.X", emoji="👍"),
                            reply_to_wamid="wamid.ignored"))
    assert body["reaction"] == {"message_id": "wamid.X", "emoji": "👍"}
    assert "context" not in body
    removed = message_body(cmd(kind="reaction", reaction=OutboundReaction(message_wamid="wamid.X", emoji="")))
    assert removed["reaction"]["emoji"] == ""


def test_location_body() -> None:
    body = message_body(cmd(kind="location", location={"latitude": 1.5, "longitude": 2.5, "name": "Shop"}))
    assert body["location"] == {"latitude": 1.5, "longitude": 2.5, "name": "Shop"}


def test_missing_content_is_invalid() -> None:
    for kind in ("text", "image", "template", "reaction", "location"):
        with pytest.raises(InvalidCommand):
            message_body(cmd(kind=kind))


def test_mark_read_body_with_and_without_typing() -> None:
    c = MarkReadCommand(command_id="m1", phone_number_id="pn1", wa_id="1", message_wamid="wamid.IN")
    assert mark_read_body(c) == {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN"}
    typing = mark_read_body(c.model_copy(update={"typing_indicator": True}))
    assert typing["typing_indicator"] == {"type": "text"}


def test_accepted_fields() -> None:
    answer = {"messaging_product": "whatsapp", "contacts": [{"input": "+1", "wa_id": "1"}],
              "messages": [{"id": "wamid.OUT", "message_status": "accepted"}]}
    assert accepted_fields(answer) == ("wamid.OUT", "accepted", None)
    with pytest.raises(ValueError):
        accepted_fields({"messages": []})


# --- retry rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("status", "code"), [
    (None, None), (429, None), (500, None), (502, None), (503, 2), (400, 130429), (400, 131056),
    (400, 131057), (400, 80007), (400, 4), (500, 131000), (408, None),
])
def test_retryable(status: int | None, code: int | None) -> None:
    assert classify(status, code) == "retry"


@pytest.mark.parametrize(("status", "code"), [
    (400, 131047), (400, 131026), (400, 132001), (400, 100), (401, 190), (403, 10), (404, None),
    (400, None), (500, 131047),
])
def test_permanent(status: int, code: int | None) -> None:
    assert classify(status, code) == "permanent"


def test_backoff_grows_is_capped_and_honours_retry_after() -> None:
    delays = [backoff_delay(n, base_s=0.5, max_s=8.0, jitter=1.0) for n in range(1, 8)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert backoff_delay(3, base_s=0.5, max_s=8.0, jitter=0.0) == 1.0  # half the step at the least
    assert backoff_delay(1, base_s=0.5, max_s=8.0, jitter=0.0, retry_after_s=3.0) == 3.0
    assert backoff_delay(1, base_s=0.5, max_s=8.0, jitter=0.0, retry_after_s=60.0) == 8.0


def test_media_schedule_and_retention() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert media_retry_at(now, 1, base_s=10, max_s=100) == now + timedelta(seconds=10)
    assert media_retry_at(now, 3, base_s=10, max_s=100) == now + timedelta(seconds=40)
    assert media_retry_at(now, 9, base_s=10, max_s=100) == now + timedelta(seconds=100)
    assert not media_expired(now - timedelta(days=6, hours=23), now)
    assert media_expired(now - timedelta(days=7, seconds=1), now)


def test_token_bucket_allows_a_burst_then_spaces_calls() -> None:
    bucket = TokenBucket.full(rate=10.0, now=0.0)
    waits = [bucket.reserve(0.0) for _ in range(12)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(0.1)
    assert waits[11] == pytest.approx(0.2)
    # After a quiet second the bucket is full again (minus the two borrowed slots already paid back).
    assert bucket.reserve(2.0) == 0.0


def test_token_bucket_long_run_rate() -> None:
    bucket = TokenBucket.full(rate=80.0, now=0.0)
    t = 0.0
    for _ in range(800):
        t += bucket.reserve(t)
    # 80 at once, then 720 more at 80/s: 9 seconds.
    assert t == pytest.approx(9.0, rel=0.01)
    with pytest.raises(ValueError):
        TokenBucket.full(rate=0.0, now=0.0)


# --- Meta's errors, ids, paging ---------------------------------------------------------------------


def test_meta_error_fields_from_graph_error_body() -> None:
    body = {"error": {"message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
                      "error_data": {"messaging_product": "whatsapp", "details": "More than 24 hours"},
                      "fbtrace_id": "Az8"}}
    fields = meta_error_fields(body, 400)
    assert fields["code"] == 131047
    assert fields["title"] == "(#131047) Re-engagement message"
    assert fields["details"] == "More than 24 hours"
    assert fields["fbtrace_id"] == "Az8"
    assert meta_error_fields("<html>bad gateway</html>", 502) == {"code": None, "title": "HTTP 502",
                                                                   "message": "HTTP 502"}


def test_ids_are_deterministic() -> None:
    assert outcome_event_id("c1") == outcome_event_id("c1") != outcome_event_id("c2")
    assert inbound_storage_id("123") == "wa-media-123"
    assert event_key("pn", "", "US.1") == "pn:US.1"
    assert event_key("pn", "1650", None) == "pn:1650"


def test_next_page() -> None:
    assert next_page({"data": []}) == (None, None)
    last = {"data": [], "paging": {"cursors": {"before": "a", "after": "b"}}}
    assert next_page(last) == (None, None)
    more = {"data": [], "paging": {"cursors": {"after": "b"}, "next": "https://g/x?after=b"}}
    assert next_page(more) == ("b", "https://g/x?after=b")
    only_next = {"paging": {"next": "https://g/x?page=2"}}
    assert next_page(only_next) == (None, "https://g/x?page=2")
