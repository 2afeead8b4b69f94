"""Pure rules of presence (no I/O): when a state expires, what is a transition worth an event, what a
caller may see, and which event announces which change.

A presence state (an agent online, composing in or viewing a conversation) is a *session*: it starts,
is renewed silently while the agent keeps saying so, and stops once, on request or when its
``expires_at`` passes. Only starts and stops are announced, never renewals: a burst of keystrokes is
one "composing started". A session's two events have ids derived from the session id, so whoever
announces a stop (a request, or the purge loop of any replica) announces the same event, and
recording it can be the one atomic claim that decides who does.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from inbox_core.errors import InvalidRequest
from inbox_core.events import Event, EventData, new_id
from inbox_core.events.presence import (
    AgentOffline,
    AgentOnline,
    ComposingStarted,
    ComposingStopped,
    PresenceAgent,
    StopReason,
    ViewingStarted,
    ViewingStopped,
)

Kind = Literal["online", "composing", "viewing"]
Change = Literal["start", "stop"]

MAX_ID_LENGTH = 200
MAX_NAME_LENGTH = 200
MAX_CONVERSATIONS_PER_QUERY = 500


@dataclass(frozen=True)
class Agent:
    id: str
    name: str = ""


@dataclass(frozen=True)
class Ttls:
    """How long each state lasts without renewal."""

    composing: timedelta
    online: timedelta
    viewing: timedelta

    def of(self, kind: Kind) -> timedelta:
        return {"composing": self.composing, "online": self.online, "viewing": self.viewing}[kind]


@dataclass(frozen=True)
class State:
    session_id: str
    key: str
    kind: Kind
    workspace_id: str
    agent: Agent
    conversation_id: str | None
    since: datetime
    expires_at: datetime
    last_seen: datetime
    # Its "started" could not be published when it started: the next renewal tries again.
    unannounced: bool = False


@dataclass(frozen=True)
class ConversationView:
    conversation_id: str
    composing: list[State]
    viewing: list[State]


@dataclass(frozen=True)
class AgentView:
    online: State
    viewing_conversation_id: str


# --- time -------------------------------------------------------------------------------------------


def storage_time(at: datetime) -> datetime:
    """``at`` in UTC at the database's precision (milliseconds), so what a caller is told equals what
    is stored and compared."""
    at = at.astimezone(UTC)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def expiry(now: datetime, ttl: timedelta) -> datetime:
    return storage_time(now + ttl)


def is_expired(expires_at: datetime, now: datetime) -> bool:
    return expires_at <= now


# --- identity and validation ------------------------------------------------------------------------


def state_key(kind: Kind, workspace_id: str, agent_id: str, conversation_id: str | None = None) -> str:
    """The one live state a (kind, workspace, agent[, conversation]) can have; unambiguous whatever the
    ids contain. The workspace is part of it, so two workspaces never share a state."""
    parts: list[str] = [kind, workspace_id, agent_id]
    if kind != "online":
        if not conversation_id:
            raise ValueError(f"a {kind} state needs a conversation")
        parts.append(conversation_id)
    return json.dumps(parts, separators=(",", ":"))


def require_id(name: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidRequest(f"{name} is required", {"field": name})
    if len(value) > MAX_ID_LENGTH:
        raise InvalidRequest(f"{name} is too long", {"field": name, "max": MAX_ID_LENGTH})
    return value


def agent_of(agent_id: str, name: str) -> Agent:
    return Agent(require_id("agent.id", agent_id), name.strip()[:MAX_NAME_LENGTH])


def requested_conversations(ids: Sequence[str]) -> list[str]:
    """The conversations a query asks for, in request order, each once."""
    if len(ids) > MAX_CONVERSATIONS_PER_QUERY:
        raise InvalidRequest("too many conversation_ids", {"max": MAX_CONVERSATIONS_PER_QUERY})
    seen: dict[str, None] = {}
    for raw in ids:
        seen.setdefault(require_id("conversation_ids", raw), None)
    return list(seen)


# --- transitions ------------------------------------------------------------------------------------


def new_state(kind: Kind, workspace_id: str, agent: Agent, conversation_id: str | None, now: datetime,
              ttls: Ttls, session_id: str | None = None) -> State:
    """A state as it is first stored."""
    now = storage_time(now)
    return State(
        session_id=session_id or new_id(),
        key=state_key(kind, workspace_id, agent.id, conversation_id),
        kind=kind,
        workspace_id=workspace_id,
        agent=agent,
        conversation_id=conversation_id if kind != "online" else None,
        since=now,
        expires_at=expiry(now, ttls.of(kind)),
        last_seen=now,
    )


def is_start(before: State | None) -> bool:
    """Whether saying "I am (still) doing this" started a state (announced) or renewed one (silent).

    ``before`` is what the renewal found: it only ever matches an unexpired state, so finding nothing
    means the state was not visible a moment ago and this call starts it (by inserting it: one state
    per key, so of many concurrent calls exactly one inserts and a burst announces one start).
    """
    return before is None


def stop_reason(requested: StopReason, expires_at: datetime, at: datetime) -> StopReason:
    """A stop asked for after the state had already run out is reported as what it was: an expiry."""
    return "expired" if is_expired(expires_at, at) else requested


def viewing_to_end(current: Iterable[State], conversation_id: str | None) -> list[State]:
    """An agent views one conversation at a time: opening one (or none) ends the others."""
    return [s for s in current if s.kind == "viewing" and s.conversation_id != conversation_id]


# --- events -----------------------------------------------------------------------------------------


def event_key(state: State) -> str:
    """Kafka key: the conversation for composing and viewing, the agent for online / offline."""
    if state.kind == "online":
        return state.agent.id
    assert state.conversation_id is not None
    return state.conversation_id


_EVENT_IDS = uuid.UUID("6f1c2a52-8f0e-4d8e-9a35-5b1f0c7d2e11")


def event_id(session_id: str, change: Change) -> str:
    """The id of a session's started / stopped event: the same whoever computes it."""
    return uuid.uuid5(_EVENT_IDS, f"{session_id}/{change}").hex


