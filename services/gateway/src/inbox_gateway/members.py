"""Members of a workspace: invitations, their acceptance, removal. The use cases behind ``api/members.py``.

An account (an agent) can belong to several workspaces (agency staff work for several clients), so no
workspace's admin may set or learn an account's password, nor learn whether an email has an account: an
admin invites an email with a role, and the invitee accepts with the one-time token. A new account sets its
own password on acceptance; an existing one accepts while signed in as that email.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from inbox_core.errors import Conflict, Forbidden, InvalidRequest, NotFound
from inbox_core.events import utcnow
from inbox_gateway.accounts import Accounts, Agent, Invitation, Principal, Workspace, normalise_email
from inbox_gateway.auth import Auth

log = logging.getLogger("inbox.gateway.members")


@dataclass(frozen=True)
class InvitationPreview:
    """What the acceptance page shows to whoever holds the token."""

    invitation: Invitation
    workspace: Workspace
    account_exists: bool


@dataclass(frozen=True)
class Accepted:
    agent: Agent
    workspace: Workspace
    role: str


class Members:
    def __init__(self, accounts: Accounts, auth: Auth, invitation_ttl_s: int) -> None:
        self.accounts = accounts
        self.auth = auth
        self.ttl = timedelta(seconds=invitation_ttl_s)

    async def invite(self, admin: Principal, workspace_id: str, email: str, role: str) -> tuple[Invitation, str]:
        """A new invitation and its token (shown once). The answer is the same whether or not the email has
        an account, or is a member already (accepting then only sets the role)."""
        admin.require_admin(workspace_id)
        if normalise_email(email) == normalise_email(admin.email):
            raise InvalidRequest("an admin cannot invite itself", {"field": "email"})
        return await self.accounts.create_invitation(workspace_id, email, role, admin.agent_id, self.ttl)

    async def open_invitations(self, admin: Principal, workspace_id: str) -> list[Invitation]:
        admin.require_admin(workspace_id)
        return await self.accounts.open_invitations(workspace_id)

    async def revoke(self, admin: Principal, invitation_id: str) -> None:
        invitation = await self.accounts.get_invitation(invitation_id)
        if invitation is None or invitation.workspace_id not in admin.roles:
            raise NotFound("no such invitation", {"invitation_id": invitation_id})
        admin.require_admin(invitation.workspace_id)
        if not await self.accounts.revoke_invitation(invitation_id):
            raise Conflict("the invitation was accepted or revoked already", {"invitation_id": invitation_id})

    async def _usable(self, token: str) -> Invitation:
        invitation = await self.accounts.invitation_by_token(token)
        if invitation is None or not invitation.usable(utcnow()):
            # Unknown, used, revoked and expired answer alike: a token tells nothing about the others.
            raise NotFound("no such invitation, or it was used or has expired")
        return invitation

    async def preview(self, token: str) -> InvitationPreview:
        invitation = await self._usable(token)
        workspace = await self.accounts.get_workspace(invitation.workspace_id)
        exists = await self.accounts.find_agent(invitation.email) is not None
        return InvitationPreview(invitation, workspace, exists)

    async def accept(self, token: str, caller: Principal | None, name: str | None,
                     password: str | None) -> Accepted:
        """Joins the workspace. With no account for the email, ``name`` and ``password`` create it (the
        invitee's own password). With an account, the caller must be signed in as that email (403 otherwise):
        holding a token never gives access to someone else's account."""
        invitation = await self._usable(token)
        existing = await self.accounts.find_agent(invitation.email)
        if existing is not None:
            if caller is None or caller.agent_id != existing.id:
                raise Forbidden("sign in as the invited email to accept this invitation",
                                {"email": invitation.email})
            agent = existing
            if not await self.accounts.claim_invitation(invitation.id, agent.id):
                raise NotFound("no such invitation, or it was used or has expired")
        else:
            if not name or not password:
                raise InvalidRequest("a new account needs a name and a password", {"fields": ["name", "password"]})
            password_hash = await self.auth.passwords.hash(password)
            claimant = f"new:{invitation.email}"
            if not await self.accounts.claim_invitation(invitation.id, claimant):
                raise NotFound("no such invitation, or it was used or has expired")
            try:
                agent = await self.accounts.insert_agent(invitation.email, name.strip(), password_hash)
            except DuplicateKeyError:
                # The email got an account in between: that account accepts by signing in.
                await self.accounts.release_invitation(invitation.id, claimant)
                raise Conflict("an account with this email exists now: sign in to accept") from None
        await self.accounts.set_membership(invitation.workspace_id, agent.id, invitation.role)
        await self.accounts.bump_memberships_version()
        workspace = await self.accounts.get_workspace(invitation.workspace_id)
        log.info("invitation %s accepted into workspace %s", invitation.id, workspace.id)
        return Accepted(agent, workspace, invitation.role)

    async def remove(self, admin: Principal, workspace_id: str, agent_id: str) -> None:
        """Ends the agent's membership at once: its requests lose the workspace now, and every replica's
        open streams of it within a second (they follow the memberships version)."""
        admin.require_admin(workspace_id)
        if agent_id == admin.agent_id:
            raise Forbidden("an admin cannot remove itself")
        if not await self.accounts.remove_membership(workspace_id, agent_id):
            raise NotFound("no such member", {"agent_id": agent_id})
