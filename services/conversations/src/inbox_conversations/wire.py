"""The service's values as inbox.conversations.v1 messages, and the proto enums as the values' names."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import content_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox_conversations import routing
from inbox_conversations.canned_replies import CannedReply
from inbox_conversations.usecases.library import LibraryItem
from inbox_conversations.views import TimelineView
from inbox_core.events.conversations import (
    ActivityView,
    Actor,
    ConversationSummary,
    MessageView,
    NoteView,
)
from inbox_core.mongo import Document

FILTERS = {
    pb.CONVERSATION_FILTER_UNSPECIFIED: "all",
    pb.CONVERSATION_FILTER_ALL: "all",
    pb.CONVERSATION_FILTER_UNREAD: "unread",
    pb.CONVERSATION_FILTER_MINE: "mine",
    pb.CONVERSATION_FILTER_NO_REPLY: "no_reply",
    pb.CONVERSATION_FILTER_MENTIONS: "mentions",
}
STATUS_FILTERS = {
    pb.STATUS_FILTER_UNSPECIFIED: "open",
    pb.STATUS_FILTER_OPEN: "open",
    pb.STATUS_FILTER_RESOLVED: "resolved",
    pb.STATUS_FILTER_SNOOZED: "snoozed",
    pb.STATUS_FILTER_ANY: "any",
}
# The conversation's status (UNSPECIFIED is no status: SetStatus refuses it).
CONVERSATION_STATUSES = {
    pb.CONVERSATION_STATUS_OPEN: "open",
    pb.CONVERSATION_STATUS_RESOLVED: "resolved",
    pb.CONVERSATION_STATUS_SNOOZED: "snoozed",
}
CONVERSATION_STATUS_VALUES = {v: k for k, v in CONVERSATION_STATUSES.items()}
STATUSES = {
    "pending": pb.MESSAGE_STATUS_PENDING,
    "sent": pb.MESSAGE_STATUS_SENT,
    "delivered": pb.MESSAGE_STATUS_DELIVERED,
    "read": pb.MESSAGE_STATUS_READ,
    "played": pb.MESSAGE_STATUS_PLAYED,
    "failed": pb.MESSAGE_STATUS_FAILED,
}
DIRECTIONS = {"in": pb.DIRECTION_IN, "out": pb.DIRECTION_OUT}
MEDIA_KINDS = {
    pb.MEDIA_KIND_IMAGE: "image",
    pb.MEDIA_KIND_VIDEO: "video",
    pb.MEDIA_KIND_AUDIO: "audio",
    pb.MEDIA_KIND_DOCUMENT: "document",
}
LIBRARY_TYPES = {
    content_pb2.LIBRARY_ITEM_TYPE_TEXT: "text",
    content_pb2.LIBRARY_ITEM_TYPE_IMAGE: "image",
    content_pb2.LIBRARY_ITEM_TYPE_VIDEO: "video",
    content_pb2.LIBRARY_ITEM_TYPE_AUDIO: "audio",
    content_pb2.LIBRARY_ITEM_TYPE_DOCUMENT: "document",
}
LIBRARY_TYPE_VALUES = {v: k for k, v in LIBRARY_TYPES.items()}
AUTO_ASSIGN_MODES = {pb.AUTO_ASSIGN_OFF: routing.OFF, pb.AUTO_ASSIGN_ROUND_ROBIN: routing.ROUND_ROBIN}
AUTO_ASSIGN_VALUES = {v: k for k, v in AUTO_ASSIGN_MODES.items()}


# --- to protobuf --------------------------------------------------------------------------------------------


def _ts(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def _struct(value: dict[str, Any] | None) -> struct_pb2.Struct | None:
    if value is None:
        return None
    out = struct_pb2.Struct()
    out.update(json.loads(json.dumps(value, default=str)))  # JSON-safe (datetimes become strings)
    return out


def _actor(value: Actor | None) -> common_pb2.Actor | None:
    return common_pb2.Actor(id=value.id, name=value.name) if value is not None else None


def conversation_pb(c: ConversationSummary, unseen_mentions: int = 0) -> pb.Conversation:
    out = pb.Conversation(
        id=c.id, workspace_id=c.workspace_id, number_id=c.number_id,
        customer=pb.CustomerSummary(id=c.customer.id, wa_id=c.customer.wa_id, name=c.customer.name,
                                    phone=c.customer.phone, user_id=c.customer.user_id or ""),
        unread_count=c.unread_count, awaiting_reply=c.awaiting_reply,
        window=pb.Window(open=c.window.open, expires_at=_ts(c.window.expires_at)),
        updated_at=_ts(c.updated_at), created_at=_ts(c.created_at), version=c.version,
        assignee=_actor(c.assignee),
        status=CONVERSATION_STATUS_VALUES.get(c.status, pb.CONVERSATION_STATUS_OPEN),
        snoozed_until=_ts(c.snoozed_until), last_seq=c.last_seq, unseen_mentions=unseen_mentions,
    )
    if c.last_message is not None:
        last = c.last_message
        out.last_message.CopyFrom(pb.LastMessage(
            id=last.id, direction=DIRECTIONS[last.direction], type=last.type, preview=last.preview,
            at=_ts(last.at), status=STATUSES.get(last.status or "", pb.MESSAGE_STATUS_UNSPECIFIED)))
    return out


def message_pb(m: MessageView) -> pb.Message:
    out = pb.Message(
        id=m.id, conversation_id=m.conversation_id, wamid=m.wamid, direction=DIRECTIONS[m.direction], type=m.type,
        text=m.text or "", location=_struct(m.location), interactive=_struct(m.interactive),
        contacts=[s for s in (_struct(c) for c in m.contacts) if s is not None],
        reply_to=m.reply_to or "", status=STATUSES.get(m.status or "", pb.MESSAGE_STATUS_UNSPECIFIED),
        sent_by=_actor(m.sent_by), at=_ts(m.at), status_at=_ts(m.status_at), origin=m.origin,
        edited=m.edited, revoked=m.revoked, seq=m.seq or 0,
        reactions=[pb.MessageReaction(emoji=r.emoji, by=_actor(r.by), direction=DIRECTIONS[r.direction],
                                      at=_ts(r.at)) for r in m.reactions],
    )
    if m.media is not None:
        out.media.CopyFrom(common_pb2.Media(id=m.media.id, mime_type=m.media.mime_type or "",
                                            filename=m.media.filename or "", caption=m.media.caption or "",
                                            size=m.media.size, sha256=m.media.sha256 or "", status=m.media.status))
    if m.template is not None:
        out.template.CopyFrom(pb.TemplateRef(name=m.template.name, language=m.template.language,
                                             params=_struct(m.template.params)))
    if m.reaction is not None:
        out.reaction.CopyFrom(pb.Reaction(message_id=m.reaction.message_id, emoji=m.reaction.emoji))
    if m.error is not None:
        out.error.CopyFrom(pb.MessageError(code=m.error.code or 0, title=m.error.title, detail=m.error.detail))
    return out


def note_pb(n: NoteView) -> pb.Note:
    return pb.Note(id=n.id, conversation_id=n.conversation_id, text=n.text, author=_actor(n.author), at=_ts(n.at),
                   seq=n.seq or 0, mentions=[common_pb2.Actor(id=a.id, name=a.name) for a in n.mentions])


def activity_pb(a: ActivityView) -> pb.Activity:
    return pb.Activity(id=a.id, conversation_id=a.conversation_id, action=a.action, actor=_actor(a.actor),
                       details=_struct(a.details), at=_ts(a.at), seq=a.seq or 0)


def timeline_item_pb(view: TimelineView) -> pb.TimelineItem:
    if isinstance(view, NoteView):
        return pb.TimelineItem(note=note_pb(view))
    if isinstance(view, ActivityView):
        return pb.TimelineItem(activity=activity_pb(view))
    return pb.TimelineItem(message=message_pb(view))


def template_pb(doc: Document, number_id: str) -> content_pb2.Template:
    return content_pb2.Template(
        number_id=number_id, waba_id=doc["waba_id"], name=doc["name"], language=doc["language"],
        category=doc.get("category") or "", status=doc.get("status") or "",
        components=[s for s in (_struct(c) for c in doc.get("components") or [] if isinstance(c, dict))
                    if s is not None],
        updated_at=_ts(doc.get("updated_at")),
    )


def canned_reply_pb(reply: CannedReply) -> content_pb2.CannedReply:
    return content_pb2.CannedReply(id=reply.id, workspace_id=reply.workspace_id, shortcut=reply.shortcut,
                                   title=reply.title, text=reply.text)


def library_pb(item: LibraryItem) -> content_pb2.LibraryItem:
    out = content_pb2.LibraryItem(
        id=item.id, workspace_id=item.workspace_id, title=item.title,
        type=LIBRARY_TYPE_VALUES.get(item.type, content_pb2.LIBRARY_ITEM_TYPE_UNSPECIFIED),
        text=item.text, created_by=_actor(item.created_by), created_at=_ts(item.created_at),
    )
    media = item.media
    if media is not None:
        out.media.CopyFrom(common_pb2.Media(id=media.get("id") or "", mime_type=media.get("mime_type") or "",
                                            filename=media.get("filename") or "", caption=media.get("caption") or "",
                                            size=int(media.get("size") or 0), status="stored"))
    return out


def routing_pb(workspace_id: str, mode: str) -> pb.Routing:
    return pb.Routing(workspace_id=workspace_id, auto_assign=AUTO_ASSIGN_VALUES.get(mode, pb.AUTO_ASSIGN_OFF))
