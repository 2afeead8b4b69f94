// The "Team" dialog of an admin: the members of a workspace (remove, after a confirmation), its open
// invitations (revoke) and the invite form, whose answer holds the acceptance link: the server keeps only a
// hash of its token, so the link is shown this once.

import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import { api, describeError } from "../api";
import { loadTeam, notify, teams, useObservable } from "../store";
import type { AutoAssign, Invitation, InvitationCreated, Me, Role, TeamMember } from "../types";
import { ROLE_LABEL } from "./AcceptInvitation";
import { Modal } from "./bits";
import { BusyButton, DialogActions, FormError } from "./form/Actions";
import { useAdminWorkspace, WorkspaceSelect } from "./form/AdminWorkspace";
import { Field, TextField, inputValue } from "./form/Field";
import { useSubmit } from "./form/useSubmit";

/** The acceptance page of a token, on this very UI (the page keeps its routes in the hash). */
export const invitationLink = (token: string): string =>
  `${window.location.origin}${window.location.pathname}#/invite/${encodeURIComponent(token)}`;

const day = (iso: string): string => {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
};

export function TeamDialog({ me, onClose }: { me: Me; onClose: () => void }) {
  const { adminOf, workspace, workspaceId, setWorkspaceId } = useAdminWorkspace(me);
  const members = useObservable(teams)[workspaceId];
  const [invitations, setInvitations] = useState<Invitation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [removing, setRemoving] = useState<TeamMember | null>(null);

  const loadInvitations = useCallback(async () => {
    setError(null);
    try {
      setInvitations((await api.invitations(workspaceId)).items);
    } catch (err) {
      setError(`Could not load the invitations: ${describeError(err)}`);
    }
  }, [workspaceId]);

  useEffect(() => {
    if (!workspaceId) return;
    setInvitations(null);
    loadTeam(workspaceId, true); // fresh: someone may have joined since the list was loaded
    loadInvitations();
  }, [workspaceId, loadInvitations]);

  const revoke = async (invitation: Invitation) => {
    setError(null);
    try {
      await api.revokeInvitation(invitation.id);
      notify(`The invitation of ${invitation.email} was revoked.`);
    } catch (err) {
      setError(`Could not revoke the invitation of ${invitation.email}: ${describeError(err)}`);
    }
    await loadInvitations();
  };

  if (!workspace) return null;

  return (
    <Modal title="Team" onClose={onClose} wide>
      <div class="team" data-testid="team">
        <WorkspaceSelect adminOf={adminOf} workspaceId={workspaceId} onChange={setWorkspaceId} />
        <FormError error={error} />
        <section aria-labelledby="team-members">
          <h3 id="team-members">Members of {workspace.name}</h3>
          {!members ? (
            <p class="muted">Loading…</p>
          ) : (
            <ul class="team-list" aria-label="Members">
              {members.map((m) => (
                <li key={m.id} data-testid="member" data-agent-id={m.id}>
                  <span class={`presence-dot ${m.online ? "on" : ""}`} aria-hidden="true" />
                  <span class="team-name">
                    {m.name}
                    {m.id === me.agent.id && <span class="muted"> (you)</span>}
                  </span>
                  <span class="role-tag">{ROLE_LABEL[m.role] ?? m.role}</span>
                  <span class="muted team-online" data-testid="member-online">
                    {m.online ? "Online" : "Offline"}
                  </span>
                  {m.id !== me.agent.id && (
                    <button type="button" class="btn small" aria-label={`Remove ${m.name}`} onClick={() => setRemoving(m)}>
                      Remove
                    </button>
                  )}
                </li>
              ))}
            </ul>
          )}
        </section>
        <section aria-labelledby="team-invitations">
          <h3 id="team-invitations">Open invitations</h3>
          {!invitations ? (
            <p class="muted">Loading…</p>
          ) : invitations.length === 0 ? (
            <p class="muted" data-testid="no-invitations">
              No open invitations.
            </p>
          ) : (
            <ul class="team-list" aria-label="Open invitations">
              {invitations.map((i) => (
                <li key={i.id} data-testid="invitation-row">
                  <span class="team-name">{i.email}</span>
                  <span class="role-tag">{ROLE_LABEL[i.role] ?? i.role}</span>
                  <span class="muted">expires {day(i.expires_at)}</span>
                  <button type="button" class="btn small" aria-label={`Revoke the invitation of ${i.email}`} onClick={() => revoke(i)}>
                    Revoke
                  </button>
                </li>
              ))}
            </ul>
          )}
        </section>
        <AutoAssignSetting workspaceId={workspace.id} />
        <InviteForm workspaceId={workspace.id} workspaceName={workspace.name} onInvited={loadInvitations} />
      </div>
      {removing && (
        <ConfirmRemove
          member={removing}
          workspaceId={workspace.id}
          workspaceName={workspace.name}
          onClose={() => setRemoving(null)}
        />
      )}
    </Modal>
  );
}

