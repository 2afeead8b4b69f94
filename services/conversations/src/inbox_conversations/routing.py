"""Auto-assignment's pure rules: the workspace's modes, and which online agent takes a conversation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from inbox_conversations import domain

OFF = "off"
ROUND_ROBIN = "round_robin"
AUTO_ASSIGN_MODES = (OFF, ROUND_ROBIN)

_NEVER = datetime.min.replace(tzinfo=UTC)


def wants_assignment(conversation: Mapping[str, Any], mode: str) -> bool:
    """A live customer message assigns its conversation only when the workspace routes round robin and the
    conversation is open and nobody's."""
    return mode == ROUND_ROBIN and domain.status_of(conversation) == domain.OPEN and not conversation.get("assignee_id")


def choose_assignee(online: Sequence[str], open_assigned: Mapping[str, int],
                    last_assigned: Mapping[str, datetime]) -> str | None:
    """The online agent with the fewest open assigned conversations; among equals the one assigned longest
    ago (never assigned first), then the smallest id (so replicas agree). None when nobody is online."""
    if not online:
        return None
    return min(dict.fromkeys(online),
               key=lambda agent: (open_assigned.get(agent, 0), last_assigned.get(agent, _NEVER), agent))
