"""Canned replies (docs/api.md, "Team workflow"): a workspace's saved answers, managed by its admins, listed
for the composer's `/` picker and rendered for one conversation."""

from __future__ import annotations

import asyncio
from typing import Annotated

from litestar import delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from inbox.conversations.v1 import content_pb2
from inbox_core.errors import Forbidden
from inbox_gateway import convert
from inbox_gateway import models as m
from inbox_gateway.accounts import Principal
from inbox_gateway.api.common import (
    GatewayDep,
    PrincipalDep,
    conversation_actor,
    conversation_workspace,
    errors,
    only_member,
)


def _admin_of(principal: Principal) -> list[str]:
    admin_of = [ws for ws, role in sorted(principal.roles.items()) if role == "admin"]
    if not admin_of:
        raise Forbidden("only an admin can change canned replies")
    return admin_of


@get("/api/replies", tags=["replies"], summary="Canned replies, by shortcut", responses=errors(404))
async def list_replies(
    gateway: GatewayDep, principal: PrincipalDep,
    workspace: Annotated[str | None, QueryParameter(description="Every workspace of the agent when omitted",
                                               max_length=200)] = None,
    q: Annotated[str, QueryParameter(description="A prefix of the shortcut or the title (case-insensitive)",
                                     max_length=100)] = "",
) -> m.CannedReplyList:
    lists = await asyncio.gather(*(gateway.upstream.list_replies(ws, q) for ws in only_member(principal, workspace)))
    return m.CannedReplyList(items=[convert.canned_reply(r) for replies in lists for r in replies])


@post("/api/replies", status_code=201, tags=["replies"], summary="Add a canned reply (admins)",
      responses=errors(403, 404, 409))
async def add_reply(gateway: GatewayDep, principal: PrincipalDep,
                    data: JSONBody[m.CannedReplyBody]) -> m.CannedReplyEnvelope:
    workspace_id = principal.require_admin(data.workspace_id)
    reply = await gateway.upstream.add_reply(content_pb2.AddCannedReplyRequest(
        workspace_id=workspace_id, agent=conversation_actor(principal), shortcut=data.shortcut, title=data.title,
        text=data.text))
    return m.CannedReplyEnvelope(reply=convert.canned_reply(reply))


@patch("/api/replies/{reply_id:str}", tags=["replies"], summary="Change a canned reply (admins)",
       responses=errors(403, 404, 409))
async def update_reply(gateway: GatewayDep, principal: PrincipalDep, reply_id: FromPath[str],
                       data: JSONBody[m.CannedReplyChanges]) -> m.CannedReplyEnvelope:
    actor = conversation_actor(principal)

    async def update(workspace_id: str) -> content_pb2.CannedReply:
        request = content_pb2.UpdateCannedReplyRequest(workspace_id=workspace_id, agent=actor,
                                                       reply_id=reply_id)
        if data.shortcut is not None:
            request.shortcut = data.shortcut
        if data.title is not None:
            request.title = data.title
        if data.text is not None:
            request.text = data.text
        return await gateway.upstream.update_reply(request)

    _, reply = await gateway.locator.find(f"reply:{reply_id}", principal, update, candidates=_admin_of(principal))
    return m.CannedReplyEnvelope(reply=convert.canned_reply(reply))


@delete("/api/replies/{reply_id:str}", status_code=204, tags=["replies"], summary="Remove a canned reply (admins)",
        responses=errors(403, 404))
async def remove_reply(gateway: GatewayDep, principal: PrincipalDep, reply_id: FromPath[str]) -> None:
    actor = conversation_actor(principal)

    async def remove(workspace_id: str) -> bool:
        await gateway.upstream.remove_reply(workspace_id, actor, reply_id)
        return True

    await gateway.locator.find(f"reply:{reply_id}", principal, remove, candidates=_admin_of(principal))


@get("/api/conversations/{conversation_id:str}/replies/{reply_id:str}", tags=["replies"],
     summary="A canned reply's text filled in for this conversation and the calling agent", responses=errors(404))
async def render_reply(gateway: GatewayDep, principal: PrincipalDep, conversation_id: FromPath[str],
                       reply_id: FromPath[str]) -> m.RenderedReply:
    workspace_id = await conversation_workspace(gateway, principal, conversation_id)
    text = await gateway.upstream.render_reply(content_pb2.RenderCannedReplyRequest(
        workspace_id=workspace_id, conversation_id=conversation_id, reply_id=reply_id,
        agent=conversation_actor(principal)))
    return m.RenderedReply(text=text)