/** Auto-assignment: off, or round robin among the online members with the fewest open conversations. */
function AutoAssignSetting({ workspaceId }: { workspaceId: string }) {
  const [mode, setMode] = useState<AutoAssign | null>(null);
  const { busy, error, run } = useSubmit();

  useEffect(() => {
    setMode(null);
    run(async () => setMode((await api.workspaceSettings(workspaceId)).workspace.auto_assign));
  }, [workspaceId]);

  // The box shows the choice at once; a refusal puts it back, with the reason.
  const change = (on: boolean) => {
    const before = mode;
    setMode(on ? "round_robin" : "off");
    return run(async () => {
      try {
        const answer = await api.changeWorkspace(workspaceId, { auto_assign: on ? "round_robin" : "off" });
        setMode(answer.workspace.auto_assign);
        notify(on ? "New conversations are now assigned automatically." : "Auto-assignment is off.");
      } catch (err) {
        setMode(before);
        throw err;
      }
    });
  };

  return (
    <section aria-labelledby="team-routing">
      <h3 id="team-routing">Assignment</h3>
      <label class="check-row">
        <input
          type="checkbox"
          checked={mode === "round_robin"}
          disabled={mode === null || busy}
          onChange={(e) => change((e.target as HTMLInputElement).checked)}
        />
        <span>Assign new customer messages automatically</span>
      </label>
      <p class="muted" data-testid="auto-assign-help">
        A customer message in an open conversation that nobody has goes to the online member with the fewest open
        conversations (among equals, the one who got one longest ago).
      </p>
      <FormError error={error} />
    </section>
  );
}

function ConfirmRemove({
  member,
  workspaceId,
  workspaceName,
  onClose,
}: {
  member: TeamMember;
  workspaceId: string;
  workspaceName: string;
  onClose: () => void;
}) {
  const { busy, error, run } = useSubmit();
  const remove = () =>
    run(async () => {
      await api.removeMember(workspaceId, member.id);
      notify(`${member.name} was removed from ${workspaceName}.`);
      await loadTeam(workspaceId, true);
      onClose();
    });
  return (
    <Modal title={`Remove ${member.name}?`} onClose={onClose}>
      <p>
        {member.name} loses access to {workspaceName} at once, on every device. An admin can invite them again later.
      </p>
      <FormError error={error} />
      <DialogActions onCancel={onClose}>
        <BusyButton type="button" class="btn primary danger" busy={busy} busyLabel="Removing…" onClick={remove}>
          {`Remove ${member.name}`}
        </BusyButton>
      </DialogActions>
    </Modal>
  );
}

function InviteForm({
  workspaceId,
  workspaceName,
  onInvited,
}: {
  workspaceId: string;
  workspaceName: string;
  onInvited: () => Promise<void>;
}) {
  const [email, setEmail] = useState("");
  const [role, setRole] = useState<Role>("agent");
  const { busy, error, run } = useSubmit();
  const [created, setCreated] = useState<(InvitationCreated & { workspaceName: string }) | null>(null);
  const [copied, setCopied] = useState<string | null>(null);
  const linkRef = useRef<HTMLInputElement>(null);

  const submit = (event: Event) => {
    event.preventDefault();
    return run(async () => {
      const answer = await api.invite(workspaceId, email.trim(), role);
      setCreated({ ...answer, workspaceName });
      setCopied(null);
      setEmail("");
      await onInvited();
    });
  };

  const link = created ? invitationLink(created.token) : "";
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link);
      setCopied("Copied");
    } catch {
      // No clipboard access (an insecure origin, or refused): select the link for the agent to copy.
      linkRef.current?.select();
      setCopied(document.execCommand?.("copy") ? "Copied" : "Select the link and copy it (Ctrl+C)");
    }
  };

  return (
    <section aria-labelledby="team-invite">
      <h3 id="team-invite">Invite someone to {workspaceName}</h3>
      <form class="invite-form" onSubmit={submit}>
        <TextField label="Email to invite" type="email" required maxLength={320} value={email} onValue={setEmail} />
        <Field label="Role">
          <select value={role} onChange={(e) => setRole(inputValue(e) as Role)}>
            <option value="agent">Agent</option>
            <option value="admin">Admin</option>
          </select>
        </Field>
        <BusyButton type="submit" class="btn primary" busy={busy} busyLabel="Inviting…">
          Invite
        </BusyButton>
      </form>
      <FormError error={error} />
      {created && (
        <div class="invite-link" role="region" aria-label="Invitation link" data-testid="invite-link">
          <p>
            Invitation for <strong>{created.invitation.email}</strong> ({ROLE_LABEL[created.invitation.role]} of{" "}
            {created.workspaceName}):
          </p>
          <div class="copy-row">
            <input
              ref={linkRef}
              readOnly
              aria-label="Acceptance link"
              value={link}
              onFocus={(e) => (e.target as HTMLInputElement).select()}
            />
            <button type="button" class="btn" onClick={copy}>
              Copy
            </button>
          </div>
          {copied && (
            <p class="muted" role="status">
              {copied}
            </p>
          )}
          <p class="invite-note" data-testid="invite-link-note">
            This link is shown only now: copy it and send it to {created.invitation.email}. It works once and expires{" "}
            {day(created.invitation.expires_at)}.
          </p>
        </div>
      )}
    </section>
  );
}
