"""The left and center columns: numbers, the conversation list, a conversation, its timeline and the
actions on it (send, template, note, assign, status, read, composing, viewing), templates and the content library."""

from __future__ import annotations

import asyncio
import logging
from typing import Annotated

import msgspec
from litestar import delete, get, post
from litestar.params import FromPath, HeaderParameter, JSONBody, QueryParameter

from inbox.common.v1 import common_pb2
from inbox.conversations.v1 import content_pb2, conversations_pb2
from inbox.ingest.v1 import ingest_pb2
from inbox_core.errors import Forbidden, InboxError, InvalidRequest, NotFound, ValidationFailed
from inbox_gateway import convert, listing
from inbox_gateway import models as m
from inbox_gateway.api.common import (
    GatewayDep,
    PrincipalDep,
    actor_fields,
    colleagues_by_workspace,
    colleagues_in,
    conversation_actor,
    conversation_workspace,
    errors,
    find_conversation,
    media_info,
    only_member,
    struct_of,
)
from inbox_gateway.gateway import Gateway
from inbox_gateway.uploads import media_kind

log = logging.getLogger("inbox.gateway.api")

FILTERS = {"all": conversations_pb2.CONVERSATION_FILTER_ALL, "unread": conversations_pb2.CONVERSATION_FILTER_UNREAD,
           "mine": conversations_pb2.CONVERSATION_FILTER_MINE,
           "no_reply": conversations_pb2.CONVERSATION_FILTER_NO_REPLY,
           "mentions": conversations_pb2.CONVERSATION_FILTER_MENTIONS}

IdempotencyKey = Annotated[str | None, HeaderParameter(
    name="Idempotency-Key", max_length=200, required=False,
    description="One per submission (client-generated): a retried request returns the first result and acts once.")]


# --- numbers ---------------------------------------------------------------------------------------------


@get("/api/numbers", tags=["numbers"], summary="Connected WhatsApp numbers with their unread badges",
     responses=errors())
async def list_numbers(gateway: GatewayDep, principal: PrincipalDep) -> m.NumberList:
    async def of(workspace_id: str) -> list[m.Number]:
        channels, unread = await asyncio.gather(gateway.locator.channels(workspace_id, fresh=True),
                                                gateway.upstream.count_unread(workspace_id, []))
        return [m.Number(id=c.phone_number_id, workspace_id=c.workspace_id,
                         display_phone_number=c.display_phone_number, name=c.name,
                         unread_conversations=unread.get(c.phone_number_id, 0), waba_id=c.waba_id)
                for c in channels]

    lists = await asyncio.gather(*(of(ws) for ws in principal.workspaces))
    return m.NumberList(items=[n for numbers in lists for n in numbers])


# --- the conversation list -------------------------------------------------------------------------------


@get("/api/conversations", tags=["conversations"], summary="The conversation list, newest activity first",
     responses=errors(404))
