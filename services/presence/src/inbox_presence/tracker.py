"""What the presence RPCs and the purge loop do: change the state in the database, then publish.

- Start: renew the running session of the key if there is one (one update, nothing published).
  Otherwise write the "started" event to the outbox, insert the session (one per key: of concurrent
  callers exactly one inserts), publish, and delete the outbox entry. A caller whose insert lost
  deletes its entry and renews the winner's session instead.
- Stop (a request, or the purge loop when ``expires_at`` passed): insert the "stopped" event, whose id
  is derived from the session, into the outbox; that insert is the claim (exactly one caller of any
  replica gets it), then delete the session, publish, and mark the entry done (it is kept a while as
  the claim, for a caller still holding an old read of the session).
- A failed publish answers UNAVAILABLE and leaves the entry: the client's retry of the same call
  publishes it (a renewal re-announces a start that was not published; a repeated stop publishes the
  stop), and so does the purge loop of any replica anyway. A crash between writing and publishing
  leaves the entry too, which the purge loop publishes after ``relay_grace``. Delivery is therefore at
  least once, with the same event id each time.

The outbox is ``inbox_core.outbox``'s (:class:`SessionEvents` is its entry source, named ``presence`` in
outbox_parked): an entry is one event, its lane the session, so a session's events go out in order and
one Kafka refuses for itself is parked after three tries and the session's next ones go on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from faststream.kafka import KafkaBroker

from inbox_core.errors import Unavailable
from inbox_core.events import Event, utcnow
from inbox_core.events.presence import StopReason
from inbox_core.kafka import publish
from inbox_core.outbox import Entry, Outbox, Outgoing, run_every
from inbox_core.topics import PRESENCE
from inbox_presence import domain
from inbox_presence.domain import Agent, AgentView, Change, ConversationView, Kind, State, Ttls
from inbox_presence.store import OutboxEntry, PresenceStore, entry_doc, entry_from_doc

log = logging.getLogger("inbox.presence")

Publisher = Callable[[str, Event], Awaitable[None]]
Clock = Callable[[], datetime]

START_ATTEMPTS = 5
PURGE_CONCURRENCY = 16


def kafka_publisher(broker: KafkaBroker, topic: str = PRESENCE.name) -> Publisher:
    async def send(key: str, event: Event) -> None:
        await publish(broker, topic, key, event)

    return send


# The presence outbox's name in outbox_parked (python -m inbox_core.outbox presence list).
PARKING_SOURCE = "presence"


class SessionEvents:
    """The ``outbox`` collection as an ``inbox_core.outbox`` entry source."""

    name = PARKING_SOURCE

    def __init__(self, tracker: PresenceTracker) -> None:
        self.tracker = tracker
        self.store = tracker.store

    @staticmethod
    def entry(entry: OutboxEntry, *, relayed: bool = False) -> Entry:
        return Entry(entry.event.id, entry.session_id,
                     [Outgoing(PRESENCE.name, entry.kafka_key, entry.event).to_doc()], entry.created_at,
                     {"doc": entry_doc(entry), "relayed": relayed})

    async def due(self, before: datetime, limit: int) -> list[Entry]:
        # The relay_after of each entry holds its grace. Starts before stops (stable: within a session).
        due = sorted(await self.store.due(self.tracker.now(), limit), key=lambda e: e.seq)
        return [self.entry(e, relayed=True) for e in due]

    async def prepare(self, entry: Entry) -> bool:
        presence = entry_from_doc(entry.data["doc"])
        if entry.data.get("relayed") and presence.change == "start" \
                and not domain.relay_start(bool(await self.store.existing([presence.session_id]))):
            await self.store.discard(presence.event.id)
            return False
        return True

    async def finished(self, entry: Entry) -> None:
        await self.store.published(entry_from_doc(entry.data["doc"]), self.tracker.now())

    async def park(self, entry: Entry) -> None:
        # Kept as its session's claim like a published one.
        await self.store.park(entry_from_doc(entry.data["doc"]), self.tracker.now())

    async def restore(self, entry: Entry) -> None:
        # Parked before the shared outbox: the entry's document itself.
        await self.store.restore(entry.data.get("doc") or entry.data["legacy"], self.tracker.now())


@dataclass
class PurgeResult:
    expired: int = 0  # sessions this replica stopped by expiry
    republished: int = 0  # left-over events it published
    dropped: int = 0  # left-over "started" of sessions that no longer run
    failed: int = 0


class PresenceTracker:
    def __init__(self, store: PresenceStore, publisher: Publisher, ttls: Ttls, *,
                 relay_grace: timedelta = timedelta(seconds=30), claim_retention: timedelta = timedelta(minutes=10),
                 clock: Clock = utcnow) -> None:
        self.store = store
        self.publisher = publisher
        self.ttls = ttls
        self.relay_grace = relay_grace
        # How long a published stop is kept as the claim on its session: far longer than any caller
        # can take between reading a session and trying to stop it.
        self.claim_retention = claim_retention
        self.clock = clock
        self.entries = SessionEvents(self)
        self.outbox = Outbox(store.db, self._publish, [self.entries], grace=timedelta(0),
                             concurrency=PURGE_CONCURRENCY)
        self.parking = self.outbox.parking
        # Completed purge cycles: lets a test or a probe wait until a cycle ran after some moment.
        self.purge_cycles = 0

    def now(self) -> datetime:
        return domain.storage_time(self.clock())

    async def _publish(self, out: Outgoing) -> None:
        await self.publisher(out.key, out.event)  # on the publisher's topic (tests use their own)

    # --- the RPCs -----------------------------------------------------------------------------------

    async def heartbeat(self, workspace_id: str, agent: Agent) -> datetime:
        """The agent is online until the returned time; its open conversation stays viewed as long."""
        state = await self._start_or_renew("online", workspace_id, agent, None)
        now = state.last_seen
        await self.store.extend(workspace_id, agent.id, "viewing", now, domain.expiry(now, self.ttls.viewing))
        return state.expires_at

    async def set_composing(self, workspace_id: str, agent: Agent, conversation_id: str,
                            composing: bool) -> datetime | None:
        if composing:
            return (await self._start_or_renew("composing", workspace_id, agent, conversation_id)).expires_at
        await self._stop_key(domain.state_key("composing", workspace_id, agent.id, conversation_id))
        return None

    async def set_viewing(self, workspace_id: str, agent: Agent, conversation_id: str | None) -> datetime | None:
        # End the previous one first, so nobody sees the agent in two conversations at once.
        current = await self.store.of_agent(workspace_id, agent.id, "viewing")
        for state in domain.viewing_to_end(current, conversation_id):
            await self._stop(state, "stopped")
        if not conversation_id:
            return None
        return (await self._start_or_renew("viewing", workspace_id, agent, conversation_id)).expires_at

    async def get_presence(self, workspace_id: str,
                           conversation_ids: Sequence[str]) -> tuple[list[ConversationView], list[AgentView]]:
        requested = domain.requested_conversations(conversation_ids)
        now = self.now()
        people = await self.store.visible(workspace_id, ("online", "viewing"), now)
        composing = await self.store.visible(workspace_id, ("composing",), now, requested)
        viewing = [s for s in people if s.kind == "viewing" and (not requested or s.conversation_id in requested)]
        conversations = domain.conversation_view(workspace_id, requested, [*composing, *viewing], now)
        return conversations, domain.agents_view(workspace_id, people, now)

    # --- transitions --------------------------------------------------------------------------------

    async def _start_or_renew(self, kind: Kind, workspace_id: str, agent: Agent,
                              conversation_id: str | None) -> State:
        """Renews the state silently, or starts it and publishes "started". Returns it as it is now."""
        for _ in range(START_ATTEMPTS):
            now = self.now()
            fresh = domain.new_state(kind, workspace_id, agent, conversation_id, now, self.ttls)
            before = await self.store.renew(fresh)
            if not domain.is_start(before):
                assert before is not None
                if before.unannounced:
                    # Its "started" was not published when it started: this retry publishes it.
                    await self._flush(before.session_id)
                    await self.store.set_unannounced(before.session_id, False)
                return replace(before, expires_at=fresh.expires_at, last_seen=now, agent=agent)
            # Written before the insert, so that no crash can leave a started session unannounced.
            entry = self.outbox_entry(fresh, "start", now)
            await self.store.add(entry)
            if await self.store.insert(fresh):
                await self._flush(fresh.session_id, [entry])
                return fresh
            await self.store.discard(entry.event.id)  # not started by this call after all
            current = await self.store.find(fresh.key)
            if current is not None and domain.is_expired(current.expires_at, now):
                # It ran out and no purge stopped it yet: stop it here ("stopped" before the new
                # "started"), then start anew. Otherwise a concurrent call started it: the next try renews it.
                await self._stop(current, "expired")
        raise Unavailable("presence state is busy, retry")

    async def _stop_key(self, key: str) -> None:
        current = await self.store.find(key)
        if current is not None and await self._stop(current, "stopped"):
            return
        # Nothing (more) to stop. A retry of a stop whose publish failed lands here: publish what is left.
        for session_id in await self.store.pending_sessions_of(key):
            await self._flush(session_id)

    async def _stop(self, state: State, reason: StopReason) -> bool:
        """Stops ``state`` and publishes "stopped"; True if this call was the one that stopped it."""
        now = self.now()
        claimed = await self.store.add(self.outbox_entry(state, "stop", now, reason))
        # Also when someone else claimed it (a request, another replica's purge): it is stopped either
        # way, and this frees the key even if the claimer died before deleting it.
        await self.store.delete(state.session_id)
        if claimed:
            await self._flush(state.session_id)  # with its "started" first, if that is still unpublished
        return claimed

    def outbox_entry(self, state: State, change: Change, now: datetime,
                     reason: StopReason = "stopped") -> OutboxEntry:
        """The outbox entry of a start or stop of ``state``, due for the purge loop after the grace."""
        kafka_key, event = domain.start_event(state) if change == "start" else domain.stop_event(state, reason, now)
        return OutboxEntry(event=event, kafka_key=kafka_key, session_id=state.session_id, key=state.key,
                           change=change, created_at=now, relay_after=now + self.relay_grace)

    async def _flush(self, session_id: str, entries: Sequence[OutboxEntry] | None = None) -> int:
        """Publishes the session's outbox entries in order, deleting each once Kafka has it. Raises
        Unavailable when Kafka does not take one; what is left is retried by a retry of the call or by
        the purge loop. Returns how many it published."""
        if entries is None:
            entries = await self.store.pending_of(session_id)
        done = 0
        for entry in entries:
            outcome, exc = await self.outbox.deliver(self.entries, self.entries.entry(entry))
            if outcome in ("failed", "unavailable"):
                await self._publish_failed(entry)
                raise Unavailable("presence event could not be published, retry") from exc
            done += outcome == "published"  # a parked one is out of the way: the session's next ones go on
        return done

    async def _publish_failed(self, entry: OutboxEntry) -> None:
        try:
            await self.store.relay_now(entry.session_id, self.now())
            if entry.change == "start":
                await self.store.set_unannounced(entry.session_id, True)
        except Exception:
            log.warning("could not record the failed publish of %s; the purge loop retries it after the grace",
                        entry.event.id, exc_info=True)

    # --- the purge loop -----------------------------------------------------------------------------

    async def purge_once(self, batch: int = 500) -> PurgeResult:
        """Stops what ran out (publishing "stopped" / "offline") and publishes events left over by
        failed publishes or dead replicas. Replicas may run this at the same time: each expired state
        is stopped by exactly one of them."""
        result = PurgeResult()
        gate = asyncio.Semaphore(PURGE_CONCURRENCY)
        now = self.now()

        async def expire(state: State) -> None:
            async with gate:
                try:
                    if await self._stop(state, "expired"):
                        result.expired += 1
                except Unavailable:
                    result.failed += 1

        await asyncio.gather(*(expire(s) for s in await self.store.expired(now, batch)))

        # Left-over events (failed publishes, dead replicas) and replays: the outbox relay's round.
        self.outbox.batch = batch
        relayed = await self.outbox.relay_once()
        result.republished = relayed.published
        result.dropped = relayed.dropped
        result.failed += relayed.failed + (relayed.error is not None)
        await self.store.forget_done(self.now() - self.claim_retention)
        self.purge_cycles += 1
        return result

    async def run_purge(self, interval_s: float, batch: int = 500) -> None:
        """The background loop (a TaskComponent): never dies of a passing failure."""
        async def step() -> None:
            result = await self.purge_once(batch)
            if result.failed:
                log.warning("purge: %d event(s) could not be published, retrying next cycle", result.failed)

        await run_every(interval_s, step, "presence purge")
