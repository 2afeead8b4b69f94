"""gRPC servicer of inbox.conversations.v1.ConversationsService.

Every call is scoped to ``workspace_id``: a conversation, message or library item of another workspace
is NOT_FOUND. Changes are written with their events embedded (the outbox, see outbox.py) and only
then acknowledged.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2, timestamp_pb2

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox.conversations.v1 import conversations_pb2_grpc
from inbox_conversations import documents, domain, views
from inbox_conversations.outbox import Publisher, command_key, next_arrival, outbox_event, utcnow
from inbox_conversations.store import ConversationsStore, ListQuery
from inbox_core.errors import Conflict, InvalidRequest, NotFound, ValidationFailed, WindowClosed
from inbox_core.events import Event
from inbox_core.events.commands import MarkReadCommand, OutboundMedia, OutboundTemplate, SendCommand
from inbox_core.events.conversations import (
    ActivityCreated,
    ActivityView,
    Actor,
    ConversationAssigned,
    ConversationRead,
    ConversationSummary,
    MessageCreated,
    MessageView,
    NoteCreated,
    NoteView,
)
from inbox_core.mongo import Document

SERVICE_NAME = "inbox.conversations.v1.ConversationsService"

MAX_TEXT = 4096  # Meta's limit for a text message body
MAX_NOTE = 10000
MAX_CAPTION = 1024

FILTERS = {
    pb.CONVERSATION_FILTER_UNSPECIFIED: "all",
    pb.CONVERSATION_FILTER_ALL: "all",
    pb.CONVERSATION_FILTER_UNREAD: "unread",
    pb.CONVERSATION_FILTER_MINE: "mine",
    pb.CONVERSATION_FILTER_NO_REPLY: "no_reply",
}
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
    pb.LIBRARY_ITEM_TYPE_TEXT: "text",
    pb.LIBRARY_ITEM_TYPE_IMAGE: "image",
    pb.LIBRARY_ITEM_TYPE_VIDEO: "video",
    pb.LIBRARY_ITEM_TYPE_AUDIO: "audio",
    pb.LIBRARY_ITEM_TYPE_DOCUMENT: "document",
}
LIBRARY_TYPE_VALUES = {v: k for k, v in LIBRARY_TYPES.items()}


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


def conversation_pb(c: ConversationSummary) -> pb.Conversation:
    out = pb.Conversation(
        id=c.id, workspace_id=c.workspace_id, number_id=c.number_id,
        customer=pb.CustomerSummary(id=c.customer.id, wa_id=c.customer.wa_id, name=c.customer.name,
                                    phone=c.customer.phone, user_id=c.customer.user_id or ""),
        unread_count=c.unread_count, awaiting_reply=c.awaiting_reply,
        window=pb.Window(open=c.window.open, expires_at=_ts(c.window.expires_at)),
        updated_at=_ts(c.updated_at), created_at=_ts(c.created_at), version=c.version,
        assignee=_actor(c.assignee),
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
        edited=m.edited, revoked=m.revoked,
        reactions=[pb.MessageReaction(emoji=r.emoji, by=_actor(r.by), direction=DIRECTIONS[r.direction],
                                      at=_ts(r.at)) for r in m.reactions],
    )
    if m.media is not None:
        out.media.CopyFrom(pb.Media(id=m.media.id, mime_type=m.media.mime_type or "", filename=m.media.filename or "",
                                    caption=m.media.caption or "", size=m.media.size, sha256=m.media.sha256 or "",
                                    status=m.media.status))
    if m.template is not None:
        out.template.CopyFrom(pb.TemplateRef(name=m.template.name, language=m.template.language,
                                             params=_struct(m.template.params)))
    if m.reaction is not None:
        out.reaction.CopyFrom(pb.Reaction(message_id=m.reaction.message_id, emoji=m.reaction.emoji))
    if m.error is not None:
        out.error.CopyFrom(pb.MessageError(code=m.error.code or 0, title=m.error.title, detail=m.error.detail))
    return out


def note_pb(n: NoteView) -> pb.Note:
    return pb.Note(id=n.id, conversation_id=n.conversation_id, text=n.text, author=_actor(n.author), at=_ts(n.at))


def activity_pb(a: ActivityView) -> pb.Activity:
    return pb.Activity(id=a.id, conversation_id=a.conversation_id, action=a.action, actor=_actor(a.actor),
                       details=_struct(a.details), at=_ts(a.at))


def timeline_item_pb(doc: Document) -> pb.TimelineItem:
    view = views.timeline_item(doc)
    if isinstance(view, NoteView):
        return pb.TimelineItem(note=note_pb(view))
    if isinstance(view, ActivityView):
        return pb.TimelineItem(activity=activity_pb(view))
    return pb.TimelineItem(message=message_pb(view))


def template_pb(doc: Document, number_id: str) -> pb.Template:
    return pb.Template(
        number_id=number_id, waba_id=doc["waba_id"], name=doc["name"], language=doc["language"],
        category=doc.get("category") or "", status=doc.get("status") or "",
        components=[s for s in (_struct(c) for c in doc.get("components") or [] if isinstance(c, dict))
                    if s is not None],
        updated_at=_ts(doc.get("updated_at")),
    )


def library_pb(doc: Document) -> pb.LibraryItem:
    out = pb.LibraryItem(
        id=doc["_id"], workspace_id=doc["workspace_id"], title=doc.get("title") or "",
        type=LIBRARY_TYPE_VALUES.get(doc.get("type", ""), pb.LIBRARY_ITEM_TYPE_UNSPECIFIED),
        text=doc.get("text") or "", created_by=_actor(views.actor(doc.get("created_by"))),
        created_at=_ts(doc.get("created_at")),
    )
    media = doc.get("media")
    if isinstance(media, dict):
        out.media.CopyFrom(pb.Media(id=media.get("id") or "", mime_type=media.get("mime_type") or "",
                                    filename=media.get("filename") or "", caption=media.get("caption") or "",
                                    size=int(media.get("size") or 0), status="stored"))
    return out


# --- requests ----------------------------------------------------------------------------------------------


def _required(value: str, name: str) -> str:
    if not value:
        raise InvalidRequest(f"{name} is required", {"field": name})
    return value


def _agent(actor: common_pb2.Actor) -> Document | None:
    return documents.actor_doc(actor.id, actor.name)


def _without_outbox(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in ("outbox", "outbox_at")}


class ConversationsRpc(conversations_pb2_grpc.ConversationsServiceServicer):
    def __init__(self, store: ConversationsStore, publisher: Publisher, publish_timeout_s: float = 3.0) -> None:
        self.store = store
        self.publisher = publisher
        self.publish_timeout_s = publish_timeout_s

    @property
    def topics(self) -> Any:
        return self.publisher.topics

    # --- reading ------------------------------------------------------------------------------------------

    async def ListConversations(self, request: pb.ListConversationsRequest,
                                context: grpc.aio.ServicerContext[Any, Any] | None = None
                                ) -> pb.ListConversationsResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        filter_name = FILTERS.get(request.filter)
        if filter_name is None:
            raise InvalidRequest("unknown filter", {"filter": int(request.filter)})
        if filter_name == "mine" and not request.agent_id:
            raise InvalidRequest("the mine filter needs agent_id", {"field": "agent_id"})
        query = ListQuery(
            workspace_id=workspace_id, number_ids=list(dict.fromkeys(request.number_ids)), filter=filter_name,
            agent_id=request.agent_id, search=domain.parse_query(request.query), cursor=request.cursor,
            limit=domain.page_size(request.limit),
        )
        docs, next_cursor = await self.store.list_conversations(query)
        now = utcnow()
        return pb.ListConversationsResponse(items=[conversation_pb(views.summary(d, now)) for d in docs],
                                            next_cursor=next_cursor)

    async def GetConversation(self, request: pb.GetConversationRequest,
                              context: grpc.aio.ServicerContext[Any, Any] | None = None
                              ) -> pb.GetConversationResponse:
        doc = await self.store.get_conversation(_required(request.workspace_id, "workspace_id"),
                                                _required(request.conversation_id, "conversation_id"))
        return pb.GetConversationResponse(conversation=conversation_pb(views.summary(doc, utcnow())))

    async def GetTimeline(self, request: pb.GetTimelineRequest,
                          context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.GetTimelineResponse:
        conv = await self.store.get_conversation(_required(request.workspace_id, "workspace_id"),
                                                 _required(request.conversation_id, "conversation_id"))
        docs, next_before = await self.store.get_timeline(conv["_id"], request.before,
                                                          domain.page_size(request.limit, 50, 200))
        return pb.GetTimelineResponse(items=[timeline_item_pb(d) for d in docs], next_before=next_before)

    # --- sending ------------------------------------------------------------------------------------------

    async def _existing_send(self, workspace_id: str, conversation_id: str, message_id: str) -> Document | None:
        """A retried call with the same idempotency key: the message it made (finishing its outbox)."""
        doc = await self.store.get_item(message_id)
        if doc is None:
            return None
        if doc.get("workspace_id") != workspace_id or doc.get("conversation_id") != conversation_id:
            raise Conflict("the idempotency key was used for another conversation")
        for entry in (doc.get("outbox") or {}).values():
            await self.publisher.try_carry_out("timeline", message_id, entry, self.publish_timeout_s)
        return _without_outbox(doc)

    async def _send(self, conv: Document, doc: Document, command: SendCommand,
                    activity: Document | None = None) -> Document:
        """Stores an outbound message with its events embedded, then publishes them (see outbox.py)."""
        workspace_id, conversation_id, message_id = conv["workspace_id"], conv["_id"], doc["_id"]
        customer = conv["customer"]
        events = [
            outbox_event(self.topics.commands, command_key(conv["number_id"], customer.get("wa_id") or "",
                                                           customer.get("user_id")),
                         Event.of(command, workspace_id=workspace_id, id=domain.event_id(message_id, "command"))),
            outbox_event(self.topics.conversations, conversation_id,
                         Event.of(MessageCreated(conversation_id=conversation_id, message=views.message(doc)),
                                  workspace_id=workspace_id, id=domain.event_id(message_id, "message.created"))),
        ]
        if activity is not None:
            events.append(outbox_event(
                self.topics.conversations, conversation_id,
                Event.of(ActivityCreated(conversation_id=conversation_id, activity=views.activity(activity)),
                         workspace_id=workspace_id, id=domain.event_id(activity["_id"], "activity.created"))))
        entry = {"id": "send", "created_at": doc["created_at"], "conversation_id": conversation_id,
                 "events": events, "inserts": [activity] if activity is not None else [],
                 "apply": "outbound_message", "conversation_updated": True}
        stored = {**doc, "outbox": {"send": entry}, "outbox_at": doc["created_at"]}
        if not await self.store.insert_item(stored):  # the same idempotency key, concurrently
            existing = await self._existing_send(workspace_id, conversation_id, message_id)
            if existing is None:
                raise Conflict("the message could not be stored")
            return existing
        await self.publisher.try_carry_out("timeline", message_id, entry, self.publish_timeout_s)
        return doc

    def _message_id(self, workspace_id: str, conversation_id: str, idempotency_key: str) -> str:
        if idempotency_key:
            return domain.outbound_message_id(workspace_id, conversation_id, idempotency_key)
        return domain.new_id("msg_")

    def _outbound(self, conv: Document, message_id: str, type_: str, agent: common_pb2.Actor,
                  now: datetime) -> Document:
        return {
            "_id": message_id, "kind": "message", "workspace_id": conv["workspace_id"],
            "conversation_id": conv["_id"], "direction": "out", "origin": "api", "type": type_,
            "status": "pending", "status_rank": domain.STATUS_RANK["pending"], "status_at": now,
            "sent_by": _agent(agent), "at": now, "arrival": next_arrival(), "created_at": now,
        }

    async def SendMessage(self, request: pb.SendMessageRequest,
                          context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.SendMessageResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        conv = await self.store.get_conversation(workspace_id, _required(request.conversation_id, "conversation_id"))
        message_id = self._message_id(workspace_id, conv["_id"], request.idempotency_key)
        if request.idempotency_key:
            existing = await self._existing_send(workspace_id, conv["_id"], message_id)
            if existing is not None:
                return pb.SendMessageResponse(message=message_pb(views.message(existing)))
        content = request.WhichOneof("content")
        if content is None:
            raise InvalidRequest("a message needs text or media", {"field": "content"})
        now = utcnow()
        expires = conv.get("window_expires_at")
        if not domain.window_open(expires, now):
            raise WindowClosed("This conversation is closed. Use a template to re-engage.",
                               {"expires_at": expires.isoformat() if expires else None})
        customer = conv["customer"]
        command_fields: dict[str, Any] = {
            "command_id": message_id, "phone_number_id": conv["number_id"], "wa_id": customer.get("wa_id") or "",
            "user_id": customer.get("user_id"), "conversation_id": conv["_id"], "message_id": message_id,
        }
        if content == "text":
            text = request.text.text
            if not text.strip():
                raise InvalidRequest("the text is empty", {"field": "text"})
            if len(text) > MAX_TEXT:
                raise ValidationFailed(f"a text message has at most {MAX_TEXT} characters", {"field": "text"})
            doc = self._outbound(conv, message_id, "text", request.agent, now)
            doc["text"] = text
            command_fields.update(kind="text", text=text, preview_url=request.text.preview_url)
        else:
            media_req = request.media
            kind = MEDIA_KINDS.get(media_req.kind)
            if kind is None:
                raise InvalidRequest("media needs a kind (image, video, audio, document)", {"field": "media.kind"})
            if len(media_req.caption) > MAX_CAPTION:
                raise ValidationFailed(f"a caption has at most {MAX_CAPTION} characters", {"field": "media.caption"})
            source = media_req.WhichOneof("source")
            media: Document
            if source == "upload_id" and media_req.upload_id:
                media = {"id": media_req.upload_id, "filename": media_req.filename or None}
            elif source == "library_item_id" and media_req.library_item_id:
                item = await self.store.get_library_item(workspace_id, media_req.library_item_id)
                if item.get("type") != kind or not isinstance(item.get("media"), dict):
                    raise InvalidRequest(f"library item {item['_id']} is not a {kind}", {"field": "library_item_id"})
                media = {k: item["media"].get(k) for k in ("id", "mime_type", "filename", "caption", "size")}
                if media_req.filename:
                    media["filename"] = media_req.filename
            else:
                raise InvalidRequest("media needs an upload_id or a library_item_id", {"field": "media.source"})
            if media_req.caption:
                media["caption"] = media_req.caption
            if kind == "audio":  # Meta takes no caption on audio
                media["caption"] = None
            media["status"] = "stored"
            media["size"] = int(media.get("size") or 0)
            doc = self._outbound(conv, message_id, kind, request.agent, now)
            doc["media"] = media
            command_fields.update(kind=kind, media=OutboundMedia(
                storage_id=media["id"], mime_type=media.get("mime_type"), filename=media.get("filename"),
                caption=media.get("caption")))
        if request.reply_to:
            quoted = await self.store.get_item(request.reply_to)
            if quoted is None or quoted.get("conversation_id") != conv["_id"] or quoted.get("kind") != "message":
                raise NotFound("no such message in this conversation", {"reply_to": request.reply_to})
            doc["reply_to"] = quoted["_id"]
            if quoted.get("wamid"):
                doc["reply_to_wamid"] = quoted["wamid"]
                command_fields["reply_to_wamid"] = quoted["wamid"]
        if request.idempotency_key:
            doc["idempotency_key"] = request.idempotency_key
        stored = await self._send(conv, doc, SendCommand(**command_fields))
        return pb.SendMessageResponse(message=message_pb(views.message(stored)))

    async def _template_wabas(self, workspace_id: str, number_id: str) -> list[str]:
        """The business accounts whose templates a number may send: its own; where the number has not
        been seen in an event yet, the workspace's only account (if it has exactly one)."""
        waba = await self.store.number_waba(workspace_id, number_id)
        if waba:
            return [waba]
        wabas = await self.store.workspace_wabas(workspace_id)
        return wabas if len(wabas) == 1 else []

    async def SendTemplate(self, request: pb.SendTemplateRequest,
                           context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.SendTemplateResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        conv = await self.store.get_conversation(workspace_id, _required(request.conversation_id, "conversation_id"))
        name, language = _required(request.name, "name"), _required(request.language, "language")
        message_id = self._message_id(workspace_id, conv["_id"], request.idempotency_key)
        if request.idempotency_key:
            existing = await self._existing_send(workspace_id, conv["_id"], message_id)
            if existing is not None:
                return pb.SendTemplateResponse(message=message_pb(views.message(existing)))
        template = await self.store.find_template(
            workspace_id, await self._template_wabas(workspace_id, conv["number_id"]), name, language)
        if template is None:
            raise NotFound("no such template for this number", {"name": name, "language": language})
        if str(template.get("status", "")).upper() != "APPROVED":
            raise Conflict("the template is not approved", {"status": template.get("status")},
                           code="template_not_approved")
        params = json_format.MessageToDict(request.params) if request.HasField("params") else {}
        domain.check_template_params_size(params)
        send = domain.build_template_send(template.get("components") or [], params)
        now = utcnow()
        doc = self._outbound(conv, message_id, "template", request.agent, now)
        doc["template"] = {"name": name, "language": language, "params": params}
        if send.text:
            doc["text"] = send.text
        if request.idempotency_key:
            doc["idempotency_key"] = request.idempotency_key
        customer = conv["customer"]
        command = SendCommand(
            command_id=message_id, phone_number_id=conv["number_id"], wa_id=customer.get("wa_id") or "",
            user_id=customer.get("user_id"), conversation_id=conv["_id"], message_id=message_id, kind="template",
            template=OutboundTemplate(name=name, language=language, components=send.components),
        )
        activity = documents.activity(
            domain.derived_id("act_", "template", message_id), workspace_id, conv["_id"], "template_sent",
            _agent(request.agent), {"template": name, "language": language, "message_id": message_id}, now,
            next_arrival())
        stored = await self._send(conv, doc, command, activity)
        return pb.SendTemplateResponse(message=message_pb(views.message(stored)))

    # --- team work ----------------------------------------------------------------------------------------

    async def AddNote(self, request: pb.AddNoteRequest,
                      context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.AddNoteResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        conv = await self.store.get_conversation(workspace_id, _required(request.conversation_id, "conversation_id"))
        text = request.text.strip()
        if not text:
            raise InvalidRequest("the note is empty", {"field": "text"})
        if len(text) > MAX_NOTE:
            raise ValidationFailed(f"a note has at most {MAX_NOTE} characters", {"field": "text"})
        now = utcnow()
        note = {"_id": domain.new_id("note_"), "kind": "note", "workspace_id": workspace_id,
                "conversation_id": conv["_id"], "text": text, "author": _agent(request.agent), "at": now,
                "arrival": next_arrival()}
        event = Event.of(NoteCreated(conversation_id=conv["_id"], note=views.note(note)), workspace_id=workspace_id,
                         id=domain.event_id(note["_id"], "note.created"))
        entry = {"id": "note", "created_at": now, "conversation_id": conv["_id"],
                 "events": [outbox_event(self.topics.conversations, conv["_id"], event)]}
        await self.store.insert_item({**note, "outbox": {"note": entry}, "outbox_at": now})
        await self.publisher.try_carry_out("timeline", note["_id"], entry, self.publish_timeout_s)
        return pb.AddNoteResponse(note=note_pb(views.note(note)))

    async def Assign(self, request: pb.AssignRequest,
                     context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.AssignResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        conv = await self.store.get_conversation(workspace_id, _required(request.conversation_id, "conversation_id"))
        assignee = _agent(request.assignee) if request.HasField("assignee") else None
        previous = conv.get("assignee")
        if (assignee or {}).get("id") == (previous or {}).get("id"):
            return pb.AssignResponse(conversation=conversation_pb(views.summary(conv, utcnow())))
        now = utcnow()
        entry_id = domain.new_id("out_")
        by = _agent(request.agent)
        activity = documents.activity(
            domain.derived_id("act_", "assign", entry_id), workspace_id, conv["_id"],
            "assigned" if assignee else "unassigned", by, {"assignee": assignee, "previous": previous}, now,
            next_arrival())
        events = [
            Event.of(ConversationAssigned(conversation_id=conv["_id"], assignee=views.actor(assignee),
                                          previous=views.actor(previous), by=views.actor(by)),
                     workspace_id=workspace_id, id=domain.event_id(entry_id, "conversation.assigned")),
            Event.of(ActivityCreated(conversation_id=conv["_id"], activity=views.activity(activity)),
                     workspace_id=workspace_id, id=domain.event_id(activity["_id"], "activity.created")),
        ]
        entry = {"id": entry_id, "created_at": now, "conversation_id": conv["_id"], "inserts": [activity],
                 "events": [outbox_event(self.topics.conversations, conv["_id"], e) for e in events],
                 "conversation_updated": True}
        if await self.store.set_assignee(workspace_id, conv["_id"], assignee, entry, now) is not None:
            await self.publisher.try_carry_out("conversations", conv["_id"], entry, self.publish_timeout_s)
        doc = await self.store.get_conversation(workspace_id, conv["_id"])
        return pb.AssignResponse(conversation=conversation_pb(views.summary(doc, utcnow())))

    async def MarkRead(self, request: pb.MarkReadRequest,
                       context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.MarkReadResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        conv = await self.store.get_conversation(workspace_id, _required(request.conversation_id, "conversation_id"))
        last_inbound = conv.get("last_inbound_wamid")
        receipt = last_inbound if last_inbound and last_inbound != conv.get("read_receipt_wamid") else None
        if not conv.get("unread_count") and receipt is None:
            return pb.MarkReadResponse(conversation=conversation_pb(views.summary(conv, utcnow())))
        now = utcnow()
        entry_id = domain.new_id("out_")
        by = _agent(request.agent)
        events = [outbox_event(self.topics.conversations, conv["_id"], Event.of(
            ConversationRead(conversation_id=conv["_id"], by=views.actor(by), last_read_wamid=receipt),
            workspace_id=workspace_id, id=domain.event_id(entry_id, "conversation.read")))]
        if receipt is not None:
            customer = conv["customer"]
            command = MarkReadCommand(
                command_id=domain.derived_id("cmd_", "read", conv["_id"], receipt), phone_number_id=conv["number_id"],
                wa_id=customer.get("wa_id") or "", user_id=customer.get("user_id"), conversation_id=conv["_id"],
                message_wamid=receipt)
            events.append(outbox_event(
                self.topics.commands, command_key(conv["number_id"], customer.get("wa_id") or "",
                                                  customer.get("user_id")),
                Event.of(command, workspace_id=workspace_id, id=domain.event_id(command.command_id, "command"))))
        entry = {"id": entry_id, "created_at": now, "conversation_id": conv["_id"], "events": events,
                 "conversation_updated": True}
        await self.store.mark_read(workspace_id, conv["_id"], entry, now, receipt)
        await self.publisher.try_carry_out("conversations", conv["_id"], entry, self.publish_timeout_s)
        doc = await self.store.get_conversation(workspace_id, conv["_id"])
        return pb.MarkReadResponse(conversation=conversation_pb(views.summary(doc, utcnow())))

    # --- templates and the content library ----------------------------------------------------------------

    async def ListTemplates(self, request: pb.ListTemplatesRequest,
                            context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.ListTemplatesResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        wabas = await self._template_wabas(workspace_id, request.number_id) if request.number_id else None
        docs = await self.store.list_templates(workspace_id, wabas)
        return pb.ListTemplatesResponse(items=[template_pb(d, request.number_id) for d in docs])

    async def ListLibraryItems(self, request: pb.ListLibraryItemsRequest,
                               context: grpc.aio.ServicerContext[Any, Any] | None = None
                               ) -> pb.ListLibraryItemsResponse:
        docs = await self.store.list_library(_required(request.workspace_id, "workspace_id"))
        return pb.ListLibraryItemsResponse(items=[library_pb(d) for d in docs])

    async def AddLibraryItem(self, request: pb.AddLibraryItemRequest,
                             context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.AddLibraryItemResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        type_ = LIBRARY_TYPES.get(request.type)
        if type_ is None:
            raise InvalidRequest("a library item needs a type", {"field": "type"})
        doc: Document = {"_id": domain.new_id("lib_"), "workspace_id": workspace_id, "type": type_,
                         "created_by": _agent(request.agent), "created_at": utcnow()}
        if type_ == "text":
            text = request.text.strip()
            if not text:
                raise InvalidRequest("a text snippet needs text", {"field": "text"})
            if len(text) > MAX_TEXT:
                raise ValidationFailed(f"a snippet has at most {MAX_TEXT} characters", {"field": "text"})
            doc["text"] = text
            doc["title"] = request.title.strip() or text[:40]
        else:
            upload_id = _required(request.upload_id, "upload_id")
            doc["media"] = {"id": upload_id, "caption": request.caption or None,
                            "filename": request.filename or None, "size": 0}
            doc["title"] = request.title.strip() or request.filename or type_
        await self.store.add_library_item(doc)
        return pb.AddLibraryItemResponse(item=library_pb(doc))

    async def RemoveLibraryItem(self, request: pb.RemoveLibraryItemRequest,
                                context: grpc.aio.ServicerContext[Any, Any] | None = None
                                ) -> pb.RemoveLibraryItemResponse:
        await self.store.remove_library_item(_required(request.workspace_id, "workspace_id"),
                                             _required(request.item_id, "item_id"))
        return pb.RemoveLibraryItemResponse()

    # --- unread badges (for the gateway's number selector) ---------------------------------------------------

    async def CountUnread(self, request: pb.CountUnreadRequest,
                          context: grpc.aio.ServicerContext[Any, Any] | None = None) -> pb.CountUnreadResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        numbers = list(dict.fromkeys(request.number_ids)) or await self.store.workspace_numbers(workspace_id)
        # One indexed count per number (index list_unread), run together.
        counts = await asyncio.gather(*(self.store.conversations.count_documents(
            {"workspace_id": workspace_id, "number_id": number, "has_unread": True}) for number in numbers))
        return pb.CountUnreadResponse(counts=[pb.UnreadCount(number_id=n, conversations=c)
                                              for n, c in zip(numbers, counts, strict=True)])
