"""The pure rules of presence: expiry, transitions, what is visible, which event announces what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from inbox_core.errors import InvalidRequest
from inbox_core.events import Event
from inbox_core.events.presence import (
    AgentOffline,
    AgentOnline,
    ComposingStarted,
    ComposingStopped,
    ViewingStarted,
    ViewingStopped,
)
from inbox_presence import domain
from inbox_presence.domain import Agent, State, Ttls

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
TTLS = Ttls(composing=timedelta(seconds=6), online=timedelta(seconds=45), viewing=timedelta(seconds=30))
ALICE = Agent("a1", "Alice")
BOB = Agent("b1", "Bob")


def state(kind: domain.Kind, agent: Agent = ALICE, conversation_id: str | None = "c1", workspace_id: str = "w1",
          since: datetime = T0) -> State:
    return domain.new_state(kind, workspace_id, agent, conversation_id if kind != "online" else None, since, TTLS)


def test_expiry_is_now_plus_ttl_at_millisecond_precision_in_utc() -> None:
    now = datetime(2026, 3, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert domain.expiry(now, timedelta(seconds=6)) == datetime(2026, 3, 1, 12, 0, 6, 123000, tzinfo=UTC)
    assert domain.expiry(now, timedelta(seconds=6)).tzinfo == UTC


def test_each_kind_expires_after_its_own_ttl() -> None:
    assert state("composing").expires_at == T0 + timedelta(seconds=6)
    assert state("online").expires_at == T0 + timedelta(seconds=45)
    assert state("viewing").expires_at == T0 + timedelta(seconds=30)


def test_a_state_is_expired_from_its_expiry_on() -> None:
    s = state("composing")
    assert not domain.is_expired(s.expires_at, s.expires_at - timedelta(milliseconds=1))
    assert domain.is_expired(s.expires_at, s.expires_at)
    assert domain.is_visible(s, "w1", s.expires_at - timedelta(milliseconds=1))
    assert not domain.is_visible(s, "w1", s.expires_at)


def test_another_workspace_never_sees_a_state() -> None:
    s = state("composing", workspace_id="w1")
    assert domain.is_visible(s, "w1", T0)
    assert not domain.is_visible(s, "w2", T0)
    assert domain.conversation_view("w2", ["c1"], [s], T0)[0].composing == []
    assert domain.conversation_view("w2", [], [s], T0) == []
    assert domain.agents_view("w2", [state("online", workspace_id="w1")], T0) == []


def test_keys_are_per_workspace_agent_and_conversation_and_unambiguous() -> None:
    keys = {
        domain.state_key("composing", "w1", "a1", "c1"),
        domain.state_key("composing", "w2", "a1", "c1"),
        domain.state_key("composing", "w1", "a2", "c1"),
        domain.state_key("composing", "w1", "a1", "c2"),
        domain.state_key("viewing", "w1", "a1", "c1"),
        domain.state_key("online", "w1", "a1"),
        # Separators inside ids must not make two different states collide.
        domain.state_key("composing", "w", "1:a1", "c1"),
        domain.state_key("composing", "w:1", "a1", "c1"),
    }
    assert len(keys) == 8
    assert domain.state_key("online", "w1", "a1", "ignored") == domain.state_key("online", "w1", "a1")
    with pytest.raises(ValueError):
        domain.state_key("composing", "w1", "a1")


def test_only_an_insert_is_a_start_a_renewal_is_silent() -> None:
    assert domain.is_start(None)
    assert not domain.is_start(state("composing"))


def test_each_start_is_a_new_session_with_its_own_event_ids() -> None:
    a, b = state("composing"), state("composing")
    assert a.session_id != b.session_id
    ids = {domain.event_id(a.session_id, "start"), domain.event_id(a.session_id, "stop"),
           domain.event_id(b.session_id, "start"), domain.event_id(b.session_id, "stop")}
    assert len(ids) == 4
    # Whoever computes a session's stop event (a request, any replica's purge) gets the same id.
    assert domain.stop_event(a, "stopped", T0)[1].id == domain.stop_event(a, "expired", T0)[1].id


def test_a_stop_after_the_expiry_is_reported_as_an_expiry() -> None:
    s = state("composing")
    assert domain.stop_reason("stopped", s.expires_at, s.expires_at - timedelta(seconds=1)) == "stopped"
    assert domain.stop_reason("stopped", s.expires_at, s.expires_at) == "expired"
    assert domain.stop_reason("expired", s.expires_at, s.expires_at) == "expired"


def test_viewing_one_conversation_ends_the_others() -> None:
    c1, c2 = state("viewing", conversation_id="c1"), state("viewing", conversation_id="c2")
    assert domain.viewing_to_end([c1, c2], "c2") == [c1]
    assert domain.viewing_to_end([c1, c2], None) == [c1, c2]
    assert domain.viewing_to_end([c1], "c1") == []


def test_composing_events_are_keyed_by_conversation_and_match_start_to_stop() -> None:
    s = state("composing")
    key, started = domain.start_event(s)
    assert key == "c1"
    assert started.type == "presence.composing.started"
    assert started.id == domain.event_id(s.session_id, "start") and started.workspace_id == "w1"
    assert started.occurred_at == s.since
    payload = started.payload(ComposingStarted)
    assert payload.session_id == s.session_id and payload.agent.name == "Alice"
    assert payload.expires_at == s.expires_at and payload.conversation_id == "c1"

    key, stopped = domain.stop_event(s, "stopped", T0 + timedelta(seconds=2))
    assert key == "c1" and stopped.id == domain.event_id(s.session_id, "stop")
    body = stopped.payload(ComposingStopped)
    assert body.session_id == s.session_id and body.reason == "stopped"
    assert stopped.occurred_at == T0 + timedelta(seconds=2)


def test_an_expiry_is_dated_when_the_state_ran_out_not_when_it_was_noticed() -> None:
    s = state("composing")
    _, event = domain.stop_event(s, "expired", s.expires_at + timedelta(seconds=1))
    assert event.payload(ComposingStopped).reason == "expired"
    assert event.occurred_at == s.expires_at
    # Stopped on request after it had run out: it expired.
    _, late = domain.stop_event(s, "stopped", s.expires_at + timedelta(seconds=1))
    assert late.payload(ComposingStopped).reason == "expired" and late.occurred_at == s.expires_at


def test_online_events_are_keyed_by_agent() -> None:
    s = state("online")
    key, online = domain.start_event(s)
    assert key == "a1" and online.payload(AgentOnline).expires_at == T0 + timedelta(seconds=45)
    key, offline = domain.stop_event(s, "expired", s.expires_at)
    assert key == "a1" and offline.type == "presence.agent.offline"
    assert offline.payload(AgentOffline).last_seen == T0


def test_viewing_events() -> None:
    s = state("viewing", conversation_id="c9")
    key, started = domain.start_event(s)
    assert key == "c9" and isinstance(started.payload(), ViewingStarted)
    key, stopped = domain.stop_event(s, "stopped", T0)
    assert key == "c9" and isinstance(stopped.payload(), ViewingStopped)


def test_events_survive_the_wire() -> None:
    _, event = domain.start_event(state("composing"))
    again = Event.from_bytes(event.to_bytes())
    assert again.payload(ComposingStarted) == event.payload(ComposingStarted)


def test_a_late_start_is_published_only_while_its_session_runs() -> None:
    assert domain.relay_start(session_exists=True)
    assert not domain.relay_start(session_exists=False)


def test_conversation_view_in_request_order_with_empty_entries() -> None:
    alice_typing = state("composing", ALICE, "c1")
    bob_typing = state("composing", BOB, "c1", since=T0 - timedelta(seconds=1))
    bob_viewing = state("viewing", BOB, "c2")
    expired = state("composing", ALICE, "c2", since=T0 - timedelta(seconds=10))
    views = domain.conversation_view("w1", ["c2", "c1", "c3"], [alice_typing, bob_typing, bob_viewing, expired], T0)
    assert [v.conversation_id for v in views] == ["c2", "c1", "c3"]
    assert views[0].composing == [] and views[0].viewing == [bob_viewing]
    assert views[1].composing == [bob_typing, alice_typing]  # oldest first
    assert views[2].composing == [] and views[2].viewing == []


def test_conversation_view_without_a_request_lists_busy_conversations_only() -> None:
    views = domain.conversation_view("w1", [], [state("composing", ALICE, "c2"), state("viewing", BOB, "c1")], T0)
    assert [v.conversation_id for v in views] == ["c1", "c2"]


def test_agents_view_lists_online_agents_with_their_latest_viewed_conversation() -> None:
    states = [
        state("online", ALICE),
        state("online", BOB, since=T0 - timedelta(seconds=5)),
        state("viewing", ALICE, "c1", since=T0 - timedelta(seconds=3)),
        state("viewing", ALICE, "c2", since=T0 - timedelta(seconds=1)),
        state("viewing", Agent("z9", "Offline Zed"), "c3"),
        state("online", Agent("x1", "Gone"), since=T0 - timedelta(minutes=5)),
    ]
    views = domain.agents_view("w1", states, T0)
    assert [(v.online.agent.id, v.viewing_conversation_id) for v in views] == [("b1", ""), ("a1", "c2")]


def test_requests_are_validated() -> None:
    with pytest.raises(InvalidRequest):
        domain.require_id("workspace_id", "  ")
    with pytest.raises(InvalidRequest):
        domain.require_id("workspace_id", "x" * 201)
    assert domain.agent_of(" a1 ", " Alice ") == Agent("a1", "Alice")
    with pytest.raises(InvalidRequest):
        domain.agent_of("", "Alice")
    assert domain.requested_conversations(["c2", "c1", "c2"]) == ["c2", "c1"]
    with pytest.raises(InvalidRequest):
        domain.requested_conversations([f"c{i}" for i in range(domain.MAX_CONVERSATIONS_PER_QUERY + 1)])
    with pytest.raises(InvalidRequest):
        domain.requested_conversations(["c1", ""])
