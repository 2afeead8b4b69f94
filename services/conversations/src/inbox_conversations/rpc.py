"""gRPC servicer of inbox.conversations.v1.ConversationsService: requests into use cases (usecases/),
their answers into protos (wire.py); nothing else.

Every call is scoped to ``workspace_id``: a conversation, message or library item of another workspace
is NOT_FOUND. Changes are written with their events embedded (the outbox, see outbox.py) and only
then acknowledged.
"""

from __future__ import annotations

from datetime import UTC
from typing import Any, TypeAlias

import grpc
from google.protobuf import json_format

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import content_pb2, conversations_pb2_grpc
from inbox.conversations.v1 import conversations_pb2 as pb
from inbox_conversations.outbox import Publisher
from inbox_conversations.store import ConversationsStore
from inbox_conversations.usecases.library import ContentLibrary, NewLibraryItem
from inbox_conversations.usecases.reading import Reading
from inbox_conversations.usecases.replies import CannedReplyBook, ReplyChanges
from inbox_conversations.usecases.routing import AutoAssignment
from inbox_conversations.usecases.sending import Agent, Media, MessageToSend, Sending, TemplateToSend, Text
from inbox_conversations.usecases.team import TeamWork
from inbox_conversations.usecases.templates import TemplateBook
from inbox_conversations.wire import (
    AUTO_ASSIGN_MODES,
    CONVERSATION_STATUSES,
    FILTERS,
    LIBRARY_TYPES,
    MEDIA_KINDS,
    STATUS_FILTERS,
    canned_reply_pb,
    conversation_pb,
    library_pb,
    message_pb,
    note_pb,
    routing_pb,
    template_pb,
    timeline_item_pb,
)
from inbox_core.errors import InvalidRequest

SERVICE_NAME = "inbox.conversations.v1.ConversationsService"

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any] | None"


def _required(value: str, name: str) -> str:
    if not value:
        raise InvalidRequest(f"{name} is required", {"field": name})
    return value


def _agent(actor: common_pb2.Actor) -> Agent:
    return Agent(actor.id, actor.name)


def _content(request: pb.SendMessageRequest) -> Text | Media | None:
    content = request.WhichOneof("content")
    if content == "text":
        return Text(request.text.text, request.text.preview_url)
    if content == "media":
        media = request.media
        source = media.WhichOneof("source")
        return Media(MEDIA_KINDS.get(media.kind), media.caption, media.filename,
                     upload_id=media.upload_id if source == "upload_id" else "",
                     library_item_id=media.library_item_id if source == "library_item_id" else "")
    return None


