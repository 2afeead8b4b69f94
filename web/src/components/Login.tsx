// The login screen (POST /api/auth/login). The answer also sets the session cookie. The acceptance page of an
// invitation reuses it with the invited email fixed, its own title and the invitation above the fields.

import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { ApiError, api } from "../api";

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
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { token } = await api.login(email.trim(), password);
      await onLoggedIn(token);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401
          ? "The email or the password is not right."
          : err instanceof Error
            ? err.message
            : String(err),
      );
    } finally {
      setBusy(false);
    }
  };

  return (
    <main class="center-screen">
      <form class="login-card" onSubmit={submit} aria-labelledby="login-title">
        <div class="brand big-brand">
          <span class="logo" aria-hidden="true">
            <svg viewBox="0 0 32 32" width="36" height="36">
              <rect width="32" height="32" rx="8" fill="currentColor" />
              <path d="M8 10h16v10H14l-6 5z" fill="white" />
            </svg>
          </span>
        </div>
        <h1 id="login-title">{title}</h1>
        {children}
        <label class="field">
          <span>Email</span>
          <input
            type="email"
            name="email"
            autoComplete="username"
            required
            autoFocus={!fixedEmail}
            readOnly={!!fixedEmail}
            value={email}
            onInput={(e) => setEmail((e.target as HTMLInputElement).value)}
          />
        </label>
        <label class="field">
          <span>Password</span>
          <input
            type="password"
            name="password"
            autoComplete="current-password"
            required
            autoFocus={!!fixedEmail}
            value={password}
            onInput={(e) => setPassword((e.target as HTMLInputElement).value)}
          />
        </label>
        {error && (
          <p class="form-error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" class="btn primary wide" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}
