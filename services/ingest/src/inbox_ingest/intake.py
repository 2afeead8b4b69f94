"""From a verified, normalised webhook to events durably on Kafka: routing, dedupe, publishing.

The webhook is answered 200 only after every event of the body is on ``whatsapp.events.v1`` (or, for
a number that is not connected, recorded as unrouted). The only database round trip on the way is
dedupe's (one query on the ids of the body, shared with the webhooks that arrive while one runs;
numbers come from the store's cache), and a body's events are sent together. A publish that Kafka does
not confirm in time makes the answer 503 only when Kafka confirms nothing else either (a loaded Kafka is
waited on, up to ``MAX_WAIT_S``), and Meta retries; the unconfirmed send is not abandoned: it stays in
flight, a retry of the same event waits for it instead of producing it again, and once it lands the
event is marked seen, so a retry that comes later is not published twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from prometheus_client import Counter, Histogram

from inbox_core.errors import Unavailable
from inbox_core.events import Event
from inbox_core.kafka import publish
from inbox_core.topics import WHATSAPP_EVENTS
from inbox_ingest.domain.normalise import NormalisedEvent
from inbox_ingest.store import IngestStore

log = logging.getLogger("inbox.ingest.intake")

EVENTS = Counter("inbox_ingest_webhook_events_total", "Webhook events by outcome", ["outcome"])
PUBLISH_SECONDS = Histogram("inbox_ingest_publish_seconds", "Time for Kafka to confirm a webhook's events")


@dataclass(frozen=True)
class IntakeResult:
    published: int
    duplicates: int
    unrouted: int


class Intake:
    RECENT_IDS = 50_000
    MARK_DELAY_S = 0.05
    # Longest a webhook waits on a Kafka that is confirming, slowly (Meta retries a slower answer).
    MAX_WAIT_S = 15.0

    def __init__(self, store: IngestStore, broker: KafkaBroker, *, publish_timeout_s: float, dedupe_days: int) -> None:
        self.store = store
        self.broker = broker
        self.publish_timeout_s = publish_timeout_s
        self.dedupe_days = dedupe_days
        self._inflight: dict[str, asyncio.Future[None]] = {}
        # Published ids are marked seen in the database in batches, off the webhook's path; until a
        # batch is written, this remembers them, so a quick redelivery is not published again.
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._to_mark: list[str] = []
        self._marker: asyncio.Task[None] | None = None
        self._last_landed = 0.0  # monotonic time Kafka last confirmed one of our sends

    async def accept(self, events: list[NormalisedEvent]) -> IntakeResult:
        try:
            routed, unrouted = await self._route(events)
            candidates = [e.event.id for e in routed + unrouted if e.event.id not in self._recent]
            fresh = await self.store.unseen(candidates)
        except Exception as exc:  # the database is away: Meta retries later
            log.warning("cannot route webhook events: %r", exc)
            raise Unavailable("the inbox cannot take this webhook right now") from exc
        # Asked again after the query: a send of the same event (a retry's first attempt, in flight while
        # Kafka was away) may have landed meanwhile, and the database is told of it only later.
        fresh -= self._recent.keys()
        to_publish = [e for e in routed if e.event.id in fresh]
        new_unrouted = [e for e in unrouted if e.event.id in fresh]
        await self._publish_all(to_publish)  # each published event is marked seen as it lands
        if new_unrouted:
            try:
                await self.store.record_unrouted([(e.key, e.event) for e in new_unrouted])
                await self.store.mark_seen([e.event.id for e in new_unrouted], self.dedupe_days)
            except Exception as exc:
                raise Unavailable("the inbox cannot take this webhook right now") from exc
        duplicates = len(events) - len(to_publish) - len(new_unrouted)
        EVENTS.labels("published").inc(len(to_publish))
        EVENTS.labels("duplicate").inc(duplicates)
        EVENTS.labels("unrouted").inc(len(new_unrouted))
        return IntakeResult(len(to_publish), duplicates, len(new_unrouted))

    async def _route(self, events: list[NormalisedEvent]) -> tuple[list[NormalisedEvent], list[NormalisedEvent]]:
        """Stamps each event with the workspace of its number (or, for account-level events, of its
        business account); events of numbers that are not connected come back as unrouted."""
        routed: list[NormalisedEvent] = []
        unrouted: list[NormalisedEvent] = []
        for item in events:
            data = item.event.data
            workspace: str | None = None
            phone_number_id = data.get("phone_number_id")
            if phone_number_id:
                channel = await self.store.get_channel(str(phone_number_id))
                workspace = channel.workspace_id if channel else None
            elif data.get("waba_id"):
                workspace = await self.store.workspace_of_waba(str(data["waba_id"]))
            if workspace is None:
                unrouted.append(item)
            else:
                event = item.event.model_copy(update={"workspace_id": workspace})
                routed.append(NormalisedEvent(key=item.key, event=event))
        return routed, unrouted

    async def _publish_all(self, items: list[NormalisedEvent]) -> None:
        if not items:
            return
        futures = [self._publish_once(item.key, item.event) for item in items]
        started = time.monotonic()
        with PUBLISH_SECONDS.time():
            done, pending = await asyncio.wait(futures, timeout=self.publish_timeout_s)
            # Load alone is no reason to refuse: while Kafka confirms other sends (slowly), wait on,
            # up to MAX_WAIT_S; only a Kafka that confirms nothing within the timeout is away.
            while pending and not any(f.exception() for f in done) and self._kafka_confirming() \
                    and time.monotonic() - started < self.MAX_WAIT_S:
                more, pending = await asyncio.wait(pending, timeout=self.publish_timeout_s)
                done |= more
        failed = [f for f in done if f.exception() is not None]
        if pending or failed:
            reason = repr(failed[0].exception()) if failed else "Kafka did not confirm in time"
            log.warning("webhook events not confirmed by Kafka (%d pending, %d failed): %s",
                        len(pending), len(failed), reason)
            raise Unavailable("the event log cannot take this webhook right now; retry later")

    def _publish_once(self, key: str, event: Event) -> asyncio.Future[None]:
        """One send per event id at a time: a retry while the first send is still in flight waits for it."""
        existing = self._inflight.get(event.id)
        if existing is not None and not existing.done():
            return existing
        future = asyncio.ensure_future(self._publish_and_mark(key, event))
        self._inflight[event.id] = future
        future.add_done_callback(lambda f: self._finished(event.id, f))
        return future

    def _finished(self, event_id: str, future: asyncio.Future[None]) -> None:
        self._inflight.pop(event_id, None)
        if not future.cancelled() and future.exception() is not None:
            EVENTS.labels("publish_failed").inc()

    def _kafka_confirming(self) -> bool:
        return time.monotonic() - self._last_landed < self.publish_timeout_s

    async def _publish_and_mark(self, key: str, event: Event) -> None:
        await publish(self.broker, WHATSAPP_EVENTS, key, event)
        self._last_landed = time.monotonic()
        # Marked seen even when the webhook that sent it was already answered 503.
        self._recent[event.id] = None
        while len(self._recent) > self.RECENT_IDS:
            self._recent.popitem(last=False)
        self._to_mark.append(event.id)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.create_task(self._mark_batch())

    async def _mark_batch(self) -> None:
        while self._to_mark:
            await asyncio.sleep(self.MARK_DELAY_S)  # let a batch gather
            ids, self._to_mark = self._to_mark, []
            try:
                await self.store.mark_seen(ids, self.dedupe_days)
            except Exception as exc:
                # A redelivery may then be published again; consumers dedupe it by event id.
                log.warning("could not mark %d events seen: %r", len(ids), exc)

    async def flush(self) -> None:
        """Writes the pending seen-marks now (on shutdown, and in tests)."""
        while self._marker is not None and not self._marker.done():
            await self._marker
