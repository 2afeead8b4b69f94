"""Admin endpoints: connect a number (ingest's UpsertChannel) and add agents to a workspace."""

from __future__ import annotations

from litestar import post
from litestar.params import JSONBody

from inbox.ingest.v1 import ingest_pb2 as ipb
from inbox_core.errors import Forbidden, InvalidRequest
from inbox_gateway import convert
from inbox_gateway import models as m
from inbox_gateway.api.common import Caller, Gw, errors


@post("/api/admin/numbers", status_code=201, tags=["admin"], summary="Connect a WhatsApp number (admins)",
      responses=errors(403, 404, 409), description="The access token is stored by ingest and never returned.")
async def connect_number(gw: Gw, principal: Caller, data: JSONBody[m.ConnectNumberBody]) -> m.ConnectedNumberEnvelope:
    workspace_id = principal.require_admin(data.workspace_id)
    channel = await gw.upstream.upsert_channel(ipb.UpsertChannelRequest(
        channel=ipb.Channel(phone_number_id=data.phone_number_id, workspace_id=workspace_id, waba_id=data.waba_id,
                            display_phone_number=data.display_phone_number, name=data.name),
        access_token=data.access_token))
    gw.locator.forget_channels(workspace_id)
    return m.ConnectedNumberEnvelope(number=convert.connected_number(channel))


@post("/api/admin/agents", status_code=201, tags=["admin"], summary="Create an agent or add one (admins)",
      responses=errors(403, 404), description="A new email creates the agent (name and password required); "
      "an existing agent is added to the workspace with the role (its name and password are left alone).")
async def add_agent(gw: Gw, principal: Caller, data: JSONBody[m.CreateAgentBody]) -> m.AdminAgent:
    workspace_id = principal.require_admin(data.workspace_id)
    agent = await gw.accounts.find_agent(data.email)
    created = False
    if agent is None:
        if not data.name or not data.password:
            raise InvalidRequest("a new agent needs a name and a password", {"fields": ["name", "password"]})
        agent, created = await gw.accounts.create_agent(data.email, data.name.strip(),
                                                        await gw.auth.passwords.hash(data.password))
    if agent.id == principal.agent_id and data.role != "admin":
        # The last word on a workspace must stay with someone: an admin does not demote itself here.
        raise Forbidden("an admin cannot change its own role")
    await gw.accounts.set_membership(workspace_id, agent.id, data.role)
    return m.AdminAgent(id=agent.id, email=agent.email, name=agent.name, workspace_id=workspace_id,
                        role=data.role, created=created)
