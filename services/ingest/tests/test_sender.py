"""The sender and template sync against the sandbox (Meta's stand-in), the real database and broker.

Each test has a number of its own in the sandbox, so its request log and faults are its own; outcomes
go to a test-only events topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from typing import Any

import pytest

from inbox_core.events import Event, utcnow
from inbox_core.events.commands import (
    MarkReadCommand,
    OutboundMedia,
    OutboundReaction,
    OutboundTemplate,
    SendCommand,
    SyncTemplatesCommand,
)
from inbox_core.events.whatsapp import Media, MediaStored, MessageReceived, SendAccepted, SendFailed, TemplatesSynced
from inbox_core.kafka import make_broker, publish
from inbox_core.topics import ensure_topics
from inbox_ingest.consumers import register
from inbox_ingest.domain.sending import outcome_event_id
from inbox_ingest.media import MediaFetcher, MediaJobs
from inbox_ingest.send_records import RateLimiter
from inbox_ingest.sender import Sender
from inbox_ingest.templates import sync_all, sync_waba, template_parts

CUSTOMER = "16505551234"


def _sender(env: Any, topic: str) -> Sender:
    return Sender(env.broker, env.store, env.settings, env.graph, env.media_store, events_topic=topic)


def _send(env: Any, **kw: Any) -> SendCommand:
    fields: dict[str, Any] = {
        "command_id": uuid.uuid4().hex, "phone_number_id": env.channel.phone_number_id, "wa_id": CUSTOMER,
        "conversation_id": "conv-1", "message_id": f"msg-{uuid.uuid4().hex[:6]}",
    }
    fields.update(kw)
    return SendCommand.model_validate(fields)


def _outcomes(command_id: str) -> Any:
    return lambda e: e.data.get("command_id") == command_id


async def _messages_requests(sandbox: Any, env: Any) -> list[dict[str, Any]]:
    return await sandbox.requests(f"/{env.channel.phone_number_id}/messages")


async def test_text_reply_is_sent_as_metas_json_and_accepted(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    command = _send(ingest_env, kind="text", text="Your order ships today", reply_to_wamid="wamid.IN-1",
                    biz_opaque_callback_data="msg-ref-1")
    await _sender(ingest_env, events_topic).handle(Event.of(command, workspace_id="ignored"))

    [request] = await _messages_requests(sandbox, ingest_env)
    assert request["body"] == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "text",
        "text": {"preview_url": False, "body": "Your order ships today"},
        "context": {"message_id": "wamid.IN-1"}, "biz_opaque_callback_data": "msg-ref-1",
    }
    token = ingest_env.channel.access_token.get_secret_value()
    assert request["headers"]["authorization"] == f"Bearer {token}"

    [event] = await collect(events_topic, _outcomes(command.command_id))
    accepted = event.payload(SendAccepted)
    assert event.type == "whatsapp.send.accepted"
    assert accepted.wamid == request["response"]["messages"][0]["id"]
    assert (accepted.conversation_id, accepted.message_id) == ("conv-1", command.message_id)
    assert accepted.waba_id == ingest_env.channel.waba_id
    assert event.workspace_id == ingest_env.channel.workspace_id
    assert event.id == outcome_event_id(command.command_id)
    assert token not in event.to_bytes().decode(), "the token is never put on a topic"

    doc = await ingest_env.db["outbound"].find_one({"_id": command.command_id})
    assert doc["state"] == "accepted" and doc["wamid"] == accepted.wamid


async def test_stored_media_is_uploaded_to_meta_then_sent_by_id_and_upload_reused(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    content = b"\x89PNG\r\n\x1a\n" + os.urandom(700_000)  # several GridFS chunks, streamed to Meta
    storage_id = await ingest_env.media_store.put(content, "image/png", "photo.png")
    sender = _sender(ingest_env, events_topic)
    first = _send(ingest_env, kind="image", media=OutboundMedia(storage_id=storage_id, caption="The blue one"))
    second = _send(ingest_env, kind="image", media=OutboundMedia(storage_id=storage_id))
    await sender.handle(Event.of(first))
    await sender.handle(Event.of(second))

    [upload] = await sandbox.requests(f"/{ingest_env.channel.phone_number_id}/media")
    assert upload["form"]["messaging_product"] == "whatsapp"
    assert upload["form"]["type"] == "image/png"
    assert upload["form"]["file"] == {"filename": "photo.png", "content_type": "image/png", "size": len(content)}
    meta_media_id = upload["response"]["id"]
    got = await ingest_env.graph.media_info(meta_media_id, ingest_env.channel.access_token)
    assert got["sha256"] == hashlib.sha256(content).hexdigest(), "Meta got the file intact"
    stored = await ingest_env.media_store.info(storage_id)
    assert stored is not None and "sent_at" in stored.metadata, "a sent upload is marked (never purged as unsent)"

    sends = await _messages_requests(sandbox, ingest_env)
    assert [r["body"] for r in sends] == [
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "image",
         "image": {"id": meta_media_id, "caption": "The blue one"}},
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "image",
         "image": {"id": meta_media_id}},
    ]
    outcomes = await collect(events_topic, lambda e: e.data.get("command_id") in (first.command_id,
                                                                                   second.command_id))
    assert sorted(e.type for e in outcomes) == ["whatsapp.send.accepted"] * 2


async def test_missing_stored_file_is_a_local_failure(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    command = _send(ingest_env, kind="document", media=OutboundMedia(storage_id="up-missing"))
    await _sender(ingest_env, events_topic).handle(Event.of(command))
    assert await _messages_requests(sandbox, ingest_env) == []
    [event] = await collect(events_topic, _outcomes(command.command_id))
    assert event.payload(SendFailed).error.code == 0


async def test_template_with_header_body_and_button_parameters(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    components = [
        {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://shop.example.com/a.jpg"}}]},
        {"type": "body", "parameters": [{"type": "text", "text": "Pablo"}, {"type": "text", "text": "spring"}]},
        {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "spring"}]},
    ]
    command = _send(ingest_env, kind="template",
                    template=OutboundTemplate(name="new_arrivals", language="en_US", components=components))
    await _sender(ingest_env, events_topic).handle(Event.of(command))
    [request] = await _messages_requests(sandbox, ingest_env)
    assert request["body"] == {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "template",
        "template": {"name": "new_arrivals", "language": {"code": "en_US"}, "components": components},
    }
    assert request["status_code"] == 200, request["response"]
    [event] = await collect(events_topic, _outcomes(command.command_id))
    assert event.payload(SendAccepted).message_status == "accepted"


async def test_reaction_and_mark_read(ingest_env: Any, sandbox: Any, events_topic: str, collect: Any) -> None:
    sender = _sender(ingest_env, events_topic)
    reaction = _send(ingest_env, kind="reaction", reaction=OutboundReaction(message_wamid="wamid.IN-9", emoji="🙏"))
    await sender.handle(Event.of(reaction))
    mark = MarkReadCommand(command_id=uuid.uuid4().hex, phone_number_id=ingest_env.channel.phone_number_id,
                           wa_id=CUSTOMER, message_wamid="wamid.IN-9", typing_indicator=True)
    await sender.handle(Event.of(mark))
    await sender.handle(Event.of(mark))  # redelivered: not marked twice

    requests = await _messages_requests(sandbox, ingest_env)
    assert [r["body"] for r in requests] == [
        {"messaging_product": "whatsapp", "recipient_type": "individual", "to": CUSTOMER, "type": "reaction",
         "reaction": {"message_id": "wamid.IN-9", "emoji": "🙏"}},
        {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.IN-9",
         "typing_indicator": {"type": "text"}},
    ]
    assert requests[1]["response"] == {"success": True}
    [event] = await collect(events_topic, _outcomes(reaction.command_id))
    assert event.type == "whatsapp.send.accepted"
    assert await collect(events_topic, _outcomes(mark.command_id)) == [], "mark-read publishes no outcome"
    doc = await ingest_env.db["outbound"].find_one({"_id": mark.command_id})
    assert doc["state"] == "accepted"


async def test_rate_limited_429_is_retried_then_accepted_once(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    await sandbox.fault(ingest_env.channel.phone_number_id, status=429, code=130429, count=1)
    command = _send(ingest_env, kind="text", text="hello")
    await _sender(ingest_env, events_topic).handle(Event.of(command))

    requests = await _messages_requests(sandbox, ingest_env)
    assert [r["status_code"] for r in requests] == [429, 200]
    assert requests[0]["body"] == requests[1]["body"]
    outcomes = await collect(events_topic, _outcomes(command.command_id))
    assert [e.type for e in outcomes] == ["whatsapp.send.accepted"]
    assert outcomes[0].payload(SendAccepted).attempts == 2


async def test_metas_4xx_is_published_as_failed_and_not_retried(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    await sandbox.fault(ingest_env.channel.phone_number_id, status=400, code=131047, count=5)
    command = _send(ingest_env, kind="text", text="are you there?")
    await _sender(ingest_env, events_topic).handle(Event.of(command))

    assert len(await _messages_requests(sandbox, ingest_env)) == 1, "a 131047 is never retried"
    [event] = await collect(events_topic, _outcomes(command.command_id))
    failed = event.payload(SendFailed)
    assert event.type == "whatsapp.send.failed"
    assert failed.error.code == 131047
    assert failed.error.title == "(#131047) Re-engagement message"
    assert failed.error.details and "24 hours" in failed.error.details
    assert failed.retryable is False
    assert (failed.conversation_id, failed.message_id) == ("conv-1", command.message_id)
    assert event.workspace_id == ingest_env.channel.workspace_id
    doc = await ingest_env.db["outbound"].find_one({"_id": command.command_id})
    assert doc["state"] == "failed" and doc["error"]["code"] == 131047


async def test_redelivered_command_is_not_sent_twice_and_its_outcome_republished(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    sender = _sender(ingest_env, events_topic)
    command = _send(ingest_env, kind="text", text="only once")
    await sender.handle(Event.of(command))
    # A fresh sender (another replica, or after a restart) gets the same command again.
    await _sender(ingest_env, events_topic).handle(Event.of(command))

    assert len(await _messages_requests(sandbox, ingest_env)) == 1
    outcomes = await collect(events_topic, _outcomes(command.command_id))
    assert len(outcomes) == 2
    assert outcomes[0].id == outcomes[1].id == outcome_event_id(command.command_id)
    assert outcomes[0].data == outcomes[1].data


async def test_command_left_in_sending_is_sent_again(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    command = _send(ingest_env, kind="text", text="after a crash")
    # What a crash between Meta's answer and the record leaves behind.
    await ingest_env.db["outbound"].insert_one({"_id": command.command_id, "state": "sending", "attempts": 1})
    await _sender(ingest_env, events_topic).handle(Event.of(command))
    assert len(await _messages_requests(sandbox, ingest_env)) == 1
    [event] = await collect(events_topic, _outcomes(command.command_id))
    assert event.type == "whatsapp.send.accepted"
    assert event.payload(SendAccepted).attempts == 2


async def _retry_until(sender: Sender, done: Any, within: float = 20.0) -> int:
    """Rounds of the retry loop until ``done()``; returns how many."""
    deadline = asyncio.get_running_loop().time() + within
    rounds = 0
    while not await done():
        assert asyncio.get_running_loop().time() < deadline, "the parked sends never finished"
        await sender.retry_parked()
        rounds += 1
        await asyncio.sleep(0.05)
    return rounds


async def test_passing_failures_park_the_send_off_the_partition_then_its_number_queue_sends_it(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    """Meta failing (503) past the delivery's tries: the command is parked (the handler returns, so the
    offset is committed), a later send of the same number waits behind it without calling Meta, a
    redelivery sends nothing, and the retry loop sends both in order once Meta answers."""
    inline = ingest_env.settings.send_inline_attempts
    await sandbox.fault(ingest_env.channel.phone_number_id, status=503, code=2, count=inline)
    sender = _sender(ingest_env, events_topic)
    first, second = _send(ingest_env, kind="text", text="first"), _send(ingest_env, kind="text", text="second")
    await sender.handle(Event.of(first))
    await sender.handle(Event.of(second))
    await sender.handle(Event.of(first))  # Kafka's redelivery of a parked command
    assert len(await _messages_requests(sandbox, ingest_env)) == inline, "parked behind: no call to Meta"
    assert await collect(events_topic, _outcomes(first.command_id)) == [], "no outcome while Meta is down"
    states = [(await ingest_env.db["outbound"].find_one({"_id": c.command_id}))["state"] for c in (first, second)]
    assert states == ["parked", "parked"]
    assert await sender.parked.count(ingest_env.channel.phone_number_id) == 2

    async def both_done() -> bool:
        return await sender.parked.count(ingest_env.channel.phone_number_id) == 0
    await _retry_until(sender, both_done)
    requests = await _messages_requests(sandbox, ingest_env)
    assert [r["body"]["text"]["body"] for r in requests] == ["first"] * (inline + 1) + ["second"]
    [event] = await collect(events_topic, _outcomes(first.command_id))
    assert event.type == "whatsapp.send.accepted" and event.payload(SendAccepted).attempts == inline + 1
    [event] = await collect(events_topic, _outcomes(second.command_id))
    assert event.type == "whatsapp.send.accepted" and event.payload(SendAccepted).attempts == 1
    assert await ingest_env.db["send_queues"].find_one({"_id": ingest_env.channel.phone_number_id}) is None
    # The number's queue is gone: its next send goes straight to Meta again.
    third = _send(ingest_env, kind="text", text="third")
    await sender.handle(Event.of(third))
    assert (await ingest_env.db["outbound"].find_one({"_id": third.command_id}))["state"] == "accepted"


async def test_a_send_failing_past_its_retry_budget_ends_failed_and_the_next_one_is_tried(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    budget = ingest_env.settings.send_max_attempts
    await sandbox.fault(ingest_env.channel.phone_number_id, status=500, code=131000, count=budget + 1)
    sender = _sender(ingest_env, events_topic)
    stuck, after = _send(ingest_env, kind="text", text="never"), _send(ingest_env, kind="text", text="later")
    await sender.handle(Event.of(stuck))
    await sender.handle(Event.of(after))

    async def failed() -> bool:
        return bool(await collect(events_topic, _outcomes(stuck.command_id), timeout=0.5))
    await _retry_until(sender, failed)
    [event] = await collect(events_topic, _outcomes(stuck.command_id))
    outcome = event.payload(SendFailed)
    assert event.type == "whatsapp.send.failed"
    assert (outcome.attempts, outcome.retryable, outcome.error.code) == (budget, True, 131000)
    assert (outcome.conversation_id, outcome.message_id) == ("conv-1", stuck.message_id)
    # The fault's last answer fails the next one's first try; its own budget then sends it.

    async def sent() -> bool:
        return bool(await collect(events_topic, _outcomes(after.command_id), timeout=0.5))
    await _retry_until(sender, sent)
    [event] = await collect(events_topic, _outcomes(after.command_id))
    assert event.type == "whatsapp.send.accepted" and event.payload(SendAccepted).attempts == 2
    assert len(await _messages_requests(sandbox, ingest_env)) == budget + 2


async def test_mark_read_failing_past_its_tries_is_given_up_not_retried_forever(
    ingest_env: Any, sandbox: Any, events_topic: str,
) -> None:
    await sandbox.fault(ingest_env.channel.phone_number_id, status=503, code=2, count=10)
    mark = MarkReadCommand(command_id=uuid.uuid4().hex, phone_number_id=ingest_env.channel.phone_number_id,
                           wa_id=CUSTOMER, message_wamid="wamid.IN-10")
    await _sender(ingest_env, events_topic).handle(Event.of(mark))  # returns: the partition moves on
    doc = await ingest_env.db["outbound"].find_one({"_id": mark.command_id})
    assert doc["state"] == "failed" and doc["error"]["code"] == 2
    assert len(await _messages_requests(sandbox, ingest_env)) == ingest_env.settings.send_inline_attempts


async def test_unknown_channel_is_a_failed_send_not_a_crash(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    command = _send(ingest_env, kind="text", text="hi", phone_number_id="999000999")
    await _sender(ingest_env, events_topic).handle(Event.of(command))
    [event] = await collect(events_topic, _outcomes(command.command_id))
    failed = event.payload(SendFailed)
    assert failed.error.code == 0
    assert failed.error.title == "unknown channel"
    assert "999000999" in (failed.error.details or "")


async def test_rate_limiter_spaces_calls_per_number() -> None:
    now = [0.0]
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=fake_sleep)
    waits = [await limiter.acquire("pn-a") for _ in range(4)]
    assert waits == [0.0, 0.0, pytest.approx(0.5), pytest.approx(1.0)]
    assert await limiter.acquire("pn-b") == 0.0, "each number has its own bucket"
    assert slept == [pytest.approx(0.5), pytest.approx(1.0)]


# --- templates -------------------------------------------------------------------------------------


async def test_templates_synced_across_pages(ingest_env: Any, sandbox: Any, events_topic: str, collect: Any) -> None:
    waba = ingest_env.channel.waba_id
    await sandbox.add_template(waba, {"name": f"extra_{uuid.uuid4().hex[:6]}", "language": "en_US",
                                      "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi"}]})
    count = await sync_waba(ingest_env.store, ingest_env.graph, ingest_env.broker, waba,
                            events_topic=events_topic, page_size=2)
    pages = await sandbox.requests(f"/{waba}/message_templates", method="GET")
    assert count == 7
    assert len(pages) == 4, "7 templates, 2 a page"
    assert pages[1]["query"]["after"] == pages[0]["response"]["paging"]["cursors"]["after"]
    [event] = await collect(events_topic, lambda e: e.type == "whatsapp.templates.synced"
                            and e.data.get("waba_id") == waba)
    synced = event.payload(TemplatesSynced)
    assert len(synced.templates) == 7
    assert len({t["id"] for t in synced.templates}) == 7
    assert {"hello_world", "new_arrivals"} <= {t["name"] for t in synced.templates}
    assert event.workspace_id == ingest_env.channel.workspace_id

    # Every connected business account once, however many numbers it has.
    results = await sync_all(ingest_env.store, ingest_env.graph, ingest_env.broker, events_topic=events_topic)
    assert results == {waba: 7}


async def test_thousands_of_templates_are_published_in_bounded_parts(
    ingest_env: Any, sandbox: Any, events_topic: str, collect: Any,
) -> None:
    """One event with every template of a large account would be over Kafka's 1 MiB limit (refused for
    good): the sync is published in ordered parts of at most 250 templates and 256 KiB, one sync id."""
    waba = ingest_env.channel.waba_id
    body = {"type": "BODY", "text": "Hello {{1}}, " + "your order is on its way. " * 20,
            "example": {"body_text": [["Ada"]]}}
    for i in range(600):
        await sandbox.add_template(waba, {"name": f"bulk_{i:04d}_{uuid.uuid4().hex[:4]}", "language": "en_US",
                                          "category": "UTILITY", "components": [body]})
    count = await sync_waba(ingest_env.store, ingest_env.graph, ingest_env.broker, waba, events_topic=events_topic)
    assert count is not None and count >= 600
    events = await collect(events_topic, lambda e: e.type == "whatsapp.templates.synced"
                           and e.data.get("waba_id") == waba, at_least=3)
    parts = [e.payload(TemplatesSynced) for e in events]
    sizes = [len(e.to_bytes()) for e in events]
    print(f"{count} templates in {len(parts)} parts of {[len(p.templates) for p in parts]} templates, "
          f"{sizes} bytes")
    assert [p.part for p in parts] == list(range(parts[0].parts))
    assert len({p.sync_id for p in parts}) == 1 and len({p.synced_at for p in parts}) == 1
    assert sum(len(p.templates) for p in parts) == count
    assert max(len(p.templates) for p in parts) <= 250 and max(sizes) < 300 * 1024


def test_template_parts_are_bounded_and_never_empty() -> None:
    templates = [{"name": f"t{i}", "text": "x" * 1000} for i in range(10)]
    parts = template_parts(templates, max_templates=4, max_bytes=2500)
    assert [len(p) for p in parts] == [2, 2, 2, 2, 2]
    assert [t for p in parts for t in p] == templates
    assert [len(p) for p in template_parts(templates, max_templates=3, max_bytes=10**6)] == [3, 3, 3, 1]
    assert template_parts([]) == [[]], "an account without templates still tells the consumer"
    assert template_parts([{"x": "y" * 5000}], max_bytes=100) == [[{"x": "y" * 5000}]]


# --- through Kafka ---------------------------------------------------------------------------------


async def test_register_consumes_commands_and_records_media_jobs_through_kafka(
    ingest_env: Any, sandbox: Any, infra: Any, events_topic: str, collect: Any,
) -> None:
    commands_topic = f"test.ingest.cmd.{uuid.uuid4().hex[:8]}"
    await ensure_topics(infra.kafka_bootstrap, extra=[(commands_topic, 3), (f"{commands_topic}.dlq", 1)])
    worker = make_broker(ingest_env.settings.inbox, "ingest-test-worker", registry=None, telemetry=False)
    register(worker, ingest_env.store, ingest_env.settings, ingest_env.graph, ingest_env.media_store,
             commands_topic=commands_topic, events_topic=events_topic, group_prefix=f"t-{uuid.uuid4().hex[:6]}-")
    await worker.start()
    try:
        channel = ingest_env.channel
        command = _send(ingest_env, kind="text", text="through the bus")
        key = f"{channel.phone_number_id}:{CUSTOMER}"
        await publish(ingest_env.broker, commands_topic, key, Event.of(command))
        await publish(ingest_env.broker, commands_topic, key, Event.of(command))  # a duplicate command
        await publish(ingest_env.broker, commands_topic, f"waba:{channel.waba_id}",
                      Event.of(SyncTemplatesCommand(waba_id=channel.waba_id)))
        media_id = await sandbox.upload(channel, b"%PDF-1.4 test", "application/pdf")
        received = MessageReceived(wamid=f"wamid.{uuid.uuid4().hex}", waba_id=channel.waba_id,
                                   phone_number_id=channel.phone_number_id, wa_id=CUSTOMER,
                                   timestamp=utcnow(), type="document",
                                   media=Media(media_id=media_id, mime_type="application/pdf", filename="a.pdf"))
        await publish(ingest_env.broker, events_topic, key, Event.of(received, workspace_id=channel.workspace_id))

        outcomes = await collect(events_topic, _outcomes(command.command_id), at_least=2)
        assert {e.id for e in outcomes} == {outcome_event_id(command.command_id)}
        assert len(await _messages_requests(sandbox, ingest_env)) == 1
        synced = await collect(events_topic, lambda e: e.type == "whatsapp.templates.synced"
                               and e.data.get("waba_id") == channel.waba_id, at_least=1)
        assert len(synced[0].data["templates"]) == 6

        jobs = MediaJobs(ingest_env.db)
        deadline = asyncio.get_running_loop().time() + 20
        while await jobs.get(media_id) is None:
            assert asyncio.get_running_loop().time() < deadline, "media job not recorded"
            await asyncio.sleep(0.05)
    finally:
        await worker.stop()

    fetcher = MediaFetcher(ingest_env.store, ingest_env.graph, ingest_env.media_store, ingest_env.broker,
                           ingest_env.settings, events_topic=events_topic)
    assert await fetcher.run_once() == 1
    [stored] = await collect(events_topic, lambda e: e.type == "whatsapp.media.stored"
                             and e.data.get("media_id") == media_id)
    assert stored.payload(MediaStored).size == len(b"%PDF-1.4 test")
    _, data = await ingest_env.media_store.get(f"wa-media-{media_id}")
    assert data == b"%PDF-1.4 test"
