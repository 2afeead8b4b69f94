// "Change password" (POST /api/me/password): the server ends every other session of the agent, and keeps
// this one, so the dialog says so.

import { useState } from "preact/hooks";
import { ApiError, api, describeError } from "../api";
import { MIN_PASSWORD, newPasswordProblem } from "../format";
import { Modal } from "./bits";

export function ChangePassword({ onClose }: { onClose: () => void }) {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [confirm, setConfirm] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    setError(null);
    const problem = newPasswordProblem(next, confirm);
    if (problem) return setError(problem);
    setBusy(true);
    try {
      await api.changePassword(current, next);
      setDone(true);
    } catch (err) {
      setError(err instanceof ApiError && err.status === 403 ? "The current password is not right." : describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal title="Change password" onClose={onClose}>
      {done ? (
        <>
          <p role="status" data-testid="password-changed">
            Your password was changed. Your other sessions (other browsers and devices) were signed out; this one
            stays signed in.
          </p>
          <div class="form-actions">
            <button type="button" class="btn primary" onClick={onClose}>
              Close
            </button>
          </div>
        </>
      ) : (
        <form onSubmit={submit} noValidate>
          <label class="field">
            <span>Current password</span>
            <input
              type="password"
              autoComplete="current-password"
              required
              autoFocus
              value={current}
              onInput={(e) => setCurrent((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field">
            <span>New password</span>
            <input
              type="password"
              autoComplete="new-password"
              required
              minLength={MIN_PASSWORD}
              value={next}
              onInput={(e) => setNext((e.target as HTMLInputElement).value)}
            />
          </label>
          <label class="field">
            <span>Confirm the new password</span>
            <input
              type="password"
              autoComplete="new-password"
              required
              value={confirm}
              onInput={(e) => setConfirm((e.target as HTMLInputElement).value)}
            />
          </label>
          <p class="muted small-print">At least {MIN_PASSWORD} characters. Your other sessions will be signed out.</p>
          {error && (
            <p class="form-error" role="alert">
              {error}
            </p>
          )}
          <div class="form-actions">
            <button type="button" class="btn" onClick={onClose}>
              Cancel
            </button>
            <button type="submit" class="btn primary" disabled={busy || !current}>
              {busy ? "Changing…" : "Change password"}
            </button>
          </div>
        </form>
      )}
    </Modal>
  );
}
