// The acceptance page of an invitation (#/invite/<token>), reachable without a session. A new account is
// created with the invitee's own name and password; an existing one accepts while signed in as the invited
// email (the server refuses anyone else with 403). Every error of the API is shown on the page.

import { useCallback, useEffect, useState } from "preact/hooks";
import { ApiError, api, describeError, setToken } from "../api";
import { MIN_PASSWORD, newPasswordProblem } from "../format";
import type { InvitationPreview, Me, Role, WorkspaceRef } from "../types";
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

function Brand() {
  return (
    <div class="brand big-brand">
      <span class="logo" aria-hidden="true">
        <svg viewBox="0 0 32 32" width="36" height="36">
          <rect width="32" height="32" rx="8" fill="currentColor" />
          <path d="M8 10h16v10H14l-6 5z" fill="white" />
        </svg>
      </span>
    </div>
  );
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
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

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
          <Brand />
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
  const acceptSignedIn = async () => {
    setBusy(true);
    setError(null);
    try {
      const { workspace } = await api.acceptInvitation(token, {});
      await onEnter(workspace);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  if (me && !sameEmail(me.agent.email, preview.email)) {
    return (
      <main class="center-screen">
        <div class="login-card" role="region" aria-labelledby="invite-title">
          <Brand />
          <h1 id="invite-title">Sign out to accept</h1>
          <Summary preview={preview} />
          <p data-testid="invite-other-account">
            You are signed in as <strong>{me.agent.email}</strong>. This invitation is for{" "}
            <strong>{preview.email}</strong>: sign out first, then accept it.
          </p>
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
          <div class="form-actions">
            <a class="btn ghost" href="#/">
              Back to the inbox
            </a>
            <button
              type="button"
              class="btn primary"
              disabled={busy}
              onClick={async () => {
                setBusy(true);
                setError(null);
                try {
                  await onSignOut();
                } catch (err) {
                  setError(describeError(err));
                } finally {
                  setBusy(false);
                }
              }}
            >
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
          <Brand />
          <h1 id="invite-title">Join {preview.workspace.name}</h1>
          <Summary preview={preview} />
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
          <button type="button" class="btn primary wide" disabled={busy} onClick={acceptSignedIn}>
            {busy ? "Accepting…" : "Accept and open the inbox"}
          </button>
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
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [created, setCreated] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    if (!name.trim()) return setError("Enter your name.");
    const problem = newPasswordProblem(password, confirm);
    if (problem) return setError(problem);
    setBusy(true);
    try {
      let workspace: WorkspaceRef;
      try {
        workspace = (await api.acceptInvitation(token, { name: name.trim(), password })).workspace;
      } catch (err) {
        // 409: the email got an account meanwhile; the page then offers to sign in with it.
        if (err instanceof ApiError && err.status === 409) await onStale();
        throw err;
      }
      setCreated(true);
      const { token: session } = await api.login(preview.email, password);
      setToken(session);
      if (!(await onSignedIn(session))) throw new Error(UNREAD);
      await onEnter(workspace);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="center-screen">
      <form class="login-card" onSubmit={submit} aria-labelledby="invite-title" noValidate>
        <Brand />
        <h1 id="invite-title">Join {preview.workspace.name}</h1>
        <Summary preview={preview} />
        <p class="muted">Create your account: choose your name and a password of your own.</p>
        <label class="field">
          <span>Email</span>
          <input type="email" name="email" autoComplete="username" readOnly value={preview.email} />
        </label>
        <label class="field">
          <span>Your name</span>
          <input
            name="name"
            autoComplete="name"
            required
            autoFocus
            maxLength={200}
            value={name}
            disabled={created}
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            type="password"
            name="new-password"
            autoComplete="new-password"
            required
            minLength={MIN_PASSWORD}
            value={password}
            disabled={created}
            aria-describedby="password-hint"
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </label>
        <p id="password-hint" class="muted small-print">
          At least {MIN_PASSWORD} characters.
        </p>
        <label class="field">
          <span>Confirm the password</span>
          <input
            type="password"
            name="confirm-password"
            autoComplete="new-password"
            required
            value={confirm}
            disabled={created}
            onInput={(e) => setConfirm((e.target as HTMLInputElement).value)}
          />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
            {created && (
              <>
                {" "}
                Your account was created: <a href="#/">sign in</a> with it.
              </>
            )}
          </p>
        )}
        <button type="submit" class="btn primary wide" disabled={busy || created}>
          {busy ? "Creating your account…" : "Create my account and join"}
        </button>
      </form>
    </main>
  );
}
