"""The sender: carries out ``whatsapp.commands.v1`` against the Graph API and publishes the outcome.

Per command (``command_id`` is the idempotency key), in ingest's ``outbound`` collection:
``sending`` -> ``accepted`` (with Meta's wamid) or ``failed`` (with Meta's error). The outcome is
written to the database as soon as Meta answers and only then published, with an event id derived
from the command id; a redelivered command whose outcome is recorded is not sent again, its outcome
is published again (same id). A command found in ``sending`` crashed mid-call with its outcome
unknown: it is sent again (at-least-once: possibly twice, never lost).

Retryable failures (429, 5xx, network, Meta's throttling codes) are retried with backoff up to
``send_max_attempts`` inside the handler, then the handler raises ``TransientError`` so Kafka delivers
the command again; permanent ones (131047, 131026, 100, ...) become ``whatsapp.send.failed``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker
from prometheus_client import Counter
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from inbox_core.errors import NotFound, TransientError
from inbox_core.events import Event, utcnow
from inbox_core.events.commands import CommandBase, MarkReadCommand, SendCommand, SyncTemplatesCommand
from inbox_core.events.whatsapp import MetaError, SendAccepted, SendFailed
from inbox_core.kafka import publish
from inbox_core.mongo import Document
from inbox_core.topics import WHATSAPP_EVENTS, Topic
from inbox_ingest.domain.sending import (
    LOCAL_ERROR_CODE,
    UPLOADED_MEDIA_LIFETIME,
    InvalidCommand,
    TokenBucket,
    accepted_fields,
    backoff_delay,
    event_key,
    mark_read_body,
    message_body,
    needs_upload,
    outcome_event_id,
)
from inbox_ingest.graph import GraphClient, GraphError
from inbox_ingest.media import MediaStore
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore

log = logging.getLogger("inbox.ingest.sender")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

# An uploaded media id is reused until this long before Meta forgets it (30 days).
_UPLOAD_MARGIN = timedelta(days=1)
FINAL_STATES = ("accepted", "failed")

# Every Graph API answer to a send, upload or mark-read: "ok", "retry" (will be retried) or "refused", with
# Meta's error code ("" for ok; "none" when the error had no code, e.g. a network failure).
META_SEND_OUTCOMES = Counter("inbox_meta_send_outcomes_total", "Graph API call outcomes by Meta error code",
                             ["outcome", "code"])


class RateLimiter:
    """A token bucket per phone number id (domain.sending.TokenBucket), waiting with ``sleep``."""

    def __init__(self, rate: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Sleep = asyncio.sleep) -> None:
        self.rate = rate
        self.clock = clock
        self.sleep = sleep
        self._buckets: dict[str, TokenBucket] = {}

    async def acquire(self, key: str) -> float:
        """Waits for a slot; returns how long it waited."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket.full(self.rate, now)
        wait = bucket.reserve(now)
        if wait > 0:
            await self.sleep(wait)
        return wait


