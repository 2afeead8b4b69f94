"""Auto-assignment: the workspace's routing (GetRouting, SetRouting) and, after a live customer message,
the assignment of an open conversation nobody has to the online agent with the fewest open assigned
conversations (routing.choose_assignee).

Safe without transactions: the assignment is one write conditional on the conversation being open and
unassigned, embedding its activity and events (the outbox), with ids derived from the message; so a
redelivery, an agent's assignment meanwhile or another replica's attempt leaves one assignment. Two
messages of different conversations routed at the same instant may both see the same counts (the
balance is then off by one until the next assignment); no conversation is ever assigned twice.
"""

from __future__ import annotations

import logging
from typing import Protocol

from inbox_conversations import domain, routing
from inbox_conversations.outbox import Publisher, utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.publishing import assignment_entry
from inbox_conversations.usecases.sending import Agent
from inbox_core.errors import InboxError, InvalidRequest
from inbox_core.mongo import Document

log = logging.getLogger("inbox.conversations.routing")


class OnlineAgents(Protocol):
    async def online(self, workspace_id: str) -> list[Agent]:
        """The workspace's agents online now; an InboxError when that cannot be known."""
        ...


class AutoAssignment:
    def __init__(self, repos: Repositories, publisher: Publisher, online: OnlineAgents | None,
                 publish_timeout_s: float = 3.0) -> None:
        self.repos = repos
        self.publisher = publisher
        self.online = online
        self.publish_timeout_s = publish_timeout_s

    async def mode(self, workspace_id: str) -> str:
        return str((await self.repos.routing.get(workspace_id)).get("auto_assign") or routing.OFF)

    async def set_mode(self, workspace_id: str, mode: str, agent: Agent) -> str:
        if mode not in routing.AUTO_ASSIGN_MODES:
            raise InvalidRequest(f"auto_assign is one of {', '.join(routing.AUTO_ASSIGN_MODES)}",
                                 {"field": "auto_assign"})
        doc = await self.repos.routing.set_mode(workspace_id, mode, agent.doc(), utcnow())
        return str(doc.get("auto_assign") or routing.OFF)

    async def after_customer_message(self, conv: Document, message_id: str) -> Document | None:
        """Assigns ``conv`` (as it is after the message ``message_id``) if its workspace routes round robin,
        it is open and nobody's, and someone is online: the conversation after, else None. Presence down
        leaves the conversation unassigned (logged): a message is never held back for it."""
        if self.online is None or not routing.wants_assignment(conv, routing.ROUND_ROBIN):
            return None  # no read of the routing for conversations that are someone's already
        workspace_id = conv["workspace_id"]
        if not routing.wants_assignment(conv, await self.repos.routing.mode(workspace_id)):
            return None  # the mode as kept for a few seconds: a workspace that does not route reads nothing
        settings = await self.repos.routing.get(workspace_id)  # fresh: switched off meanwhile holds
        if not routing.wants_assignment(conv, str(settings.get("auto_assign") or routing.OFF)):
            return None
        try:
            agents = await self.online.online(workspace_id)
        except InboxError as exc:
            log.warning("conversation %s left unassigned: %s", conv["_id"], exc)
            return None
        names = {a.id: a.name for a in agents}
        if not names:
            return None
        numbers = await self.repos.numbers.of_workspace(workspace_id) or [conv["number_id"]]
        counts = await self.repos.conversations.count_open_assigned(workspace_id, numbers, list(names))
        chosen = routing.choose_assignee(list(names), counts, settings.get("last_assigned") or {})
        if chosen is None:
            return None
        return await self._assign(conv, message_id, Agent(chosen, names[chosen]))

    async def _assign(self, conv: Document, message_id: str, assignee: Agent) -> Document | None:
        conversation_id = conv["_id"]
        now = utcnow()
        new = assignee.doc()
        assert new is not None
        seq = await self.repos.conversations.take_seqs(conversation_id)
        entry = assignment_entry(self.publisher.topics.conversations, conv,
                                 domain.derived_id("out_", "auto_assign", message_id),
                                 domain.derived_id("act_", "auto_assign", message_id), new, None, None,
                                 {"reason": "auto_assign"}, now, seq)
        after = await self.repos.conversations.assign_if_free(conversation_id, new, entry, now)
        if after is None:
            return None
        await self.repos.routing.note_assigned(conv["workspace_id"], assignee.id, now)
        await self.publisher.try_carry_out("conversations", conversation_id, entry, self.publish_timeout_s)
        return after
