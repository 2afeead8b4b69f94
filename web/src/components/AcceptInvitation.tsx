// The acceptance page of an invitation (#/invite/<token>), reachable without a session. A new account is
// created with the invitee's own name and password; an existing one accepts while signed in as the invited
// email (the server refuses anyone else with 403). Every error of the API is shown on the page.

import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, api, describeError, setToken } from "../api";
import { MIN_PASSWORD } from "../format";
import type { InvitationPreview, Me, Role, WorkspaceRef } from "../types";
import { BigBrand } from "./bits";
import { BusyButton, FormError } from "./form/Actions";
import { TextField } from "./form/Field";
import { PasswordFields, useNewPassword } from "./form/PasswordFields";
import { useSubmit } from "./form/useSubmit";
import { Login } from "./Login";

export const ROLE_LABEL: Record<Role, string> = { admin: "Admin", agent: "Agent" };

const UNREAD = "You are signed in, but your account could not be read. Reload the page to try again.";

const sameEmail = (a: string, b: string) => a.trim().toLowerCase() === b.trim().toLowerCase();

interface Props {
  token: string;
  me: Me | null;
  /** A new session: re-reads /api/me. */
  onSignedIn: (token: string) => Promise<Me | null>;
  onSignOut: () => Promise<void>;
  /** Accepted: leave this page for the inbox. */
  onEnter: (workspace: WorkspaceRef) => Promise<void>;
}

function Summary({ preview }: { preview: InvitationPreview }) {
  return (
    <dl class="invite-summary" data-testid="invitation">
      <dt>Workspace</dt>
      <dd data-testid="invite-workspace">{preview.workspace.name}</dd>
      <dt>Invited email</dt>
      <dd data-testid="invite-email">{preview.email}</dd>
      <dt>Role</dt>
      <dd data-testid="invite-role">{ROLE_LABEL[preview.role] ?? preview.role}</dd>
    </dl>
  );
}

export function AcceptInvitation({ token, me, onSignedIn, onSignOut, onEnter }: Props) {
  const [preview, setPreview] = useState<InvitationPreview | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const { busy, error, setError, run } = useSubmit();

  const load = useCallback(async () => {
    setLoadError(null);
    try {
      setPreview(await api.invitation(token));
    } catch (err) {
      setLoadError(err);
    }
  }, [token]);
  useEffect(() => {
    load();
  }, [load]);

  if (loadError) {
    const gone = loadError instanceof ApiError && (loadError.status === 404 || loadError.status === 400);
    return (
      <main class="center-screen">
        <div class="login-card" role="region" aria-labelledby="invite-title">
          <BigBrand />
          <h1 id="invite-title">{gone ? "This invitation cannot be used" : "The invitation could not be read"}</h1>
          <p class="form-error" role="alert" data-testid="invite-error">
            {gone
              ? "The link is unknown, was used already, was revoked or has expired. Ask an admin of the workspace for a new invitation."
              : describeError(loadError)}
          </p>
          <div class="form-actions">
            <a class="btn ghost" href="#/">
              Go to the inbox
            </a>
            {!gone && (
              <button type="button" class="btn primary" onClick={load}>
                Try again
              </button>
            )}
          </div>
        </div>
      </main>
    );
  }
  if (!preview) return <main class="center-screen muted">Loading the invitation…</main>;

  // An existing account: accept with {} while signed in as it.
  const acceptSignedIn = () =>
    run(async () => {
      const { workspace } = await api.acceptInvitation(token, {});
      await onEnter(workspace);
    });

  if (me && !sameEmail(me.agent.email, preview.email)) {
    return (
      <main class="center-screen">
        <div class="login-card" role="region" aria-labelledby="invite-title">
          <BigBrand />
          <h1 id="invite-title">Sign out to accept</h1>
          <Summary preview={preview} />
          <p data-testid="invite-other-account">
            You are signed in as <strong>{me.agent.email}</strong>. This invitation is for{" "}
            <strong>{preview.email}</strong>: sign out first, then accept it.
          </p>
          <FormError error={error} />
          <div class="form-actions">
            <a class="btn ghost" href="#/">
              Back to the inbox
            </a>
            <button type="button" class="btn primary" disabled={busy} onClick={() => run(onSignOut)}>
              Sign out
            </button>
          </div>
        </div>
      </main>
    );
  }

  if (me) {
    return (
      <main class="center-screen">
        <div class="login-card" role="region" aria-labelledby="invite-title">
          <BigBrand />
          <h1 id="invite-title">Join {preview.workspace.name}</h1>
          <Summary preview={preview} />
          <FormError error={error} />
          <BusyButton type="button" class="btn primary wide" busy={busy} busyLabel="Accepting…" onClick={acceptSignedIn}>
            Accept and open the inbox
          </BusyButton>
        </div>
      </main>
    );
  }

  if (preview.account_exists) {
    return (
      <>
        <Login
          fixedEmail={preview.email}
          title={`Sign in as ${preview.email} to accept`}
          onLoggedIn={async (session) => {
            if (!(await onSignedIn(session))) throw new Error(UNREAD);
            // Signed in: the accept runs now; should it fail, the page (signed in) shows why and offers it again.
            try {
              const { workspace } = await api.acceptInvitation(token, {});
              await onEnter(workspace);
            } catch (err) {
              setError(describeError(err));
            }
          }}
        >
          <Summary preview={preview} />
        </Login>
      </>
    );
  }

  return <NewAccount token={token} preview={preview} onSignedIn={onSignedIn} onEnter={onEnter} onStale={load} />;
}

