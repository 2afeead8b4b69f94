// The end of a form: its error line, a button that says when it is busy, and a dialog's footer.

import type { ButtonHTMLAttributes, ComponentChildren } from "preact";

/** The form's error, announced (role=alert); nothing while there is none. `children` follow the text. */
export function FormError({ error, children }: { error: string | null; children?: ComponentChildren }) {
  if (!error) return null;
  return (
    <p class="form-error" role="alert">
      {error}
      {children}
    </p>
  );
}

/** A button that is disabled and shows `busyLabel` while its action runs. */
export function BusyButton({
  busy,
  busyLabel,
  disabled,
  children,
  ...button
}: Omit<ButtonHTMLAttributes<HTMLButtonElement>, "disabled"> & {
  busy: boolean;
  busyLabel: string;
  disabled?: boolean;
}) {
  return (
    <button {...button} disabled={busy || disabled}>
      {busy ? busyLabel : children}
    </button>
  );
}

/** A dialog's footer: an optional hint, Cancel, then the dialog's own buttons (`children`). */
export function DialogActions({
  onCancel,
  cancelClass = "btn",
  hint,
  children,
}: {
  onCancel: () => void;
  cancelClass?: string;
  hint?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <div class="form-actions">
      {hint}
      <button type="button" class={cancelClass} onClick={onCancel}>
        Cancel
      </button>
      {children}
    </div>
  );
}