class OutboundStore:
    """The ``outbound`` collection (one document per command id) and the upload cache."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.outbound = db["outbound"]
        self.uploads = db["media_uploads"]

    async def get(self, command_id: str) -> Document | None:
        return await self.outbound.find_one({"_id": command_id})

    async def start(self, command: CommandBase, kind: str) -> Document | None:
        """Marks the command ``sending``; returns the recorded document instead when it has an outcome."""
        now = utcnow()
        try:
            await self.outbound.update_one(
                {"_id": command.command_id, "state": {"$nin": list(FINAL_STATES)}},
                {"$set": {"state": "sending", "kind": kind, "phone_number_id": command.phone_number_id,
                          "updated_at": now},
                 "$setOnInsert": {"created_at": now, "attempts": 0}},
                upsert=True,
            )
        except DuplicateKeyError:
            # Another delivery recorded the outcome between our read and this write.
            return await self.get(command.command_id)
        return None

    async def add_attempts(self, command_id: str, n: int, error: str) -> None:
        await self.outbound.update_one({"_id": command_id}, {"$inc": {"attempts": n},
                                                             "$set": {"last_error": error, "updated_at": utcnow()}})

    async def finish(self, command_id: str, state: str, attempts: int, *, wamid: str | None = None,
                     error: MetaError | None = None, event: Event | None = None,
                     response: dict[str, Any] | None = None) -> None:
        update: dict[str, Any] = {"state": state, "attempts": attempts, "updated_at": utcnow(),
                                  "finished_at": utcnow()}
        if wamid is not None:
            update["wamid"] = wamid
        if error is not None:
            update["error"] = error.model_dump(mode="json", exclude_none=True)
        if event is not None:
            update["outcome_event"] = json.loads(event.model_dump_json())
        if response is not None:
            update["response"] = response
        await self.outbound.update_one({"_id": command_id}, {"$set": update})

    async def cached_upload(self, phone_number_id: str, storage_id: str) -> str | None:
        doc = await self.uploads.find_one({"_id": f"{phone_number_id}:{storage_id}",
                                           "expires_at": {"$gt": utcnow() + _UPLOAD_MARGIN}})
        return str(doc["media_id"]) if doc else None

    async def remember_upload(self, phone_number_id: str, storage_id: str, media_id: str) -> None:
        now = utcnow()
        await self.uploads.update_one(
            {"_id": f"{phone_number_id}:{storage_id}"},
            {"$set": {"media_id": media_id, "uploaded_at": now, "expires_at": now + UPLOADED_MEDIA_LIFETIME}},
            upsert=True,
        )


class _GaveUp(Exception):
    def __init__(self, attempts: int, last: GraphError) -> None:
        super().__init__(str(last))
        self.attempts = attempts
        self.last = last


class _Failed(Exception):
    """A permanent failure of this command (Meta refused, or a local problem)."""

    def __init__(self, error: MetaError, attempts: int) -> None:
        super().__init__(error.message or error.title or "")
        self.error = error
        self.attempts = attempts


TemplateSync = Callable[[SyncTemplatesCommand], Awaitable[None]]


class Sender:
    def __init__(self, broker: KafkaBroker, store: IngestStore, settings: IngestSettings, graph: GraphClient,
                 media_store: MediaStore, *, events_topic: Topic | str = WHATSAPP_EVENTS,
                 sync_templates: TemplateSync | None = None, sleep: Sleep = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self.broker = broker
        self.store = store
        self.settings = settings
        self.graph = graph
        self.media_store = media_store
        self.events_topic = events_topic
        self.sync_templates = sync_templates
        self.sleep = sleep
        self.jitter = jitter
        self.outbound = OutboundStore(store.db)
        self.limiter = RateLimiter(settings.send_rate_per_second, sleep=sleep)

    # --- dispatch -----------------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        """The ``whatsapp.commands.v1`` handler. An unreadable command raises (and is dead-lettered)."""
        if event.type == SendCommand.EVENT_TYPE:  # type: ignore[attr-defined]
            await self.send(event.payload(SendCommand))
        elif event.type == MarkReadCommand.EVENT_TYPE:  # type: ignore[attr-defined]
            await self.mark_read(event.payload(MarkReadCommand))
        elif event.type == SyncTemplatesCommand.EVENT_TYPE:  # type: ignore[attr-defined]
            if self.sync_templates is not None:
                await self.sync_templates(event.payload(SyncTemplatesCommand))
        else:
            log.warning("ignoring command of unknown type %r (event %s)", event.type, event.id)

    # --- sends --------------------------------------------------------------------------------------

    async def send(self, command: SendCommand) -> None:
        recorded = await self.outbound.get(command.command_id)
        if recorded and recorded.get("state") in FINAL_STATES:
            await self._republish(command, recorded)
            return
        if recorded and recorded.get("state") == "sending":
            log.warning("command %s was being sent when a delivery stopped; outcome unknown, sending again",
                        command.command_id)
        raced = await self.outbound.start(command, command.kind)
        if raced is not None:
            await self._republish(command, raced)
            return
        before = int((recorded or {}).get("attempts") or 0)
        channel = await self.store.get_channel(command.phone_number_id)
        if channel is None:
            await self._fail(command, None, _local_error(
                "unknown channel", f"phone number id {command.phone_number_id} is not connected"), before)
            return
        attempts = 0
        try:
            media_id: str | None = None
            if needs_upload(command):
                media_id, attempts = await self._uploaded_media_id(command, channel)
            body = message_body(command, media_id)
            response, calls = await self._call(command.command_id, lambda: self._post(channel, body),
                                               limit_key=channel.phone_number_id)
            attempts += calls
        except InvalidCommand as exc:
            await self._fail(command, channel, _local_error("invalid command", str(exc)), before + attempts)
            return
        except _Failed as exc:
            await self._fail(command, channel, exc.error, before + attempts + exc.attempts)
            return
        except _GaveUp as exc:
            await self.outbound.add_attempts(command.command_id, attempts + exc.attempts, str(exc.last))
            raise TransientError(f"command {command.command_id}: Graph API still failing after "
                                 f"{exc.attempts} attempts: {exc.last}") from None
        try:
            wamid, message_status, group_id = accepted_fields(response)
        except ValueError as exc:
            # A 200 without a wamid: accepted or not, we cannot tell; do not send again blindly.
            await self._fail(command, channel, _local_error("unreadable answer", str(exc)), before + attempts)
            return
        payload = SendAccepted(
            **_result_fields(command, channel, before + attempts),
            wamid=wamid, message_status=message_status, group_id=group_id,
        )
        event = Event.of(payload, workspace_id=channel.workspace_id, id=outcome_event_id(command.command_id))
        await self.outbound.finish(command.command_id, "accepted", before + attempts, wamid=wamid, event=event,
                                   response=response)
        await publish(self.broker, self.events_topic, _key(command), event)
        log.info("command %s accepted as %s", command.command_id, wamid)

    async def _uploaded_media_id(self, command: SendCommand, channel: Channel) -> tuple[str, int]:
        """Meta's media id of the stored file: cached per number for 30 days, else uploaded now."""
        assert command.media is not None and command.media.storage_id
        storage_id = command.media.storage_id
        cached = await self.outbound.cached_upload(channel.phone_number_id, storage_id)
        if cached:
            return cached, 0
        try:
            stored, data = await self.media_store.get(storage_id)
        except NotFound:
            raise _Failed(_local_error("media not found", f"no stored file {storage_id}"), 0) from None
        mime_type = command.media.mime_type or stored.mime_type
        filename = command.media.filename or stored.filename or storage_id
        media_id, calls = await self._call(
            command.command_id,
            lambda: self.graph.upload_media(channel.phone_number_id, channel.access_token, data, mime_type, filename),
            limit_key=None)
        await self.outbound.remember_upload(channel.phone_number_id, storage_id, media_id)
        return media_id, calls

    async def _post(self, channel: Channel, body: dict[str, Any]) -> dict[str, Any]:
        return await self.graph.send_message(channel.phone_number_id, channel.access_token, body)

    async def _call(self, command_id: str, call: Callable[[], Awaitable[T]], *,
                    limit_key: str | None) -> tuple[T, int]:
        """Runs ``call`` with the rate limit and retries; returns (result, attempts made)."""
        attempt = 0
        while True:
            attempt += 1
            if limit_key is not None:
                await self.limiter.acquire(limit_key)
            try:
                result = await call()
            except GraphError as exc:
                META_SEND_OUTCOMES.labels("retry" if exc.retryable else "refused",
                                          "none" if exc.error.code is None else str(exc.error.code)).inc()
                if not exc.retryable:
                    raise _Failed(exc.error, attempt) from None
                if attempt >= self.settings.send_max_attempts:
                    raise _GaveUp(attempt, exc) from None
                delay = backoff_delay(attempt, base_s=self.settings.send_retry_base_s,
                                      max_s=self.settings.send_retry_max_s, retry_after_s=exc.retry_after_s,
                                      jitter=self.jitter())
                log.warning("command %s: attempt %d failed (%s); retrying in %.2fs", command_id, attempt, exc, delay)
                await self.sleep(delay)
                continue
            META_SEND_OUTCOMES.labels("ok", "").inc()
            return result, attempt

    async def _fail(self, command: SendCommand, channel: Channel | None, error: MetaError, attempts: int) -> None:
        log.warning("command %s failed: code=%s %s", command.command_id, error.code, error.title)
        payload = SendFailed(**_result_fields(command, channel, max(attempts, 1)), error=error, retryable=False)
        event = Event.of(payload, workspace_id=channel.workspace_id if channel else None,
                         id=outcome_event_id(command.command_id))
        await self.outbound.finish(command.command_id, "failed", attempts, error=error, event=event)
        await publish(self.broker, self.events_topic, _key(command), event)

    async def _republish(self, command: CommandBase, recorded: Document) -> None:
        stored = recorded.get("outcome_event")
        if not stored:
            log.info("command %s already done (%s)", command.command_id, recorded.get("state"))
            return
        log.info("command %s already %s; publishing its outcome again", command.command_id, recorded.get("state"))
        await publish(self.broker, self.events_topic, _key(command), Event.model_validate(stored))

    # --- mark as read -------------------------------------------------------------------------------

    async def mark_read(self, command: MarkReadCommand) -> None:
        """Marks a customer's message read (and shows typing); no outcome event, failures are logged."""
        recorded = await self.outbound.get(command.command_id)
        if recorded and recorded.get("state") in FINAL_STATES:
            return
        if await self.outbound.start(command, "mark_read") is not None:
            return
        channel = await self.store.get_channel(command.phone_number_id)
        if channel is None:
            error = _local_error("unknown channel", f"phone number id {command.phone_number_id} is not connected")
            log.warning("mark-read %s: %s", command.command_id, error.message)
            await self.outbound.finish(command.command_id, "failed", 0, error=error)
            return
        body = mark_read_body(command)
        try:
            _, calls = await self._call(command.command_id, lambda: self._post(channel, body),
                                        limit_key=channel.phone_number_id)
        except _Failed as exc:
            log.warning("mark-read %s refused: code=%s %s", command.command_id, exc.error.code, exc.error.title)
            await self.outbound.finish(command.command_id, "failed", exc.attempts, error=exc.error)
            return
        except _GaveUp as exc:
            await self.outbound.add_attempts(command.command_id, exc.attempts, str(exc.last))
            raise TransientError(f"mark-read {command.command_id}: {exc.last}") from None
        await self.outbound.finish(command.command_id, "accepted", calls)


def _local_error(title: str, details: str) -> MetaError:
    return MetaError(code=LOCAL_ERROR_CODE, title=title, message=title, details=details)


def _key(command: CommandBase) -> str:
    return event_key(command.phone_number_id, command.wa_id, command.user_id)


def _result_fields(command: CommandBase, channel: Channel | None, attempts: int) -> dict[str, Any]:
    return {
        "command_id": command.command_id,
        "phone_number_id": command.phone_number_id,
        "waba_id": channel.waba_id if channel else None,
        "wa_id": command.wa_id,
        "user_id": command.user_id,
        "attempts": attempts,
        "conversation_id": command.conversation_id,
        "message_id": command.message_id,
    }
