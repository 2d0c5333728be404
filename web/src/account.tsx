// Passwords: accepting an invitation (or a password-reset link) at /invitation#<token>, and
// changing one's own password. The invitation's secret travels in the URL's fragment, which the
// browser never sends to a server, so it stays out of access logs and Referer headers.

import { useEffect, useState } from "preact/hooks";
import { ApiError, gql, renewSession, setToken, when } from "./api";
import { Card, Link } from "./ui";

const MIN_PASSWORD = 12;

interface Preview { email: string; kind: "INVITE" | "PASSWORD_RESET"; expiresAt: string }

function explain(error: unknown): string {
  const e = error as ApiError;
  switch (e?.code) {
    case "NOT_FOUND":
      return "This link cannot be used: it is unknown, already used, revoked or expired. Ask your admin for a new one.";
    case "RATE_LIMITED":
      return "Too many attempts; wait a minute and try again.";
    default:
      return e?.message ?? "Something went wrong.";
  }
}

/** The secret from `#<token>`; tolerant of a mail client that percent-encoded it. */
function secretFromHash(): string {
  const raw = location.hash.slice(1);
  try {
    return decodeURIComponent(raw).trim();
  } catch {
    return raw.trim();
  }
}

/** Two password fields that must match and be long enough; reports the password or a problem. */
function checkNew(password: string, repeat: string): string | null {
  if (password.length < MIN_PASSWORD) return `The password needs at least ${MIN_PASSWORD} characters.`;
  if (password !== repeat) return "The two passwords differ.";
  return null;
}

export function AcceptInvitation({ onSignedIn }: { onSignedIn: () => void }) {
  const [secret] = useState(secretFromHash);
  const [preview, setPreview] = useState<Preview | null>(null);
  const [problem, setProblem] = useState<string | null>(
    secret ? null : "This link is incomplete: open the whole link you were given, including everything after #.",
  );
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const dead = (e: unknown) => {
    setProblem(explain(e));
    // A dead link is no use in the address bar or the history.
    history.replaceState(null, "", "/invitation");
  };

  useEffect(() => {
    if (!secret) return;
    gql<{ invitation: Preview }>(`query($t: String!) { invitation(token: $t) { email kind expiresAt } }`, { t: secret }, { anonymous: true })
      .then((d) => setPreview(d.invitation))
      .catch(dead);
  }, [secret]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const bad = checkNew(password, repeat);
    setError(bad);
    if (bad) return;
    setBusy(true);
    try {
      const d = await gql<{ acceptInvitation: { token: string } }>(
        `mutation($i: AcceptInvitationInput!) { acceptInvitation(input: $i) { token } }`,
        { i: { token: secret, password } },
        { anonymous: true },
      );
      setToken(d.acceptInvitation.token);
      onSignedIn();
    } catch (err) {
      if ((err as ApiError).code === "NOT_FOUND") dead(err);
      else setError(explain(err));
    } finally {
      setBusy(false);
    }
  };

  const reset = preview?.kind === "PASSWORD_RESET";
  return (
    <form class="login" onSubmit={submit} data-testid="invitation">
      <h1>cardstream</h1>
      {problem ? (
        <>
          <p class="error" role="alert" data-testid="invitation-problem">{problem}</p>
          <p><Link href="/login">Go to sign-in</Link></p>
        </>
      ) : !preview ? (
        <p class="loading" role="status">Checking your link…</p>
      ) : (
        <>
          <p>
            {reset ? "Choose a new password for " : "You are invited to cardstream as "}
            <strong data-testid="invitation-email">{preview.email}</strong>.
          </p>
          <p class="hint">This link works once, until {when(preview.expiresAt)}.</p>
          <input type="email" name="username" autocomplete="username" value={preview.email} readOnly hidden />
          <label>
            New password
            <input name="password" type="password" autocomplete="new-password" required minLength={MIN_PASSWORD}
              value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <label>
            The same again
            <input name="repeat" type="password" autocomplete="new-password" required minLength={MIN_PASSWORD}
              value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
          </label>
          <p class="hint">At least {MIN_PASSWORD} characters. A long phrase is easier to remember than a short jumble.</p>
          {error && <p class="error" role="alert">{error}</p>}
          <button type="submit" disabled={busy}>{busy ? "Saving…" : "Set password and sign in"}</button>
        </>
      )}
    </form>
  );
}

export function ChangePassword({ email }: { email: string }) {
  const [current, setCurrent] = useState("");
  const [password, setPassword] = useState("");
  const [repeat, setRepeat] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    const bad = checkNew(password, repeat);
    setError(bad);
    setDone(false);
    if (bad) return;
    setBusy(true);
    try {
      // The server ends every session of this user, this tab's included, and answers with a
      // fresh token that keeps the tab signed in.
      await renewSession(async () => {
        const d = await gql<{ changePassword: { token: string } }>(
          `mutation($i: ChangePasswordInput!) { changePassword(input: $i) { token } }`,
          { i: { currentPassword: current, newPassword: password } },
        );
        return d.changePassword.token;
      });
      setCurrent("");
      setPassword("");
      setRepeat("");
      setDone(true);
    } catch (err) {
      const code = (err as ApiError).code;
      // A wrong current password may come back as any of these, depending on the server's wording.
      setError(code === "UNAUTHENTICATED" || code === "FORBIDDEN" ? "The current password is not right." : explain(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <Card title="Change password">
      <form class="policy" onSubmit={submit} data-testid="change-password">
        <input type="email" name="username" autocomplete="username" value={email} readOnly hidden />
        <label>
          Current password
          <input name="current" type="password" autocomplete="current-password" required
            value={current} onInput={(e) => setCurrent(e.currentTarget.value)} />
        </label>
        <label>
          New password (at least {MIN_PASSWORD} characters)
          <input name="password" type="password" autocomplete="new-password" required minLength={MIN_PASSWORD}
            value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <label>
          The same again
          <input name="repeat" type="password" autocomplete="new-password" required minLength={MIN_PASSWORD}
            value={repeat} onInput={(e) => setRepeat(e.currentTarget.value)} />
        </label>
        <p class="hint">Changing it signs you out everywhere else; this tab stays signed in.</p>
        {error && <p class="error" role="alert">{error}</p>}
        {done && <p class="ok" role="status" data-testid="password-changed">Password changed. Your other sessions have been signed out.</p>}
        <button type="submit" disabled={busy}>{busy ? "Saving…" : "Change password"}</button>
      </form>
    </Card>
  );
}