function NewAccount({
  token,
  preview,
  onSignedIn,
  onEnter,
  onStale,
}: {
  token: string;
  preview: InvitationPreview;
  onSignedIn: Props["onSignedIn"];
  onEnter: Props["onEnter"];
  onStale: () => Promise<void>;
}) {
  const [name, setName] = useState("");
  const password = useNewPassword();
  const { busy, error, setError, run } = useSubmit();
  const [created, setCreated] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const problem = name.trim() ? password.problem() : "Enter your name.";
    if (problem) return setError(problem);
    await run(async () => {
      let workspace: WorkspaceRef;
      try {
        workspace = (await api.acceptInvitation(token, { name: name.trim(), password: password.password })).workspace;
      } catch (err) {
        // 409: the email got an account meanwhile; the page then offers to sign in with it.
        if (err instanceof ApiError && err.status === 409) await onStale();
        throw err;
      }
      setCreated(true);
      const { token: session } = await api.login(preview.email, password.password);
      setToken(session);
      if (!(await onSignedIn(session))) throw new Error(UNREAD);
      await onEnter(workspace);
    });
  };

  return (
    <main class="center-screen">
      <form class="login-card" onSubmit={submit} aria-labelledby="invite-title" noValidate>
        <BigBrand />
        <h1 id="invite-title">Join {preview.workspace.name}</h1>
        <Summary preview={preview} />
        <p class="muted">Create your account: choose your name and a password of your own.</p>
        <TextField label="Email" type="email" name="email" autoComplete="username" readOnly value={preview.email} />
        <TextField
          label="Your name"
          name="name"
          autoComplete="name"
          required
          autoFocus
          maxLength={200}
          value={name}
          disabled={created}
          onValue={setName}
        />
        <PasswordFields
          value={password}
          label="Password"
          confirmLabel="Confirm the password"
          names={["new-password", "confirm-password"]}
          disabled={created}
          hint={<>At least {MIN_PASSWORD} characters.</>}
        />
        <FormError error={error}>
          {created && (
            <>
              {" "}
              Your account was created: <a href="#/">sign in</a> with it.
            </>
          )}
        </FormError>
        <BusyButton type="submit" class="btn primary wide" busy={busy} busyLabel="Creating your account…" disabled={created}>
          Create my account and join
        </BusyButton>
      </form>
    </main>
  );
}