class ConversationsRpc(conversations_pb2_grpc.ConversationsServiceServicer):
    def __init__(self, store: ConversationsStore, publisher: Publisher, publish_timeout_s: float = 3.0) -> None:
        repos = store.repos
        self.reading = Reading(repos)
        self.templates = TemplateBook(repos)
        self.sending = Sending(repos, publisher, self.templates, publish_timeout_s)
        self.team = TeamWork(repos, publisher, publish_timeout_s)
        self.library = ContentLibrary(repos)
        self.replies = CannedReplyBook(repos)
        self.routing = AutoAssignment(repos, publisher, None)  # routing settings only: assigning is the worker's

    # --- reading ------------------------------------------------------------------------------------------

    async def ListConversations(self, request: pb.ListConversationsRequest,
                                context: Context = None) -> pb.ListConversationsResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        filter_name = FILTERS.get(request.filter)
        if filter_name is None:
            raise InvalidRequest("unknown filter", {"filter": int(request.filter)})
        status = STATUS_FILTERS.get(request.status)
        if status is None:
            raise InvalidRequest("unknown status filter", {"status": int(request.status)})
        page = await self.reading.conversations(workspace_id, list(request.number_ids), filter_name, request.agent_id,
                                                request.query, request.cursor, request.limit, status)
        return pb.ListConversationsResponse(
            items=[conversation_pb(c, page.unseen_mentions.get(c.id, 0)) for c in page.items],
            next_cursor=page.next_cursor)

    async def GetConversation(self, request: pb.GetConversationRequest,
                              context: Context = None) -> pb.GetConversationResponse:
        summary, unseen = await self.reading.conversation(_required(request.workspace_id, "workspace_id"),
                                                          _required(request.conversation_id, "conversation_id"),
                                                          request.agent_id)
        return pb.GetConversationResponse(conversation=conversation_pb(summary, unseen))

    async def GetTimeline(self, request: pb.GetTimelineRequest, context: Context = None) -> pb.GetTimelineResponse:
        page = await self.reading.timeline(_required(request.workspace_id, "workspace_id"),
                                           _required(request.conversation_id, "conversation_id"), request.before,
                                           request.limit)
        return pb.GetTimelineResponse(items=[timeline_item_pb(v) for v in page.items], next_before=page.next_before)

    async def CountUnread(self, request: pb.CountUnreadRequest, context: Context = None) -> pb.CountUnreadResponse:
        counts = await self.reading.unread_counts(_required(request.workspace_id, "workspace_id"),
                                                  list(request.number_ids))
        return pb.CountUnreadResponse(counts=[pb.UnreadCount(number_id=n, conversations=c) for n, c in counts])

    # --- sending ------------------------------------------------------------------------------------------

    async def SendMessage(self, request: pb.SendMessageRequest, context: Context = None) -> pb.SendMessageResponse:
        message = await self.sending.message(MessageToSend(
            workspace_id=_required(request.workspace_id, "workspace_id"),
            conversation_id=_required(request.conversation_id, "conversation_id"), agent=_agent(request.agent),
            idempotency_key=request.idempotency_key, content=_content(request), reply_to=request.reply_to,
            after_seq=request.after_seq, force=request.force))
        return pb.SendMessageResponse(message=message_pb(message))

    async def SendTemplate(self, request: pb.SendTemplateRequest,
                           context: Context = None) -> pb.SendTemplateResponse:
        message = await self.sending.template(TemplateToSend(
            workspace_id=_required(request.workspace_id, "workspace_id"),
            conversation_id=_required(request.conversation_id, "conversation_id"), agent=_agent(request.agent),
            idempotency_key=request.idempotency_key, name=_required(request.name, "name"),
            language=_required(request.language, "language"),
            params=json_format.MessageToDict(request.params) if request.HasField("params") else {},
            after_seq=request.after_seq, force=request.force))
        return pb.SendTemplateResponse(message=message_pb(message))

    # --- team work ----------------------------------------------------------------------------------------

    async def AddNote(self, request: pb.AddNoteRequest, context: Context = None) -> pb.AddNoteResponse:
        note = await self.team.note(_required(request.workspace_id, "workspace_id"),
                                    _required(request.conversation_id, "conversation_id"), _agent(request.agent),
                                    request.text, [_agent(a) for a in request.mentions])
        return pb.AddNoteResponse(note=note_pb(note))

    async def Assign(self, request: pb.AssignRequest, context: Context = None) -> pb.AssignResponse:
        assignee = _agent(request.assignee) if request.HasField("assignee") else None
        summary = await self.team.assign(_required(request.workspace_id, "workspace_id"),
                                         _required(request.conversation_id, "conversation_id"),
                                         _agent(request.agent), assignee)
        return pb.AssignResponse(conversation=conversation_pb(summary))

    async def SetStatus(self, request: pb.SetStatusRequest, context: Context = None) -> pb.SetStatusResponse:
        until = request.until.ToDatetime(tzinfo=UTC) if request.HasField("until") else None
        summary = await self.team.set_status(_required(request.workspace_id, "workspace_id"),
                                             _required(request.conversation_id, "conversation_id"),
                                             _agent(request.agent), CONVERSATION_STATUSES.get(request.status, ""),
                                             until)
        return pb.SetStatusResponse(conversation=conversation_pb(summary))

    async def IndicateTyping(self, request: pb.IndicateTypingRequest,
                             context: Context = None) -> pb.IndicateTypingResponse:
        sent = await self.team.typing(_required(request.workspace_id, "workspace_id"),
                                      _required(request.conversation_id, "conversation_id"))
        return pb.IndicateTypingResponse(sent=sent)

    async def MarkRead(self, request: pb.MarkReadRequest, context: Context = None) -> pb.MarkReadResponse:
        summary = await self.team.mark_read(_required(request.workspace_id, "workspace_id"),
                                            _required(request.conversation_id, "conversation_id"),
                                            _agent(request.agent))
        return pb.MarkReadResponse(conversation=conversation_pb(summary))

    # --- templates and the content library ----------------------------------------------------------------

    async def ListTemplates(self, request: content_pb2.ListTemplatesRequest,
                            context: Context = None) -> content_pb2.ListTemplatesResponse:
        docs = await self.templates.listed(_required(request.workspace_id, "workspace_id"), request.number_id)
        return content_pb2.ListTemplatesResponse(items=[template_pb(d, request.number_id) for d in docs])

    async def ListLibraryItems(self, request: content_pb2.ListLibraryItemsRequest,
                               context: Context = None) -> content_pb2.ListLibraryItemsResponse:
        items = await self.library.items(_required(request.workspace_id, "workspace_id"))
        return content_pb2.ListLibraryItemsResponse(items=[library_pb(i) for i in items])

    async def AddLibraryItem(self, request: content_pb2.AddLibraryItemRequest,
                             context: Context = None) -> content_pb2.AddLibraryItemResponse:
        item = await self.library.add(NewLibraryItem(
            workspace_id=_required(request.workspace_id, "workspace_id"), type=LIBRARY_TYPES.get(request.type),
            agent=_agent(request.agent), title=request.title, text=request.text, upload_id=request.upload_id,
            caption=request.caption, filename=request.filename))
        return content_pb2.AddLibraryItemResponse(item=library_pb(item))

    async def RemoveLibraryItem(self, request: content_pb2.RemoveLibraryItemRequest,
                                context: Context = None) -> content_pb2.RemoveLibraryItemResponse:
        await self.library.remove(_required(request.workspace_id, "workspace_id"),
                                  _required(request.item_id, "item_id"))
        return content_pb2.RemoveLibraryItemResponse()

    # --- canned replies -----------------------------------------------------------------------------------

    async def ListCannedReplies(self, request: content_pb2.ListCannedRepliesRequest,
                                context: Context = None) -> content_pb2.ListCannedRepliesResponse:
        replies = await self.replies.listed(_required(request.workspace_id, "workspace_id"), request.query)
        return content_pb2.ListCannedRepliesResponse(items=[canned_reply_pb(r) for r in replies])

    async def AddCannedReply(self, request: content_pb2.AddCannedReplyRequest,
                             context: Context = None) -> content_pb2.AddCannedReplyResponse:
        reply = await self.replies.add(_required(request.workspace_id, "workspace_id"), _agent(request.agent),
                                       request.shortcut, request.title, request.text)
        return content_pb2.AddCannedReplyResponse(reply=canned_reply_pb(reply))

    async def UpdateCannedReply(self, request: content_pb2.UpdateCannedReplyRequest,
                                context: Context = None) -> content_pb2.UpdateCannedReplyResponse:
        changes = ReplyChanges(
            shortcut=request.shortcut if request.HasField("shortcut") else None,
            title=request.title if request.HasField("title") else None,
            text=request.text if request.HasField("text") else None)
        reply = await self.replies.update(_required(request.workspace_id, "workspace_id"),
                                          _required(request.reply_id, "reply_id"), changes)
        return content_pb2.UpdateCannedReplyResponse(reply=canned_reply_pb(reply))

    async def RemoveCannedReply(self, request: content_pb2.RemoveCannedReplyRequest,
                                context: Context = None) -> content_pb2.RemoveCannedReplyResponse:
        await self.replies.remove(_required(request.workspace_id, "workspace_id"),
                                  _required(request.reply_id, "reply_id"))
        return content_pb2.RemoveCannedReplyResponse()

    async def RenderCannedReply(self, request: content_pb2.RenderCannedReplyRequest,
                                context: Context = None) -> content_pb2.RenderCannedReplyResponse:
        text = await self.replies.rendered(
            _required(request.workspace_id, "workspace_id"), _required(request.conversation_id, "conversation_id"),
            _required(request.reply_id, "reply_id"), _agent(request.agent))
        return content_pb2.RenderCannedReplyResponse(text=text)

    # --- routing ------------------------------------------------------------------------------------------

    async def GetRouting(self, request: pb.GetRoutingRequest, context: Context = None) -> pb.GetRoutingResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        return pb.GetRoutingResponse(routing=routing_pb(workspace_id, await self.routing.mode(workspace_id)))

    async def SetRouting(self, request: pb.SetRoutingRequest, context: Context = None) -> pb.SetRoutingResponse:
        workspace_id = _required(request.workspace_id, "workspace_id")
        mode = AUTO_ASSIGN_MODES.get(request.auto_assign)
        if mode is None:
            raise InvalidRequest("auto_assign is off or round_robin", {"field": "auto_assign"})
        mode = await self.routing.set_mode(workspace_id, mode, _agent(request.agent))
        return pb.SetRoutingResponse(routing=routing_pb(workspace_id, mode))
