"""The sender: carries out ``whatsapp.commands.v1`` against the Graph API and publishes the outcome.

Per command (``command_id`` is the idempotency key), in ingest's ``outbound`` collection:
``sending`` -> ``accepted`` (with Meta's wamid) or ``failed`` (with Meta's error). The outcome is
written to the database as soon as Meta answers and only then published, with an event id derived
from the command id; a redelivered command whose outcome is recorded is not sent again, its outcome
is published again (same id). A command found in ``sending`` crashed mid-call with its outcome
unknown: it is sent again (at-least-once: possibly twice, never lost).

Retryable failures (429, 5xx, network, Meta's throttling codes) are retried with backoff
``send_inline_attempts`` times inside the handler (one delivery never takes longer than
``send_delivery_deadline_s``); then the command is parked in ``parked_sends`` behind its number's other
parked sends, its offset is committed, and :func:`send_retry_loop` tries the number's parked sends in order,
one attempt per due time, until Meta accepts, refuses, or ``send_max_attempts`` (or
``send_retry_window_s``) is spent: then ``whatsapp.send.failed`` (``retryable``). While a number has parked
sends, its new sends are parked behind them, so a number stuck on 131000 or 5xx never holds a partition
that other tenants share. Permanent failures (131047, 131026, 100, ...) become ``whatsapp.send.failed``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from faststream.kafka import KafkaBroker
from gridfs.errors import CorruptGridFile
from prometheus_client import Counter

from inbox_core.errors import NotFound
from inbox_core.events import Event, utcnow
from inbox_core.events.commands import CommandBase, MarkReadCommand, SendCommand, SyncTemplatesCommand
from inbox_core.events.whatsapp import MetaError, SendAccepted, SendFailed
from inbox_core.kafka import publish
from inbox_core.mongo import Document
from inbox_core.topics import WHATSAPP_EVENTS, Topic
from inbox_ingest.domain.sending import (
    LOCAL_ERROR_CODE,
    InvalidCommand,
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
from inbox_ingest.send_records import FINAL_STATES, PARKED, OutboundStore, ParkedSends, RateLimiter
from inbox_ingest.settings import IngestSettings
from inbox_ingest.store import Channel, IngestStore

log = logging.getLogger("inbox.ingest.sender")

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


# Every Graph API answer to a send, upload or mark-read: "ok", "retry" (will be retried) or "refused", with
# Meta's error code ("" for ok; "none" when the error had no code, e.g. a network failure).
META_SEND_OUTCOMES = Counter("inbox_meta_send_outcomes_total", "Graph API call outcomes by Meta error code",
                             ["outcome", "code"])
SENDS_PARKED = Counter("inbox_sends_parked_total", "Sends taken off their partition to be retried per number",
                       ["why"])


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
        self.parked = ParkedSends(store.db)
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
        before = int((recorded or {}).get("attempts") or 0)
        if recorded and recorded.get("state") == PARKED:
            await self.parked.park(command, utcnow())  # a redelivery: it is (or is again) in its number's queue
            return
        if await self.parked.has_queue(command.phone_number_id):
            # The number's earlier sends are still failing: this one waits behind them (their order is kept).
            await self._park(command, "behind", before, utcnow())
            return
        if recorded and recorded.get("state") == "sending":
            log.warning("command %s was being sent when a delivery stopped; outcome unknown, sending again",
                        command.command_id)
        raced = await self.outbound.start(command, command.kind)
        if raced is not None:
            await self._republish(command, raced)
            return
        channel = await self.store.get_channel(command.phone_number_id)
        if channel is None:
            await self._fail(command, None, _local_error(
                "unknown channel", f"phone number id {command.phone_number_id} is not connected"), before)
            return
        try:
            async with asyncio.timeout(self.settings.send_delivery_deadline_s):
                await self._attempt(command, channel, before, self.settings.send_inline_attempts)
            return
        except _GaveUp as exc:
            attempts, why, error = before + exc.attempts, "failing", exc.last.error
            await self.outbound.add_attempts(command.command_id, exc.attempts, str(exc.last), error)
        except TimeoutError:
            # Meta did not answer in time: the outcome is unknown, as after a crash (sent again, at least once).
            attempts, why, error = before + 1, "deadline", None
            await self.outbound.add_attempts(command.command_id, 1, "delivery deadline passed")
        if attempts >= self.settings.send_max_attempts:
            await self._fail_exhausted(command, channel, attempts, error)
            return
        await self._park(command, why, attempts, utcnow() + timedelta(seconds=self._delay(attempts)))

    async def _park(self, command: SendCommand, why: str, attempts: int, due: datetime) -> None:
        await self.parked.park(command, due)
        await self.outbound.mark_parked(command, command.kind)  # last: a crash before it parks it again
        SENDS_PARKED.labels(why).inc()
        log.warning("command %s parked (%s) after %d attempts; its number's queue retries it",
                    command.command_id, why, attempts)

    def _delay(self, attempts: int) -> float:
        return backoff_delay(attempts, base_s=self.settings.send_retry_base_s, max_s=self.settings.send_retry_max_s,
                             jitter=self.jitter())

    async def _attempt(self, command: SendCommand, channel: Channel, before: int, max_calls: int) -> None:
        """Up to ``max_calls`` tries of the upload (if any) and the send; records and publishes the outcome,
        or raises ``_GaveUp`` (every try failed retryably; its attempts are the caller's to record)."""
        attempts = 0
        try:
            media_id: str | None = None
            if needs_upload(command):
                media_id, attempts = await self._uploaded_media_id(command, channel, max_calls)
            body = message_body(command, media_id)
            response, calls = await self._call(command.command_id, lambda: self._post(channel, body),
                                               limit_key=channel.phone_number_id, max_attempts=max_calls)
            attempts += calls
        except InvalidCommand as exc:
            await self._fail(command, channel, _local_error("invalid command", str(exc)), before + attempts)
            return
        except _Failed as exc:
            await self._fail(command, channel, exc.error, before + attempts + exc.attempts)
            return
        except _GaveUp as exc:
            raise _GaveUp(attempts + exc.attempts, exc.last) from None
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

    async def _fail_exhausted(self, command: SendCommand, channel: Channel | None, attempts: int,
                              error: MetaError | None, why: str = "retry budget spent") -> None:
        """The send's budget is spent: its conversation learns it failed, with Meta's last error."""
        error = error or _local_error("not sent", why)
        await self._fail(command, channel, error, attempts, retryable=True)

    # --- parked sends (off the partition) -----------------------------------------------------------

    async def retry_parked(self) -> int:
        """One round of the retry loop: every number whose queue is due, concurrently; returns how many."""
        now = utcnow()
        numbers = [n for n in await self.parked.due(now) if await self.parked.claim(n, now)]
        results = await asyncio.gather(*(self._drain(n) for n in numbers), return_exceptions=True)
        for number, result in zip(numbers, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("parked sends of %s: %r; trying again later", number, result)
                await self.parked.reschedule(number, utcnow() + timedelta(seconds=self._delay(1)))
        return len(numbers)

    async def _drain(self, number: str) -> None:
        """The number's parked sends in order, one attempt each, until one fails again (the queue is then due
        after a backoff) or none is left (the queue is closed)."""
        while True:
            head = await self.parked.head(number)
            if head is None:
                await self.parked.close_if_empty(number)
                return
            await self.parked.renew(number)
            command = SendCommand.model_validate(head["command"])
            recorded = await self.outbound.get(command.command_id) or {}
            if recorded.get("state") in FINAL_STATES:
                # Done before it was parked (a deadline that struck while its outcome was being published):
                # its outcome once more (same event id), in case that publication was the part cut short.
                await self._republish(command, recorded)
                await self.parked.remove(command.command_id)
                continue
            attempts = int(recorded.get("attempts") or 0)
            last = recorded.get("last_meta_error")
            error = MetaError.model_validate(last) if isinstance(last, dict) else None
            channel = await self.store.get_channel(number)
            waited = (utcnow() - _aware(head["parked_at"])).total_seconds()
            if channel is None:
                await self._fail(command, None, _local_error(
                    "unknown channel", f"phone number id {number} is not connected"), attempts)
            elif attempts >= self.settings.send_max_attempts or waited > self.settings.send_retry_window_s:
                await self._fail_exhausted(command, channel, attempts, error,
                                           f"not sent within {self.settings.send_retry_window_s:.0f} s")
            else:
                try:
                    async with asyncio.timeout(self.settings.send_delivery_deadline_s):
                        await self._attempt(command, channel, attempts, 1)
                except (_GaveUp, TimeoutError) as exc:
                    tried, failure = (exc.attempts, exc.last) if isinstance(exc, _GaveUp) else (1, None)
                    await self.outbound.add_attempts(command.command_id, tried, str(failure or "deadline passed"),
                                                     failure.error if failure else None)
                    attempts += tried
                    if attempts < self.settings.send_max_attempts:
                        await self.parked.reschedule(number, utcnow() + timedelta(seconds=self._delay(attempts)))
                        return
                    await self._fail_exhausted(command, channel, attempts, failure.error if failure else error)
            await self.parked.remove(command.command_id)

    async def _uploaded_media_id(self, command: SendCommand, channel: Channel, max_calls: int) -> tuple[str, int]:
        """Meta's media id of the stored file: cached per number for 30 days, else uploaded now."""
        assert command.media is not None and command.media.storage_id
        storage_id = command.media.storage_id
        cached = await self.outbound.cached_upload(channel.phone_number_id, storage_id)
        if cached:
            return cached, 0
        stored = await self.media_store.info(storage_id)
        if stored is None:
            raise _Failed(_local_error("media not found", f"no stored file {storage_id}"), 0)
        mime_type = command.media.mime_type or stored.mime_type
        filename = command.media.filename or stored.filename or storage_id

        async def content() -> AsyncIterator[bytes]:
            # Read from GridFS as it is sent, a fresh stream per try: the file is never whole in memory.
            try:
                _, chunks = await self.media_store.open(storage_id)
                async for chunk in chunks:
                    yield chunk
            except (NotFound, CorruptGridFile) as exc:  # removed or damaged since: not worth retrying
                raise _Failed(_local_error("media not readable", f"stored file {storage_id}: {exc}"), 1) from None

        media_id, calls = await self._call(
            command.command_id,
            lambda: self.graph.upload_media(channel.phone_number_id, channel.access_token, content, stored.size,
                                            mime_type, filename),
            limit_key=None, max_attempts=max_calls)
        await self.outbound.remember_upload(channel.phone_number_id, storage_id, media_id)
        await self.media_store.mark_sent(storage_id)
        return media_id, calls

    async def _post(self, channel: Channel, body: dict[str, Any]) -> dict[str, Any]:
        return await self.graph.send_message(channel.phone_number_id, channel.access_token, body)

    async def _call(self, command_id: str, call: Callable[[], Awaitable[T]], *,
                    limit_key: str | None, max_attempts: int) -> tuple[T, int]:
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
                if attempt >= max_attempts:
                    raise _GaveUp(attempt, exc) from None
                delay = backoff_delay(attempt, base_s=self.settings.send_retry_base_s,
                                      max_s=self.settings.send_retry_max_s, retry_after_s=exc.retry_after_s,
                                      jitter=self.jitter())
                log.warning("command %s: attempt %d failed (%s); retrying in %.2fs", command_id, attempt, exc, delay)
                await self.sleep(delay)
                continue
            META_SEND_OUTCOMES.labels("ok", "").inc()
            return result, attempt

    async def _fail(self, command: SendCommand, channel: Channel | None, error: MetaError, attempts: int, *,
                    retryable: bool = False) -> None:
        log.warning("command %s failed: code=%s %s", command.command_id, error.code, error.title)
        payload = SendFailed(**_result_fields(command, channel, max(attempts, 1)), error=error, retryable=retryable)
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
            async with asyncio.timeout(self.settings.send_delivery_deadline_s):
                _, calls = await self._call(command.command_id, lambda: self._post(channel, body),
                                            limit_key=channel.phone_number_id,
                                            max_attempts=self.settings.send_inline_attempts)
        except (_Failed, _GaveUp, TimeoutError) as exc:
            # A read receipt is worth a few tries, not a partition held for other tenants: given up, logged.
            refusal: MetaError | None = (exc.error if isinstance(exc, _Failed)
                                         else exc.last.error if isinstance(exc, _GaveUp) else None)
            log.warning("mark-read %s not done: %r", command.command_id, exc)
            await self.outbound.finish(command.command_id, "failed", getattr(exc, "attempts", 1), error=refusal)
            return
        await self.outbound.finish(command.command_id, "accepted", calls)


async def send_retry_loop(sender: Sender, settings: IngestSettings) -> None:
    """Retries the parked sends of every number whose queue is due, every ``send_retry_poll_s`` (wrap in a
    TaskComponent)."""
    while True:
        try:
            await sender.retry_parked()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away: the next round
            log.warning("parked sends not retried this round: %r", exc)
        await asyncio.sleep(settings.send_retry_poll_s)


def _aware(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


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
