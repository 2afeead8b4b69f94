"""Event payloads of ``inbox.presence.v1``: who is composing, viewing and online (published by presence).

Every presence state is a *session*: it starts, may be renewed silently any number of times, and
stops exactly once, either on request (``reason`` "stopped") or because nobody renewed it in time
(``reason`` "expired"). ``session_id`` is the same on a session's started and stopped events, so a
consumer applies a stop only to the session it names: after a stop and a restart racing on two
replicas, a late "stopped" of the old session must not hide the new one. Delivery is at least once;
a republished event keeps its envelope ``id``.

Keys: the conversation id for composing and viewing (so one conversation's events stay in order), the
agent id for ``presence.agent.online`` / ``.offline`` (so one agent's stay in order).

- ``presence.composing.started`` / ``presence.composing.stopped``: an agent typing a reply.
- ``presence.viewing.started`` / ``presence.viewing.stopped``: the conversation an agent has open.
- ``presence.agent.online`` / ``presence.agent.offline``: heartbeats started / stopped coming.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from inbox_core.events import EventData, event_type

TOPIC = "inbox.presence.v1"

StopReason = Literal["stopped", "expired"]


class PresenceAgent(BaseModel):
    id: str
    name: str = ""


class _Activity(EventData):
    session_id: str
    conversation_id: str
    agent: PresenceAgent
    since: datetime


class _ActivityStarted(_Activity):
    expires_at: datetime  # stops then unless renewed (renewals publish nothing)


class _ActivityStopped(_Activity):
    reason: StopReason


@event_type("presence.composing.started")
class ComposingStarted(_ActivityStarted):
    pass


@event_type("presence.composing.stopped")
class ComposingStopped(_ActivityStopped):
    pass


@event_type("presence.viewing.started")
class ViewingStarted(_ActivityStarted):
    pass


@event_type("presence.viewing.stopped")
class ViewingStopped(_ActivityStopped):
    pass


@event_type("presence.agent.online")
class AgentOnline(EventData):
    session_id: str
    agent: PresenceAgent
    since: datetime
    expires_at: datetime  # offline then without another heartbeat


@event_type("presence.agent.offline")
class AgentOffline(EventData):
    session_id: str
    agent: PresenceAgent
    since: datetime
    last_seen: datetime  # the last heartbeat
    reason: StopReason
