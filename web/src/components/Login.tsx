// The login screen (POST /api/auth/login). The answer also sets the session cookie. The acceptance page of an
// invitation reuses it with the invited email fixed, its own title and the invitation above the fields.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { ApiError, api, errorMessage } from "../api";
import { BigBrand } from "./bits";
import { BusyButton, FormError } from "./form/Actions";
import { TextField } from "./form/Field";
import { useSubmit } from "./form/useSubmit";

const describeLoginError = (err: unknown): string =>
  err instanceof ApiError && err.status === 401 ? "The email or the password is not right." : errorMessage(err);

export function Login({
  onLoggedIn,
  fixedEmail,
  title = "Sign in to the inbox",
  children,
}: {
  onLoggedIn: (token: string) => Promise<void>;
  fixedEmail?: string;
  title?: string;
  children?: ComponentChildren;
}) {
  const [email, setEmail] = useState(fixedEmail ?? "");
  const [password, setPassword] = useState("");
  const { busy, error, run } = useSubmit(describeLoginError);

  const submit = (event: Event) => {
    event.preventDefault();
    return run(async () => {
      const { token } = await api.login(email.trim(), password);
      await onLoggedIn(token);
    });
  };

  return (
    <main class="center-screen">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <BigBrand />
        <h1 id="login-title">{title}</h1>
        {children}
        <TextField
          label="Email"
          type="email"
          name="email"
          autoComplete="username"
          required
          autoFocus={!fixedEmail}
          readOnly={!!fixedEmail}
          value={email}
          onValue={setEmail}
        />
        <TextField
          label="Password"
          type="password"
          name="password"
          autoComplete="current-password"
          required
          autoFocus={!!fixedEmail}
          value={password}
          onValue={setPassword}
        />
        <FormError error={error} />
        <BusyButton type="submit" class="btn primary wide" busy={busy} busyLabel="Signing in…">
          Sign in
        </BusyButton>
      </form>
    </main>
  );
}
