"""Admin endpoints: connect a number (ingest's UpsertChannel), the workspace's settings (its routing is the
conversations service's GetRouting/SetRouting). Members and invitations: api/members.py."""

from __future__ import annotations

from litestar import get, patch, post
from litestar.params import FromPath, JSONBody

from inbox.conversations.v1 import conversations_pb2
from inbox.ingest.v1 import ingest_pb2
from inbox_gateway import convert
from inbox_gateway import models as m
from inbox_gateway.api.common import GatewayDep, PrincipalDep, conversation_actor, errors
from inbox_gateway.gateway import Gateway

AUTO_ASSIGN = {"off": conversations_pb2.AUTO_ASSIGN_OFF, "round_robin": conversations_pb2.AUTO_ASSIGN_ROUND_ROBIN}
AUTO_ASSIGN_NAMES = {v: k for k, v in AUTO_ASSIGN.items()}


@post("/api/admin/numbers", status_code=201, tags=["admin"], summary="Connect a WhatsApp number (admins)",
      responses=errors(403, 404, 409), description="The access token is stored by ingest and never returned.")
async def connect_number(gateway: GatewayDep, principal: PrincipalDep,
                         data: JSONBody[m.ConnectNumberBody]) -> m.ConnectedNumberEnvelope:
    workspace_id = principal.require_admin(data.workspace_id)
    channel = await gateway.upstream.upsert_channel(ingest_pb2.UpsertChannelRequest(
        channel=ingest_pb2.Channel(phone_number_id=data.phone_number_id, workspace_id=workspace_id,
                                   waba_id=data.waba_id, display_phone_number=data.display_phone_number,
                                   name=data.name),
        access_token=data.access_token))
    gateway.locator.forget_channels(workspace_id)
    return m.ConnectedNumberEnvelope(number=convert.connected_number(channel))


async def _settings(gateway: Gateway, workspace_id: str,
                    routing: conversations_pb2.Routing | None = None) -> m.WorkspaceSettingsEnvelope:
    workspace = await gateway.accounts.get_workspace(workspace_id)
    routing = routing or await gateway.upstream.get_routing(workspace_id)
    return m.WorkspaceSettingsEnvelope(workspace=m.WorkspaceSettings(
        id=workspace.id, name=workspace.name, auto_assign=AUTO_ASSIGN_NAMES.get(  # type: ignore[arg-type]
            routing.auto_assign, "off")))


@get("/api/admin/workspaces/{workspace_id:str}", tags=["admin"], summary="A workspace's settings (admins)",
     responses=errors(403, 404))
async def workspace_settings(gateway: GatewayDep, principal: PrincipalDep,
                             workspace_id: FromPath[str]) -> m.WorkspaceSettingsEnvelope:
    return await _settings(gateway, principal.require_admin(workspace_id))


@patch("/api/admin/workspaces/{workspace_id:str}", tags=["admin"], summary="Change a workspace's settings (admins)",
       responses=errors(400, 403, 404), description="`auto_assign`: `off` (the default) or `round_robin`: a "
       "customer message in an open, unassigned conversation assigns it to the online agent with the fewest open "
       "assigned conversations (ties: the one assigned longest ago); its `assigned` activity has no actor.")
async def change_workspace(gateway: GatewayDep, principal: PrincipalDep, workspace_id: FromPath[str],
                           data: JSONBody[m.WorkspaceChanges]) -> m.WorkspaceSettingsEnvelope:
    workspace_id = principal.require_admin(workspace_id)
    routing = None
    if data.auto_assign is not None:
        routing = await gateway.upstream.set_routing(conversations_pb2.SetRoutingRequest(
            workspace_id=workspace_id, agent=conversation_actor(principal), auto_assign=AUTO_ASSIGN[data.auto_assign]))
    return await _settings(gateway, workspace_id, routing)
