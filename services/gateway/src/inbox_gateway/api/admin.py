"""Admin endpoints: connect a number (ingest's UpsertChannel). Members and invitations: api/members.py."""

from __future__ import annotations

from litestar import post
from litestar.params import JSONBody

from inbox.ingest.v1 import ingest_pb2
from inbox_gateway import convert
from inbox_gateway import models as m
from inbox_gateway.api.common import GatewayDep, PrincipalDep, errors


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
