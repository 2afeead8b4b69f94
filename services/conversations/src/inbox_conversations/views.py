"""Stored documents -> the shared view models of inbox_core.events.conversations (used both for the
events this service publishes and, via rpc.py, for its gRPC answers), so both always say the same."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from inbox_conversations.domain import status_of, window_open
from inbox_core.events.conversations import (
    ActivityView,
    Actor,
    ConversationSummary,
    CustomerRef,
    LastMessage,
    MediaView,
    MessageError,
    MessageReaction,
    MessageView,
    NoteView,
    ReactionRef,
    TemplateRef,
    Window,
)
from inbox_core.mongo import Document


def actor(value: Any) -> Actor | None:
    if isinstance(value, dict) and value.get("id"):
        return Actor(id=str(value["id"]), name=str(value.get("name") or ""))
    return None


def summary(doc: Document, now: datetime) -> ConversationSummary:
    customer = doc.get("customer") or {}
    last = doc.get("last_message")
    expires = doc.get("window_expires_at")
    return ConversationSummary(
        id=doc["_id"],
        workspace_id=doc["workspace_id"],
        number_id=doc["number_id"],
        customer=CustomerRef(
            id=customer.get("id", ""),
            wa_id=customer.get("wa_id") or "",
            user_id=customer.get("user_id"),
            name=customer.get("name") or "",
            phone=customer.get("phone") or "",
        ),
        last_message=LastMessage(
            id=last["id"], direction=last["direction"], type=last["type"], preview=last.get("preview", ""),
            at=last["at"], status=last.get("status"),
        ) if last else None,
        unread_count=int(doc.get("unread_count", 0)),
        awaiting_reply=bool(doc.get("awaiting_reply", False)),
        assignee=actor(doc.get("assignee")),
        window=Window(open=window_open(expires, now), expires_at=expires),
        updated_at=doc["updated_at"],
        created_at=doc["created_at"],
        version=int(doc.get("version", 0)),
        status=status_of(doc),
        snoozed_until=doc.get("snoozed_until"),
        last_seq=int(doc.get("last_seq") or 0),
    )


def _reactions(value: Any) -> list[MessageReaction]:
    if not isinstance(value, dict):
        return []
    out = [
        MessageReaction(emoji=r["emoji"], by=actor(r.get("by")), direction=r.get("direction", "in"), at=r["at"])
        for r in value.values()
        if isinstance(r, dict) and r.get("emoji")
    ]
    return sorted(out, key=lambda r: r.at)


def message(doc: Document) -> MessageView:
    media = doc.get("media")
    template = doc.get("template")
    reaction = doc.get("reaction")
    error = doc.get("error")
    return MessageView(
        id=doc["_id"],
        conversation_id=doc["conversation_id"],
        wamid=doc.get("wamid") or "",
        direction=doc["direction"],
        origin=doc.get("origin", "live"),
        type=doc["type"],
        text=doc.get("text"),
        media=MediaView(**{k: v for k, v in media.items() if k in MediaView.model_fields and v is not None})
        if isinstance(media, dict) else None,
        template=TemplateRef(**template) if isinstance(template, dict) else None,
        location=doc.get("location"),
        contacts=doc.get("contacts") or [],
        interactive=doc.get("interactive"),
        reaction=ReactionRef(**reaction) if isinstance(reaction, dict) else None,
        reply_to=doc.get("reply_to"),
        reactions=_reactions(doc.get("reactions")),
        status=doc.get("status"),
        status_at=doc.get("status_at"),
        error=MessageError(**error) if isinstance(error, dict) else None,
        sent_by=actor(doc.get("sent_by")),
        at=doc["at"],
        edited=bool(doc.get("edited", False)),
        revoked=bool(doc.get("revoked", False)),
        seq=doc.get("seq"),
    )


def note(doc: Document) -> NoteView:
    mentioned = [actor(m) for m in doc.get("mentions") or []]
    return NoteView(id=doc["_id"], conversation_id=doc["conversation_id"], text=doc.get("text", ""),
                    author=actor(doc.get("author")), at=doc["at"], seq=doc.get("seq"),
                    mentions=[m for m in mentioned if m is not None])


def activity(doc: Document) -> ActivityView:
    return ActivityView(id=doc["_id"], conversation_id=doc["conversation_id"], action=doc["action"],
                        actor=actor(doc.get("actor")), details=doc.get("details") or {}, at=doc["at"],
                        seq=doc.get("seq"))


TimelineView = MessageView | NoteView | ActivityView


def timeline_item(doc: Document) -> TimelineView:
    kind = doc.get("kind")
    if kind == "note":
        return note(doc)
    if kind == "activity":
        return activity(doc)
    return message(doc)