def start_event(state: State) -> tuple[str, Event]:
    """The event announcing that ``state`` started, and its key."""
    agent = PresenceAgent(id=state.agent.id, name=state.agent.name)
    payload: EventData
    if state.kind == "online":
        payload = AgentOnline(session_id=state.session_id, agent=agent, since=state.since,
                              expires_at=state.expires_at)
    else:
        started = ComposingStarted if state.kind == "composing" else ViewingStarted
        assert state.conversation_id is not None
        payload = started(session_id=state.session_id, conversation_id=state.conversation_id, agent=agent,
                          since=state.since, expires_at=state.expires_at)
    event = Event.of(payload, workspace_id=state.workspace_id, id=event_id(state.session_id, "start"),
                     occurred_at=state.since)
    return event_key(state), event


def stop_event(state: State, requested: StopReason, at: datetime) -> tuple[str, Event]:
    """The event announcing that ``state`` stopped at ``at`` (or, if it had run out, when it did)."""
    agent = PresenceAgent(id=state.agent.id, name=state.agent.name)
    reason = stop_reason(requested, state.expires_at, at)
    occurred_at = storage_time(min(at, state.expires_at) if reason == "expired" else at)
    payload: EventData
    if state.kind == "online":
        payload = AgentOffline(session_id=state.session_id, agent=agent, since=state.since,
                               last_seen=state.last_seen, reason=reason)
    else:
        stopped = ComposingStopped if state.kind == "composing" else ViewingStopped
        assert state.conversation_id is not None
        payload = stopped(session_id=state.session_id, conversation_id=state.conversation_id, agent=agent,
                          since=state.since, reason=reason)
    event = Event.of(payload, workspace_id=state.workspace_id, id=event_id(state.session_id, "stop"),
                     occurred_at=occurred_at)
    return event_key(state), event


def relay_start(session_exists: bool) -> bool:
    """A "started" left unpublished (a failed publish, or a crash) is published late only while its
    session still runs: otherwise it was never started (the insert lost or never happened) or it
    has stopped already, and a late start would outlive its stop."""
    return session_exists


# --- what a caller sees -----------------------------------------------------------------------------


def is_visible(state: State, workspace_id: str, now: datetime) -> bool:
    """Not run out, and of the caller's own workspace."""
    return state.workspace_id == workspace_id and not is_expired(state.expires_at, now)


def conversation_view(workspace_id: str, requested: Sequence[str], states: Iterable[State],
                      now: datetime) -> list[ConversationView]:
    """Who composes in and views each conversation: one entry per requested conversation in request
    order (empty lists when nobody is there), or, when none was requested, every conversation with
    someone in it, by id. Activities are oldest first."""
    by_conversation: dict[str, ConversationView] = {}
    for conversation_id in requested:
        by_conversation[conversation_id] = ConversationView(conversation_id, [], [])
    for state in sorted(states, key=lambda s: (s.since, s.agent.id)):
        if state.kind == "online" or state.conversation_id is None or not is_visible(state, workspace_id, now):
            continue
        view = by_conversation.get(state.conversation_id)
        if view is None:
            if requested:
                continue
            view = by_conversation[state.conversation_id] = ConversationView(state.conversation_id, [], [])
        (view.composing if state.kind == "composing" else view.viewing).append(state)
    if requested:
        return list(by_conversation.values())
    return [by_conversation[c] for c in sorted(by_conversation)]


def agents_view(workspace_id: str, states: Iterable[State], now: datetime) -> list[AgentView]:
    """The workspace's agents online now, each with the conversation it views (the latest opened)."""
    online: dict[str, State] = {}
    viewing: dict[str, State] = {}
    for state in states:
        if not is_visible(state, workspace_id, now):
            continue
        if state.kind == "online":
            online[state.agent.id] = state
        elif state.kind == "viewing":
            current = viewing.get(state.agent.id)
            if current is None or state.since > current.since:
                viewing[state.agent.id] = state
    return [
        AgentView(state, (viewing[agent_id].conversation_id or "") if agent_id in viewing else "")
        for agent_id, state in sorted(online.items(), key=lambda item: (item[1].since, item[0]))
    ]
