"""Canned replies: a workspace's saved answers, listed by shortcut and rendered for one conversation."""

from __future__ import annotations

from dataclasses import dataclass

from inbox_conversations import canned_replies, domain
from inbox_conversations.canned_replies import MAX_PER_WORKSPACE, CannedReply
from inbox_conversations.outbox import utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.sending import Agent
from inbox_core.errors import ValidationFailed


@dataclass(frozen=True)
class ReplyChanges:
    shortcut: str | None = None  # None: unchanged
    title: str | None = None
    text: str | None = None


class CannedReplyBook:
    def __init__(self, repos: Repositories) -> None:
        self.repos = repos

    async def listed(self, workspace_id: str, query: str = "") -> list[CannedReply]:
        return canned_replies.matching(await self.repos.replies.all(workspace_id), query)

    async def add(self, workspace_id: str, agent: Agent, shortcut: str, title: str, text: str) -> CannedReply:
        shortcut = canned_replies.checked_shortcut(shortcut)
        doc = {"_id": domain.new_id("reply_"), "workspace_id": workspace_id, "shortcut": shortcut,
               "title": canned_replies.checked_title(title) or shortcut, "text": canned_replies.checked_text(text),
               "created_by": agent.doc(), "created_at": utcnow()}
        if await self.repos.replies.count(workspace_id) >= MAX_PER_WORKSPACE:
            raise ValidationFailed(f"a workspace has at most {MAX_PER_WORKSPACE} canned replies")
        return await self.repos.replies.add(doc)

    async def update(self, workspace_id: str, reply_id: str, changes: ReplyChanges) -> CannedReply:
        fields: dict[str, str] = {}
        if changes.shortcut is not None:
            fields["shortcut"] = canned_replies.checked_shortcut(changes.shortcut)
        if changes.title is not None:
            fields["title"] = canned_replies.checked_title(changes.title)
        if changes.text is not None:
            fields["text"] = canned_replies.checked_text(changes.text)
        if not fields:
            return await self.repos.replies.get(workspace_id, reply_id)
        return await self.repos.replies.update(workspace_id, reply_id, fields)

    async def remove(self, workspace_id: str, reply_id: str) -> None:
        await self.repos.replies.remove(workspace_id, reply_id)

    async def rendered(self, workspace_id: str, conversation_id: str, reply_id: str, agent: Agent) -> str:
        """The reply's text for this conversation's customer and this agent (both must be the workspace's:
        the conversation and the reply are read within it)."""
        reply = await self.repos.replies.get(workspace_id, reply_id)
        conversation = await self.repos.conversations.get(workspace_id, conversation_id)
        customer = conversation.get("customer") or {}
        return canned_replies.render(reply.text, canned_replies.values_for(customer.get("name") or "", agent.name))