async def list_conversations(
    gateway: GatewayDep,
    principal: PrincipalDep,
    number: Annotated[str | None, QueryParameter(description="A number's id (phone_number_id); all when omitted",
                                            max_length=64)] = None,
    filter_: Annotated[m.Filter, QueryParameter(name="filter")] = "all",
    status: Annotated[m.StatusFilter, QueryParameter(
        description="open (the default), resolved, snoozed, or any")] = "open",
    q: Annotated[str | None, QueryParameter(description="Customer name or phone", max_length=200)] = None,
    cursor: Annotated[str | None, QueryParameter(description="next_cursor of the previous page",
                                                 max_length=4000)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 30,
) -> m.ConversationPage:
    if number is not None:
        workspaces, number_ids = [await gateway.locator.number_workspace(principal, number)], [number]
    else:
        workspaces, number_ids = principal.workspaces, []
    if not workspaces:
        return m.ConversationPage(items=[], next_cursor=None)

    async def fetch(workspace_id: str, service_cursor: str,
                    size: int) -> tuple[list[conversations_pb2.Conversation], str]:
        response = await gateway.upstream.list_conversations(conversations_pb2.ListConversationsRequest(
            workspace_id=workspace_id, number_ids=number_ids, filter=FILTERS[filter_], agent_id=principal.agent_id,
            query=(q or "").strip(), cursor=service_cursor, limit=size, status=convert.STATUS_FILTER[status]))
        return list(response.items), response.next_cursor

    if len(workspaces) == 1:
        # One workspace (a team's inbox, or one number): presence asked for its whole activity (who
        # composes in or views what, bounded by the agents online) beside the page, one round trip less.
        (items, next_cursor), colleagues = await asyncio.gather(
            listing.page(fetch, workspaces, cursor, limit),
            colleagues_by_workspace(gateway, principal, {workspaces[0]: []}))
    else:
        # An agency's many workspaces: after the page, for the workspaces it shows only.
        items, next_cursor = await listing.page(fetch, workspaces, cursor, limit)
        colleagues = await colleagues_in(gateway, principal, items)
    return m.ConversationPage(items=[convert.conversation(c, colleagues.get(c.id)) for c in items],
                              next_cursor=next_cursor)


@get("/api/conversations/{conversation_id:str}", tags=["conversations"], summary="One conversation",
     responses=errors(404))
async def get_conversation(gateway: GatewayDep, principal: PrincipalDep,
                           conversation_id: FromPath[str]) -> m.Conversation:
    home = gateway.locator.home(f"conversation:{conversation_id}", principal)
    if home is not None:  # its workspace known without a call: the conversation and its composing together
        conversation, colleagues = await asyncio.gather(
            gateway.upstream.get_conversation(home, conversation_id, principal.agent_id),
            colleagues_by_workspace(gateway, principal, {home: [conversation_id]}))
    else:
        _, conversation = await find_conversation(gateway, principal, conversation_id)
        colleagues = await colleagues_in(gateway, principal, [conversation])
    return convert.conversation(conversation, colleagues.get(conversation.id))


# --- the center column -----------------------------------------------------------------------------------


@get("/api/conversations/{conversation_id:str}/timeline", tags=["conversations"],
     summary="Messages, notes and activities, oldest first within a page", responses=errors(404))
async def get_timeline(
    gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
    before: Annotated[str | None, QueryParameter(description="next_before of the previous page",
                                                 max_length=4000)] = None,
    limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
) -> m.TimelinePage:
    # One call: the timeline asked of the conversation's workspace (or of each of the agent's at once; the
    # service answers NOT_FOUND for another's id), not the conversation first to learn its workspace.
    _, response = await gateway.locator.find(
        f"conversation:{conversation_id}", principal,
        lambda ws: gateway.upstream.get_timeline(conversations_pb2.GetTimelineRequest(
            workspace_id=ws, conversation_id=conversation_id, before=before or "", limit=limit)))
    items = [item for item in (convert.timeline_item(i) for i in response.items) if item is not None]
    return m.TimelinePage(items=items, next_before=response.next_before or None)


async def _checked_upload(gateway: Gateway, workspace_id: str, upload_id: str, kind: str) -> ingest_pb2.MediaInfo:
    """An upload of this workspace whose type fits the message or library kind."""
    info = await media_info(gateway, workspace_id, upload_id)
    if media_kind(info.mime_type) != kind:
        raise ValidationFailed(f"upload {upload_id} is {info.mime_type}, not an {kind} Meta takes",
                               {"upload_id": upload_id, "mime_type": info.mime_type})
    return info


@post("/api/conversations/{conversation_id:str}/messages", status_code=202, tags=["conversations"],
      summary="Send a free-form message (text or media)", responses=errors(404, 409, 422),
      description="Accepted with status pending; 409 window_closed outside Meta's 24-hour window; 409 "
                  "conflict when a colleague replied after `after_seq` (unless `force`), nothing sent.")
async def send_message(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                       data: JSONBody[m.SendMessageBody],
                       idempotency_key: IdempotencyKey = None) -> m.MessageEnvelope:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    request = conversations_pb2.SendMessageRequest(workspace_id=workspace_id, conversation_id=conversation_id,
                                     agent=conversation_actor(principal), idempotency_key=idempotency_key or "",
                                     reply_to=data.reply_to or "", after_seq=data.after_seq or 0,
                                     force=data.force)
    if data.type == "text":
        if not (data.text or "").strip():
            raise InvalidRequest("a text message needs text", {"field": "text"})
        if data.upload_id or data.library_item_id:
            raise InvalidRequest("a text message takes no upload_id or library_item_id")
        request.text.CopyFrom(conversations_pb2.TextContent(text=data.text or "", preview_url=data.preview_url))
    else:
        if bool(data.upload_id) == bool(data.library_item_id):
            raise InvalidRequest("media needs exactly one of upload_id and library_item_id")
        media = conversations_pb2.MediaContent(kind=convert.MEDIA_KIND[data.type], caption=data.caption or "",
                                 filename=data.filename or "")
        if data.upload_id:
            await _checked_upload(gateway, workspace_id, data.upload_id, data.type)
            media.upload_id = data.upload_id
        else:
            media.library_item_id = data.library_item_id or ""
        request.media.CopyFrom(media)
    return m.MessageEnvelope(message=convert.message(await gateway.upstream.send_message(request)))


@post("/api/conversations/{conversation_id:str}/templates", status_code=202, tags=["conversations"],
      summary="Send an approved template (window open or closed)", responses=errors(404, 409, 422))
async def send_template(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                        data: JSONBody[m.SendTemplateBody],
                        idempotency_key: IdempotencyKey = None) -> m.MessageEnvelope:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    params = {k: v for k, v in msgspec.to_builtins(data.params).items() if v is not None}
    message = await gateway.upstream.send_template(conversations_pb2.SendTemplateRequest(
        workspace_id=workspace_id, conversation_id=conversation_id, agent=conversation_actor(principal),
        idempotency_key=idempotency_key or "", name=data.name, language=data.language,
        params=struct_of(params, "params"), after_seq=data.after_seq or 0, force=data.force))
    return m.MessageEnvelope(message=convert.message(message))


@post("/api/conversations/{conversation_id:str}/notes", status_code=201, tags=["conversations"],
      summary="Add an internal note (never sent to the customer)", responses=errors(404, 422))
async def add_note(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                   data: JSONBody[m.NoteBody]) -> m.NoteEnvelope:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    request = conversations_pb2.AddNoteRequest(workspace_id=workspace_id, conversation_id=conversation_id,
                                               agent=conversation_actor(principal), text=data.text)
    if data.mentions:
        members = {member.agent.id: member.agent for member in await gateway.accounts.members(workspace_id)}
        strangers = [agent_id for agent_id in data.mentions if agent_id not in members]
        if strangers:
            raise InvalidRequest("a note can mention only agents of its workspace",
                                 {"field": "mentions", "agent_ids": strangers})
        request.mentions.extend(common_pb2.Actor(id=agent_id, name=members[agent_id].name)
                                for agent_id in dict.fromkeys(data.mentions))
    note = await gateway.upstream.add_note(request)
    return m.NoteEnvelope(note=convert.note(note))


@post("/api/conversations/{conversation_id:str}/assign", status_code=200, tags=["conversations"],
      summary="Assign to an agent of the workspace, or unassign (agent_id null)", responses=errors(404))
async def assign(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                 data: JSONBody[m.AssignBody]) -> m.ConversationEnvelope:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    request = conversations_pb2.AssignRequest(workspace_id=workspace_id, conversation_id=conversation_id,
                                agent=conversation_actor(principal))
    if data.agent_id is not None:
        role, agent = await asyncio.gather(gateway.accounts.role_in(workspace_id, data.agent_id),
                                           gateway.accounts.get_agent(data.agent_id))
        if role is None or agent is None:
            raise NotFound("no such agent in this workspace", {"agent_id": data.agent_id})
        request.assignee.CopyFrom(common_pb2.Actor(id=agent.id, name=agent.name))
    conversation = await gateway.upstream.assign(request)
    colleagues = await colleagues_in(gateway, principal, [conversation])
    return m.ConversationEnvelope(conversation=convert.conversation(conversation, colleagues.get(conversation.id)))


@post("/api/conversations/{conversation_id:str}/status", status_code=200, tags=["conversations"],
      summary="Resolve, snooze until a time, or reopen", responses=errors(400, 404))
async def set_status(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                     data: JSONBody[m.StatusBody]) -> m.ConversationEnvelope:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    request = conversations_pb2.SetStatusRequest(
        workspace_id=workspace_id, conversation_id=conversation_id, agent=conversation_actor(principal),
        status=convert.CONVERSATION_STATUS_VALUE[data.status])
    if data.until is not None:
        request.until.FromDatetime(data.until)
    conversation = await gateway.upstream.set_status(request)
    colleagues = await colleagues_in(gateway, principal, [conversation])
    return m.ConversationEnvelope(conversation=convert.conversation(conversation, colleagues.get(conversation.id)))


@post("/api/conversations/{conversation_id:str}/read", status_code=200, tags=["conversations"],
      summary="Mark as read (unread to 0; a read receipt goes to the customer)", responses=errors(404))
async def mark_read(gateway: GatewayDep, principal: PrincipalDep,
                    conversation_id: FromPath[str]) -> m.ConversationEnvelope:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    conversation = await gateway.upstream.mark_read(conversations_pb2.MarkReadRequest(
        workspace_id=workspace_id, conversation_id=conversation_id, agent=conversation_actor(principal)))
    colleagues = await colleagues_in(gateway, principal, [conversation])
    return m.ConversationEnvelope(conversation=convert.conversation(conversation, colleagues.get(conversation.id)))


@post("/api/conversations/{conversation_id:str}/composing", status_code=204, tags=["conversations"],
      summary="The agent is typing a reply (or stopped); expires on its own after a few seconds",
      responses=errors(404))
async def set_composing(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                        data: JSONBody[m.ComposingBody]) -> None:
    # Presence knows nothing of conversations: the conversation is checked here (remembered once seen).
    workspace_id, _ = await find_conversation(gateway, principal, conversation_id)
    actor = common_pb2.Actor(**actor_fields(principal))
    await gateway.upstream.set_composing(workspace_id, actor, conversation_id, data.composing)
    if data.composing:
        # The customer sees "typing…" too (the service sends it at most every 25 s, inside the window); it is a
        # courtesy: when it cannot be sent, colleagues are still told and the answer stays 204.
        try:
            await gateway.upstream.indicate_typing(workspace_id, conversation_id, actor)
        except InboxError as exc:
            log.warning("typing indicator for %s not sent: %s", conversation_id, exc.code)


@post("/api/conversations/{conversation_id:str}/viewing", status_code=204, tags=["conversations"],
      summary="The agent has the conversation open (or left it); expires on its own unless repeated",
      responses=errors(404))
async def set_viewing(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                      data: JSONBody[m.ViewingBody]) -> None:
    # As composing: the conversation is checked here; one conversation viewed at a time per agent, so
    # leaving it clears the agent's viewing (presence ends any other it had).
    workspace_id, _ = await find_conversation(gateway, principal, conversation_id)
    await gateway.upstream.set_viewing(workspace_id, common_pb2.Actor(**actor_fields(principal)),
                                       conversation_id if data.viewing else "")


# --- templates and the content library -------------------------------------------------------------------


@get("/api/templates", tags=["templates"], summary="Message templates of a number (or of every number)",
     responses=errors(404))
async def list_templates(
    gateway: GatewayDep, principal: PrincipalDep,
    number: Annotated[str | None, QueryParameter(description="A number's id; every number when omitted",
                                            max_length=64)] = None,
) -> m.TemplateList:
    if number is not None:
        workspace_id = await gateway.locator.number_workspace(principal, number)
        templates = await gateway.upstream.list_templates(workspace_id, number)
    else:
        lists = await asyncio.gather(*(gateway.upstream.list_templates(ws, "") for ws in principal.workspaces))
        templates = [t for items in lists for t in items]
    return m.TemplateList(items=[convert.template(t) for t in templates])


@get("/api/library", tags=["library"], summary="The content library (text snippets and media)",
     responses=errors(404))
async def list_library(
    gateway: GatewayDep, principal: PrincipalDep,
    workspace: Annotated[str | None, QueryParameter(description="Every workspace of the agent when omitted",
                                               max_length=200)] = None,
) -> m.LibraryList:
    lists = await asyncio.gather(*(gateway.upstream.list_library(ws) for ws in only_member(principal, workspace)))
    return m.LibraryList(items=[convert.library_item(i) for items in lists for i in items])


@post("/api/library", status_code=201, tags=["library"], summary="Add a library item (admins)",
      responses=errors(403, 404, 422))
async def add_library_item(gateway: GatewayDep, principal: PrincipalDep,
                           data: JSONBody[m.LibraryItemBody]) -> m.LibraryItemEnvelope:
    workspace_id = principal.require_admin(data.workspace_id)
    request = content_pb2.AddLibraryItemRequest(workspace_id=workspace_id, agent=conversation_actor(principal),
                                                title=data.title, type=convert.LIBRARY_TYPE_VALUE[data.type],
                                                caption=data.caption or "", filename=data.filename or "")
    if data.type == "text":
        if not (data.text or "").strip():
            raise InvalidRequest("a text snippet needs text", {"field": "text"})
        request.text = data.text or ""
    else:
        if not data.upload_id:
            raise InvalidRequest("a media item needs an upload_id (POST /api/uploads)", {"field": "upload_id"})
        info = await _checked_upload(gateway, workspace_id, data.upload_id, data.type)
        # Before the item exists: a library item never names a file that the purge of unsent uploads may take.
        await gateway.upstream.keep_media(workspace_id, data.upload_id)
        request.upload_id = data.upload_id
        request.filename = data.filename or info.filename
    return m.LibraryItemEnvelope(item=convert.library_item(await gateway.upstream.add_library_item(request)))


@delete("/api/library/{item_id:str}", status_code=204, tags=["library"], summary="Remove a library item (admins)",
        responses=errors(403, 404))
async def remove_library_item(gateway: GatewayDep, principal: PrincipalDep, item_id: FromPath[str]) -> None:
    admin_of = [ws for ws, role in sorted(principal.roles.items()) if role == "admin"]
    if not admin_of:
        raise Forbidden("only an admin can remove library items")
    actor = conversation_actor(principal)

    async def remove(workspace_id: str) -> bool:
        await gateway.upstream.remove_library_item(workspace_id, actor, item_id)
        return True

    await gateway.locator.find(f"library:{item_id}", principal, remove, candidates=admin_of)
