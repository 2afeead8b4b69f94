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
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from faststream.kafka import KafkaBroker

from inbox_core.errors import Unavailable
from inbox_core.events import Event, utcnow
from inbox_core.events.presence import StopReason
from inbox_core.kafka import is_transient, publish
from inbox_core.outbox import Parking
from inbox_core.topics import PRESENCE
from inbox_presence import domain
from inbox_presence.domain import Agent, AgentView, Change, ConversationView, Kind, State, Ttls
from inbox_presence.store import OutboxEntry, PresenceStore, entry_doc

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
        self.parking = Parking(store.db)
        # Completed purge cycles: lets a test or a probe wait until a cycle ran after some moment.
        self.purge_cycles = 0

    def now(self) -> datetime:
        return domain.storage_time(self.clock())

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
            try:
                await self.publisher(entry.kafka_key, entry.event)
            except Exception as exc:
                # One Kafka refuses for itself, again and again, is parked: the session's next ones go on.
                if not is_transient(exc) and await self.parking.failed(PARKING_SOURCE, entry.event.id, exc,
                                                                       entry_doc(entry)):
                    await self.store.park(entry, self.now())
                    continue
                await self._publish_failed(entry)
                raise Unavailable("presence event could not be published, retry") from exc
            await self.store.published(entry, self.now())
            done += 1
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
        for replay in await self.parking.replays(PARKING_SOURCE):
            await self.store.restore(replay["entry"], now)
            await self.parking.taken(replay)

        async def expire(state: State) -> None:
            async with gate:
                try:
                    if await self._stop(state, "expired"):
                        result.expired += 1
                except Unavailable:
                    result.failed += 1

        await asyncio.gather(*(expire(s) for s in await self.store.expired(now, batch)))

        due = await self.store.due(self.now(), batch)
        by_session: dict[str, list[OutboxEntry]] = defaultdict(list)
        for entry in due:
            by_session[entry.session_id].append(entry)
        running = await self.store.existing(by_session) if by_session else set()

        async def relay(session_id: str, entries: list[OutboxEntry]) -> None:
            keep: list[OutboxEntry] = []
            for entry in sorted(entries, key=lambda e: e.seq):
                if entry.change == "start" and not domain.relay_start(session_id in running):
                    await self.store.discard(entry.event.id)
                    result.dropped += 1
                else:
                    keep.append(entry)
            async with gate:
                try:
                    published = await self._flush(session_id, keep)
                    result.republished += published
                except Unavailable:
                    result.failed += 1

        await asyncio.gather(*(relay(sid, entries) for sid, entries in by_session.items()))
        await self.store.forget_done(self.now() - self.claim_retention)
        self.purge_cycles += 1
        return result

    async def run_purge(self, interval_s: float, batch: int = 500) -> None:
        """The background loop (a TaskComponent): never dies of a passing failure."""
        while True:
            try:
                result = await self.purge_once(batch)
                if result.failed:
                    log.warning("purge: %d event(s) could not be published, retrying next cycle", result.failed)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("purge cycle failed; retrying")
            await asyncio.sleep(interval_s)
