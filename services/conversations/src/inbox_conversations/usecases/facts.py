"""Facts about messages, in any order: statuses, send results, reactions, replies, media, edits and
revocations. A fact is applied to its message, or kept in ``pending`` until the message arrives (and
noted on its conversation, so the message's handler knows to look, see inbound.py).

Every application is idempotent and returns the message as it is now, even when the fact was applied
already: a redelivery after a crash must still publish what it missed. A pending fact is deleted only
after what it changed was published.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from inbox_conversations import documents, domain
from inbox_conversations.outbox import utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.publishing import Announcer, Applied
from inbox_core.mongo import Document

log = logging.getLogger("inbox.conversations.facts")


@dataclass(frozen=True)
class Fact:
    """One fact about the message ``key`` names (a wamid, or ``media:<media id>``)."""

    workspace_id: str
    key: str
    kind: str  # status | reaction | reply | media | edit | revoke
    data: Document
    pending_id: str  # derived from the input: a redelivery keeps the same one
    source: str  # the event id
    conversation_id: str | None = None  # where the message will be, when the fact says


class Facts:
    def __init__(self, repos: Repositories, announcer: Announcer, pending_ttl: timedelta = timedelta(days=7)) -> None:
        self.repos = repos
        self.announcer = announcer
        self.pending_ttl = pending_ttl

    async def record(self, fact: Fact) -> None:
        """Applies a fact and publishes what it changed."""
        applied = await self.apply_or_pend(fact)
        await self.publish(fact.workspace_id, applied)

    async def apply_or_pend(self, fact: Fact) -> list[Applied]:
        """Applies a fact to its message, or keeps it until the message arrives."""
        timeline = self.repos.timeline
        target = await timeline.by_key(fact.workspace_id, fact.key)
        if target is not None:
            applied = await self.apply(fact.kind, target, fact.data, fact.source)
            return [applied] if applied else []
        await self.repos.pending.add(fact.pending_id, fact.workspace_id, fact.key, fact.kind, fact.data, utcnow(),
                                     self.pending_ttl)
        if fact.conversation_id:
            await self.repos.conversations.mark_pending(fact.conversation_id, fact.key)
        # The message may have been stored between our look and our write: look again.
        if await timeline.by_key(fact.workspace_id, fact.key) is None:
            return []
        return await self.drain(fact.workspace_id, [fact.key])

    async def drain(self, workspace_id: str, keys: list[str]) -> list[Applied]:
        """Applies the pending facts about these messages; each is deleted once published (see publish)."""
        out: list[Applied] = []
        for pending in await self.repos.pending.about(workspace_id, keys):
            target = await self.repos.timeline.by_key(workspace_id, pending["wamid"])
            if target is None:
                continue
            applied = await self.apply(pending["kind"], target, pending["data"], pending["_id"])
            if applied is None:  # nothing to say (e.g. a later status is there): done with it
                await self.repos.pending.delete(pending["_id"])
            else:
                out.append(applied)
        return out

    async def publish(self, workspace_id: str, applied: list[Applied], *, skip_message: str = "",
                      skip_conversation: str = "") -> None:
        """Publishes, then forgets the pending facts that were applied: after a crash before this, a
        redelivery applies and publishes them again."""
        await self.announcer.applied(workspace_id, applied, skip_message=skip_message,
                                     skip_conversation=skip_conversation)
        for item in applied:
            if item.source.startswith("pnd_"):
                await self.repos.pending.delete(item.source)

    async def apply(self, kind: str, target: Document, data: Document, source: str) -> Applied | None:
        """Applies one fact (idempotent); the message as it is now, or None when there is nothing to say."""
        timeline, conversations = self.repos.timeline, self.repos.conversations
        message_id = target["_id"]
        conversation_id = target["conversation_id"]
        if kind == "status":
            return await self._status(target, data, source)
        if kind == "reaction":
            after = await timeline.apply_reaction(message_id, data["reactor"], data["entry"])
            current = after or await timeline.get(message_id)
            return Applied(current, ["reactions"], source) if current else None
        if kind == "reply":
            reply = await timeline.set_fields(data["message_id"], {"reply_to": message_id})
            return Applied(reply, ["reply_to"], source) if reply else None
        if kind == "media":
            after = await timeline.set_fields(message_id, {f"media.{k}": v for k, v in data.items()})
            return Applied(after, ["media"], source) if after else None
        if kind == "edit":
            fields: Document = {"edited": True, "edited_at": data["at"]}
            if data.get("text") is not None:
                fields["text"] = data["text"]
            if data.get("caption") is not None and target.get("media"):
                fields["media.caption"] = data["caption"]
            after = await timeline.set_fields(message_id, fields, unless={"edited_at": {"$gt": data["at"]}})
            current = after or await timeline.get(message_id)
            if current is None:
                return None
            await conversations.apply_last_message(conversation_id, documents.last_message(current),
                                                   bool(current.get("direction") == "in"), only_if_last=True)
            return Applied(current, ["content"], source, {conversation_id})
        if kind == "revoke":
            after = await timeline.set_fields(message_id, {"revoked": True, "revoked_at": data["at"]})
            if after is None:
                return None
            await conversations.apply_last_message(conversation_id, documents.last_message(after),
                                                   bool(after.get("direction") == "in"), only_if_last=True)
            return Applied(after, ["revoked"], source, {conversation_id})
        log.warning("unknown pending kind %r", kind)
        return None

    async def _status(self, target: Document, data: Document, source: str) -> Applied | None:
        status = data["status"]
        if target.get("direction") != "out" or domain.status_rank(status) is None:
            return None
        current: Document | None = target
        if domain.status_advances(target.get("status"), status):
            at: datetime = data["at"]
            current = await self.repos.timeline.apply_status(target["_id"], status, at, data.get("error")) or \
                await self.repos.timeline.get(target["_id"])
        if current is None or current.get("status") != status:
            return None  # a later status is there already: nothing to say
        conversation_id = target["conversation_id"]
        await self.repos.conversations.apply_last_message_status(conversation_id, target["_id"], status)
        return Applied(current, ["status"], source, {conversation_id})
