"""Sending from the inbox: a message (text or media) and a template.

A send is acknowledged only after one single-document write: the new message carries its events
(``outbox.send``), then the request carries the entry out (see outbox.py). ``idempotency_key`` makes a
retried call return the same message and send once (the message id is derived from it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from inbox_conversations import documents, domain, template_sends, views
from inbox_conversations.outbox import Publisher, command_key, next_arrival, outbox_event, utcnow
from inbox_conversations.repositories import Repositories
from inbox_conversations.usecases.templates import TemplateBook
from inbox_core.errors import Conflict, InvalidRequest, NotFound, ValidationFailed, WindowClosed
from inbox_core.events import Event
from inbox_core.events.commands import OutboundMedia, OutboundTemplate, SendCommand
from inbox_core.events.conversations import ActivityCreated, MessageCreated, MessageView
from inbox_core.mongo import Document

MAX_TEXT = 4096  # Meta's limit for a text message body
MAX_CAPTION = 1024


@dataclass(frozen=True)
class Agent:
    id: str
    name: str

    def doc(self) -> Document | None:
        return documents.actor_doc(self.id, self.name)


@dataclass(frozen=True)
class Text:
    text: str
    preview_url: bool = False


@dataclass(frozen=True)
class Media:
    kind: str | None  # image | video | audio | document; None: not one we know
    caption: str = ""
    filename: str = ""
    upload_id: str = ""
    library_item_id: str = ""


@dataclass(frozen=True)
class Send:
    """Where and as whom: common to a message and a template."""

    workspace_id: str
    conversation_id: str
    agent: Agent
    idempotency_key: str = ""
    # The double-reply guard: the newest seq the agent had seen (0: none), and force to send anyway.
    after_seq: int = 0
    force: bool = False


@dataclass(frozen=True)
class MessageToSend(Send):
    content: Text | Media | None = None
    reply_to: str = ""


@dataclass(frozen=True)
class TemplateToSend(Send):
    name: str = ""
    language: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def _without_outbox(doc: Document) -> Document:
    return {k: v for k, v in doc.items() if k not in ("outbox", "outbox_at")}


class Sending:
    def __init__(self, repos: Repositories, publisher: Publisher, templates: TemplateBook,
                 publish_timeout_s: float = 3.0) -> None:
        self.repos = repos
        self.publisher = publisher
        self.templates = templates
        self.publish_timeout_s = publish_timeout_s

    async def message(self, send: MessageToSend) -> MessageView:
        conv = await self.repos.conversations.get(send.workspace_id, send.conversation_id)
        message_id = self._message_id(send, conv)
        if send.idempotency_key:
            existing = await self._existing(send.workspace_id, conv["_id"], message_id)
            if existing is not None:
                return views.message(existing)
        if send.content is None:
            raise InvalidRequest("a message needs text or media", {"field": "content"})
        await self._guard(send)
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
        content = send.content
        if isinstance(content, Text):
            if not content.text.strip():
                raise InvalidRequest("the text is empty", {"field": "text"})
            if len(content.text) > MAX_TEXT:
                raise ValidationFailed(f"a text message has at most {MAX_TEXT} characters", {"field": "text"})
            doc = self._outbound(conv, message_id, "text", send.agent, now)
            doc["text"] = content.text
            command_fields.update(kind="text", text=content.text, preview_url=content.preview_url)
        else:
            kind, media = await self._media(send.workspace_id, content)
            doc = self._outbound(conv, message_id, kind, send.agent, now)
            doc["media"] = media
            command_fields.update(kind=kind, media=OutboundMedia(
                storage_id=media["id"], mime_type=media.get("mime_type"), filename=media.get("filename"),
                caption=media.get("caption")))
        if send.reply_to:
            quoted = await self.repos.timeline.get(send.reply_to)
            if quoted is None or quoted.get("conversation_id") != conv["_id"] or quoted.get("kind") != "message":
                raise NotFound("no such message in this conversation", {"reply_to": send.reply_to})
            doc["reply_to"] = quoted["_id"]
            if quoted.get("wamid"):
                doc["reply_to_wamid"] = quoted["wamid"]
                command_fields["reply_to_wamid"] = quoted["wamid"]
        if send.idempotency_key:
            doc["idempotency_key"] = send.idempotency_key
        return views.message(await self._send(conv, doc, SendCommand(**command_fields)))

    async def _media(self, workspace_id: str, content: Media) -> tuple[str, Document]:
        kind = content.kind
        if kind is None:
            raise InvalidRequest("media needs a kind (image, video, audio, document)", {"field": "media.kind"})
        if len(content.caption) > MAX_CAPTION:
            raise ValidationFailed(f"a caption has at most {MAX_CAPTION} characters", {"field": "media.caption"})
        media: Document
        if content.upload_id:
            media = {"id": content.upload_id, "filename": content.filename or None}
        elif content.library_item_id:
            item = await self.repos.library.get(workspace_id, content.library_item_id)
            if item.get("type") != kind or not isinstance(item.get("media"), dict):
                raise InvalidRequest(f"library item {item['_id']} is not a {kind}", {"field": "library_item_id"})
            media = {k: item["media"].get(k) for k in ("id", "mime_type", "filename", "caption", "size")}
            if content.filename:
                media["filename"] = content.filename
        else:
            raise InvalidRequest("media needs an upload_id or a library_item_id", {"field": "media.source"})
        if content.caption:
            media["caption"] = content.caption
        if kind == "audio":  # Meta takes no caption on audio
            media["caption"] = None
        media["status"] = "stored"
        media["size"] = int(media.get("size") or 0)
        return kind, media

    async def template(self, send: TemplateToSend) -> MessageView:
        workspace_id = send.workspace_id
        conv = await self.repos.conversations.get(workspace_id, send.conversation_id)
        message_id = self._message_id(send, conv)
        if send.idempotency_key:
            existing = await self._existing(workspace_id, conv["_id"], message_id)
            if existing is not None:
                return views.message(existing)
        await self._guard(send)
        template = await self.templates.find(workspace_id, conv["number_id"], send.name, send.language)
        if template is None:
            raise NotFound("no such template for this number", {"name": send.name, "language": send.language})
        if str(template.get("status", "")).upper() != "APPROVED":
            raise Conflict("the template is not approved", {"status": template.get("status")},
                           code="template_not_approved")
        template_sends.check_template_params_size(send.params)
        built = template_sends.build_template_send(template.get("components") or [], send.params)
        now = utcnow()
        doc = self._outbound(conv, message_id, "template", send.agent, now)
        doc["template"] = {"name": send.name, "language": send.language, "params": send.params}
        if built.text:
            doc["text"] = built.text
        if send.idempotency_key:
            doc["idempotency_key"] = send.idempotency_key
        customer = conv["customer"]
        command = SendCommand(
            command_id=message_id, phone_number_id=conv["number_id"], wa_id=customer.get("wa_id") or "",
            user_id=customer.get("user_id"), conversation_id=conv["_id"], message_id=message_id, kind="template",
            template=OutboundTemplate(name=send.name, language=send.language, components=built.components),
        )
        activity = documents.activity(
            domain.derived_id("act_", "template", message_id), workspace_id, conv["_id"], "template_sent",
            send.agent.doc(), {"template": send.name, "language": send.language, "message_id": message_id}, now,
            next_arrival(), None)  # its seq is taken with the message's (_send)
        return views.message(await self._send(conv, doc, command, activity))

    # --- the common part ---------------------------------------------------------------------------------

    async def _guard(self, send: Send) -> None:
        """Two agents answering the same question seconds apart: refused when a colleague's reply came after
        what this agent had seen, unless it insists (``force``). A retry of a send that went through is
        answered before this (its idempotency key), so a retry never trips on its own message."""
        if send.after_seq <= 0 or send.force:
            return
        reply = await self.repos.timeline.reply_by_another_after(send.conversation_id, send.after_seq,
                                                                 send.agent.id)
        if reply is not None:
            by = reply.get("sent_by") or {}
            raise Conflict(f"{by.get('name') or 'A colleague'} replied meanwhile", {
                "replied_by": {"id": by.get("id"), "name": by.get("name")},
                "at": reply["at"].isoformat(), "seq": reply.get("seq")}, code="conflict")

    @staticmethod
    def _message_id(send: Send, conv: Document) -> str:
        if send.idempotency_key:
            return domain.outbound_message_id(send.workspace_id, conv["_id"], send.idempotency_key)
        return domain.new_id("msg_")

    @staticmethod
    def _outbound(conv: Document, message_id: str, type_: str, agent: Agent, now: datetime) -> Document:
        return {
            "_id": message_id, "kind": "message", "workspace_id": conv["workspace_id"],
            "conversation_id": conv["_id"], "direction": "out", "origin": "api", "type": type_,
            "status": "pending", "status_rank": domain.STATUS_RANK["pending"], "status_at": now,
            "sent_by": agent.doc(), "at": now, "arrival": next_arrival(), "created_at": now,
        }

    async def _existing(self, workspace_id: str, conversation_id: str, message_id: str) -> Document | None:
        """A retried call with the same idempotency key: the message it made (finishing its outbox)."""
        doc = await self.repos.timeline.get(message_id)
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
        first = await self.repos.conversations.take_seqs(conversation_id, 1 if activity is None else 2)
        doc = {**doc, "seq": first}
        if activity is not None:
            activity = {**activity, "seq": first + 1}
        customer = conv["customer"]
        topics = self.publisher.topics
        events = [
            outbox_event(topics.commands, command_key(conv["number_id"], customer.get("wa_id") or "",
                                                      customer.get("user_id")),
                         Event.of(command, workspace_id=workspace_id, id=domain.event_id(message_id, "command"))),
            outbox_event(topics.conversations, conversation_id,
                         Event.of(MessageCreated(conversation_id=conversation_id, message=views.message(doc)),
                                  workspace_id=workspace_id, id=domain.event_id(message_id, "message.created"))),
        ]
        if activity is not None:
            events.append(outbox_event(
                topics.conversations, conversation_id,
                Event.of(ActivityCreated(conversation_id=conversation_id, activity=views.activity(activity)),
                         workspace_id=workspace_id, id=domain.event_id(activity["_id"], "activity.created"))))
        entry = {"id": "send", "created_at": doc["created_at"], "conversation_id": conversation_id,
                 "events": events, "inserts": [activity] if activity is not None else [],
                 "apply": "outbound_message", "conversation_updated": True}
        stored = {**doc, "outbox": {"send": entry}, "outbox_at": doc["created_at"]}
        if not await self.repos.timeline.insert(stored):  # the same idempotency key, concurrently
            existing = await self._existing(workspace_id, conversation_id, message_id)
            if existing is None:
                raise Conflict("the message could not be stored")
            return existing
        await self.publisher.try_carry_out("timeline", message_id, entry, self.publish_timeout_s)
        return doc
