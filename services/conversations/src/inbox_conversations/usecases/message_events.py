"""What Meta and ingest say about messages already sent or received: statuses, send results, edits,
revocations and media results, each a fact for facts.py."""

from __future__ import annotations

import logging
from datetime import datetime

from inbox_conversations import domain
from inbox_conversations.outbox import utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.facts import Fact, Facts
from inbox_conversations.usecases.publishing import Applied
from inbox_core.events.whatsapp import (
    MediaStored,
    MediaUnavailable,
    MessageEdited,
    MessageRevoked,
    MetaError,
    SendAccepted,
    SendFailed,
    StatusUpdated,
)
from inbox_core.ids import conversation_id
from inbox_core.mongo import Document

log = logging.getLogger("inbox.conversations.message_events")


def error_doc(errors: list[MetaError]) -> Document | None:
    if not errors:
        return None
    first = errors[0]
    data_details = (first.error_data or {}).get("details")
    detail = first.details or (data_details if isinstance(data_details, str) else None) or first.message or ""
    return {"code": first.code, "title": first.title or first.message or "", "detail": detail}


def _conversation_of(workspace_id: str, number_id: str | None, wa_id: str, user_id: str | None) -> str | None:
    """The conversation a fact's message is in, where the fact names the customer."""
    if not number_id or not (wa_id or user_id):
        return None
    return conversation_id(workspace_id, number_id, wa_id or None, user_id)


class MessageEvents:
    def __init__(self, repos: Repositories, facts: Facts) -> None:
        self.repos = repos
        self.facts = facts

    async def status(self, event_id: str, workspace_id: str, status: StatusUpdated) -> None:
        if domain.status_rank(status.status) is None:
            log.info("status %r of %s is not one we track", status.status, status.wamid)
            return
        data = {"status": status.status, "at": domain.to_ms(status.timestamp), "error": error_doc(status.errors)}
        await self.facts.record(Fact(
            workspace_id, status.wamid, "status", data,
            domain.derived_id("pnd_", "status", workspace_id, status.wamid, status.status), event_id,
            _conversation_of(workspace_id, status.phone_number_id, status.recipient_id or status.wa_id,
                             status.recipient_user_id or status.user_id)))

    async def send_accepted(self, event_id: str, workspace_id: str, accepted: SendAccepted) -> None:
        message_id = accepted.message_id or accepted.command_id
        timeline = self.repos.timeline
        msg = await timeline.get(message_id)
        if msg is None or msg.get("workspace_id") != workspace_id:
            log.info("send result for unknown message %s", message_id)
            return
        if not msg.get("wamid"):
            msg = await timeline.set_wamid(message_id, accepted.wamid, utcnow()) or msg
        applied = await self.facts.drain(workspace_id, [accepted.wamid])
        current = (await timeline.get(message_id) or msg) if applied else msg
        applied.append(Applied(current, ["wamid"], event_id))
        await self.facts.publish(workspace_id, applied)

    async def send_failed(self, event_id: str, at: datetime, workspace_id: str, failed: SendFailed) -> None:
        message_id = failed.message_id or failed.command_id
        msg = await self.repos.timeline.get(message_id)
        if msg is None or msg.get("workspace_id") != workspace_id:
            log.info("send result for unknown message %s", message_id)
            return
        applied = await self.facts.apply("status", msg, {
            "status": "failed", "at": domain.to_ms(at), "error": error_doc([failed.error])}, event_id)
        await self.facts.publish(workspace_id, [applied] if applied else [])

    async def edited(self, event_id: str, workspace_id: str, edited: MessageEdited) -> None:
        if not edited.original_message_id or edited.message is None:
            return
        data = {"text": edited.message.text, "caption": edited.message.caption, "at": domain.to_ms(edited.timestamp)}
        await self.facts.record(Fact(
            workspace_id, edited.original_message_id, "edit", data,
            domain.derived_id("pnd_", "edit", workspace_id, edited.wamid), event_id,
            _conversation_of(workspace_id, edited.phone_number_id, edited.wa_id, edited.user_id)))

    async def revoked(self, event_id: str, workspace_id: str, revoked: MessageRevoked) -> None:
        if not revoked.original_message_id:
            return
        await self.facts.record(Fact(
            workspace_id, revoked.original_message_id, "revoke", {"at": domain.to_ms(revoked.timestamp)},
            domain.derived_id("pnd_", "revoke", workspace_id, revoked.wamid), event_id,
            _conversation_of(workspace_id, revoked.phone_number_id, revoked.wa_id, revoked.user_id)))

    async def media(self, event_id: str, workspace_id: str, media: MediaStored | MediaUnavailable) -> None:
        """A media result names no customer: a media message always reads its pending facts (inbound.py)."""
        if isinstance(media, MediaStored):
            data: Document = {"id": media.storage_id, "status": "stored", "size": media.size, "sha256": media.sha256}
            if media.mime_type:
                data["mime_type"] = media.mime_type
        else:
            data = {"status": "unavailable", "reason": media.reason}
        key = media.wamid or f"media:{media.media_id}"
        await self.facts.record(Fact(workspace_id, key, "media", data,
                                     domain.derived_id("pnd_", "media", workspace_id, event_id), event_id))
