// "Change password" (POST /api/me/password): the server ends every other session of the agent, and keeps
// this one, so the dialog says so.

import { useState } from "preact/hooks";
import { ApiError, api, describeError } from "../api";
import { MIN_PASSWORD } from "../format";
import { Modal } from "./bits";
import { BusyButton, DialogActions, FormError } from "./form/Actions";
import { TextField } from "./form/Field";
import { PasswordFields, useNewPassword } from "./form/PasswordFields";
import { useSubmit } from "./form/useSubmit";

const describeChangeError = (err: unknown): string =>
  err instanceof ApiError && err.status === 403 ? "The current password is not right." : describeError(err);

export function ChangePassword({ onClose }: { onClose: () => void }) {
  const [current, setCurrent] = useState("");
  const next = useNewPassword();
  const { busy, error, setError, run } = useSubmit(describeChangeError);
  const [done, setDone] = useState(false);

  const submit = async (event: Event) => {
    event.preventDefault();
    const problem = next.problem();
    if (problem) return setError(problem);
    await run(async () => {
      await api.changePassword(current, next.password);
      setDone(true);
    });
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
          <TextField
            label="Current password"
            type="password"
            autoComplete="current-password"
            required
            autoFocus
            value={current}
            onValue={setCurrent}
          />
          <PasswordFields value={next} label="New password" confirmLabel="Confirm the new password" />
          <p class="muted small-print">At least {MIN_PASSWORD} characters. Your other sessions will be signed out.</p>
          <FormError error={error} />
          <DialogActions onCancel={onClose}>
            <BusyButton type="submit" class="btn primary" busy={busy} busyLabel="Changing…" disabled={!current}>
              Change password
            </BusyButton>
          </DialogActions>
        </form>
      )}
    </Modal>
  );
}
