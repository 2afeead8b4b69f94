// A new password typed twice: the fields, their state, and what is wrong with what was typed.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { MIN_PASSWORD, newPasswordProblem } from "../../format";
import { TextField } from "./Field";

export interface NewPassword {
  password: string;
  confirm: string;
  setPassword: (value: string) => void;
  setConfirm: (value: string) => void;
  /** Too short, or the two differ: the sentence to show; null when the password will do. */
  problem: () => string | null;
}

export function useNewPassword(): NewPassword {
  const [password, setPassword] = useState("");
  const [confirm, setConfirm] = useState("");
  return { password, confirm, setPassword, setConfirm, problem: () => newPasswordProblem(password, confirm) };
}

const HINT_ID = "password-hint";

/** The password and its confirmation; a `hint`, when given, stands between them and describes the first. */
export function PasswordFields({
  value,
  label,
  confirmLabel,
  names,
  disabled,
  hint,
}: {
  value: NewPassword;
  label: string;
  confirmLabel: string;
  /** The inputs' name attributes, for password managers. */
  names?: [password: string, confirm: string];
  disabled?: boolean;
  hint?: ComponentChildren;
}) {
  const both = { type: "password", autoComplete: "new-password", required: true, disabled };
  return (
    <>
      <TextField
        {...both}
        label={label}
        name={names?.[0]}
        minLength={MIN_PASSWORD}
        value={value.password}
        aria-describedby={hint ? HINT_ID : undefined}
        onValue={value.setPassword}
      />
      {hint && (
        <p id={HINT_ID} class="muted small-print">
          {hint}
        </p>
      )}
      <TextField {...both} label={confirmLabel} name={names?.[1]} value={value.confirm} onValue={value.setConfirm} />
    </>
  );
}
