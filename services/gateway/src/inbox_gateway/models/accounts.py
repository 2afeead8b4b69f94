"""Signing in, the agent and its workspaces, the team, invitations and passwords."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from msgspec import Meta, Struct

from inbox_gateway.models.common import Id, Role

# --- auth and me -----------------------------------------------------------------------------------------


class LoginBody(Struct, forbid_unknown_fields=True):
    email: Annotated[str, Meta(min_length=3, max_length=320)]
    password: Annotated[str, Meta(min_length=1, max_length=1024)]


class AgentProfile(Struct):
    id: str
    name: str
    email: str
    # "admin" when the agent administers any of its workspaces (per-workspace roles are in /api/me).
    role: Role


class WorkspaceRef(Struct):
    id: str
    name: str
    role: Role
    currency: str


class LoginResponse(Struct):
    token: str
    agent: AgentProfile
    expires_at: datetime


class Me(Struct):
    agent: AgentProfile
    workspaces: list[WorkspaceRef]


# --- team and admin --------------------------------------------------------------------------------------


class TeamMember(Struct):
    id: str
    name: str
    role: Role
    online: bool


class TeamList(Struct):
    items: list[TeamMember]


Email = Annotated[str, Meta(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")]
Password = Annotated[str, Meta(min_length=10, max_length=1024)]


class InviteBody(Struct, forbid_unknown_fields=True):
    workspace_id: Id
    email: Email
    role: Role = "agent"


class InvitationOut(Struct):
    id: str
    email: str
    role: Role
    workspace_id: str
    expires_at: datetime
    created_at: datetime


class InvitationCreated(Struct):
    """The token is shown here once: only its hash is kept."""

    invitation: InvitationOut
    token: str


class InvitationList(Struct):
    items: list[InvitationOut]


class WorkspaceName(Struct):
    id: str
    name: str


AutoAssign = Literal["off", "round_robin"]


class WorkspaceSettings(Struct):
    """A workspace as its admins set it up. ``auto_assign``: ``round_robin`` gives a customer message in an
    open, unassigned conversation to the online agent with the fewest open assigned conversations."""

    id: str
    name: str
    auto_assign: AutoAssign


class WorkspaceSettingsEnvelope(Struct):
    workspace: WorkspaceSettings


class WorkspaceChanges(Struct, forbid_unknown_fields=True):
    """The settings to change; those left out stay."""

    auto_assign: AutoAssign | None = None


class InvitationPreview(Struct):
    workspace: WorkspaceName
    email: str
    role: Role
    account_exists: bool
    expires_at: datetime


class AcceptBody(Struct, forbid_unknown_fields=True):
    """For a new account, its name and password (chosen by the invitee); an existing account sends ``{}``
    while signed in as the invited email."""

    name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    password: Password | None = None


class Accepted(Struct):
    agent: AgentProfile
    workspace: WorkspaceRef


class PasswordBody(Struct, forbid_unknown_fields=True):
    current_password: Annotated[str, Meta(min_length=1, max_length=1024)]
    new_password: Password
