"""Members and invitations (docs/api.md "Members and invitations"): handlers translate, ``members.Members``
decides."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response, delete, get, post
from litestar.params import FromPath, JSONBody, Parameter

from inbox_core.errors import InboxError
from inbox_gateway import models as m
from inbox_gateway.accounts import Invitation, Principal
from inbox_gateway.api.common import GatewayDep, PrincipalDep, errors
from inbox_gateway.api.session import profile
from inbox_gateway.gateway import Gateway

Token = Annotated[str, Parameter(min_length=16, max_length=200, description="The invitation's one-time token")]


def _invitation(invitation: Invitation) -> m.InvitationOut:
    return m.InvitationOut(id=invitation.id, email=invitation.email, role=invitation.role,  # type: ignore[arg-type]
                           workspace_id=invitation.workspace_id, expires_at=invitation.expires_at,
                           created_at=invitation.created_at)


@post("/api/admin/invitations", status_code=201, tags=["admin"], summary="Invite an email to a workspace (admins)",
      responses=errors(403, 404), description="The token is in this answer only, works once and expires "
      "(GATEWAY_INVITATION_TTL_S, 7 days). The answer is the same whether or not the email has an account.")
async def invite(gateway: GatewayDep, principal: PrincipalDep,
                 data: JSONBody[m.InviteBody]) -> Response[m.InvitationCreated]:
    invitation, token = await gateway.members.invite(principal, data.workspace_id, data.email, data.role)
    return Response(m.InvitationCreated(invitation=_invitation(invitation), token=token), status_code=201,
                    headers={"Cache-Control": "no-store"})


@get("/api/admin/invitations", tags=["admin"], summary="A workspace's open invitations (admins)",
     responses=errors(403, 404))
async def list_invitations(gateway: GatewayDep, principal: PrincipalDep,
                           workspace: Annotated[str, Parameter(min_length=1, max_length=200)]) -> m.InvitationList:
    invitations = await gateway.members.open_invitations(principal, workspace)
    return m.InvitationList(items=[_invitation(i) for i in invitations])


@delete("/api/admin/invitations/{invitation_id:str}", status_code=204, tags=["admin"],
        summary="Revoke an invitation (admins)", responses=errors(403, 404, 409))
async def revoke_invitation(gateway: GatewayDep, principal: PrincipalDep, invitation_id: FromPath[str]) -> None:
    await gateway.members.revoke(principal, invitation_id)


@delete("/api/admin/workspaces/{workspace_id:str}/members/{agent_id:str}", status_code=204, tags=["admin"],
        summary="Remove a member (admins)", responses=errors(403, 404),
        description="At once the agent's sessions lose the workspace, its open streams included. An admin "
        "cannot remove itself.")
async def remove_member(gateway: GatewayDep, principal: PrincipalDep, workspace_id: FromPath[str],
                        agent_id: FromPath[str]) -> None:
    await gateway.members.remove(principal, workspace_id, agent_id)
    await gateway.stream_upkeep()  # this replica's streams now; the others follow the memberships version


@post("/api/me/password", status_code=204, tags=["auth"], summary="Change one's password",
      responses=errors(403), description="403 when the current password is wrong; every other session of the "
      "caller ends.")
async def change_password(gateway: GatewayDep, principal: PrincipalDep, data: JSONBody[m.PasswordBody]) -> None:
    await gateway.auth.change_password(principal, data.current_password, data.new_password)
    await gateway.stream_upkeep()


# --- for whoever holds a token (no session needed) --------------------------------------------------------


@get("/api/invitations/{token:str}", security=[], tags=["auth"], summary="An invitation, for its acceptance page",
     responses=errors(404), description="404 for an unknown, used, revoked or expired token.")
async def preview_invitation(gateway: GatewayDep, token: Token) -> Response[m.InvitationPreview]:
    found = await gateway.members.preview(token)
    body = m.InvitationPreview(workspace=m.WorkspaceName(id=found.workspace.id, name=found.workspace.name),
                               email=found.invitation.email, role=found.invitation.role,  # type: ignore[arg-type]
                               account_exists=found.account_exists, expires_at=found.invitation.expires_at)
    return Response(body, headers={"Cache-Control": "no-store"})


async def _optional_caller(gateway: Gateway, request: Request[Any, Any, Any]) -> Principal | None:
    if gateway.auth.token_of(request) is None:
        return None
    try:
        return await gateway.auth.principal(request)
    except InboxError as exc:
        if exc.http_status == 401:
            return None
        raise


@post("/api/invitations/{token:str}/accept", status_code=200, security=[], tags=["auth"],
      summary="Accept an invitation", responses=errors(403, 404, 409),
      description="No account for the invited email: `name` and `password` create it with the invitee's own "
      "password (then sign in). An existing account: the caller must be signed in as that email, else 403.")
async def accept_invitation(gateway: GatewayDep, request: Request[Any, Any, Any], token: Token,
                            data: JSONBody[m.AcceptBody]) -> m.Accepted:
    caller = await _optional_caller(gateway, request)
    accepted = await gateway.members.accept(token, caller, data.name, data.password)
    roles = await gateway.accounts.roles_of(accepted.agent.id)
    return m.Accepted(agent=profile(accepted.agent.id, accepted.agent.name, accepted.agent.email, roles),
                      workspace=m.WorkspaceRef(id=accepted.workspace.id, name=accepted.workspace.name,
                                               role=accepted.role,  # type: ignore[arg-type]
                                               currency=accepted.workspace.currency))
