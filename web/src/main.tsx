// The app shell: routing (history API; the server falls back to index.html), sign-in, the
// header, and which screen a path shows. Signed out, every path shows the sign-in form except
// /invitation, which is how someone without a password yet gets one.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, gql, onSessionEnd, setToken, signOut, token, type CardStatus } from "./api";
import { CardView } from "./dashboard";
import { AuthorizationView } from "./authorization";
import { AdminView } from "./admin";
import { AcceptInvitation, ChangePassword } from "./account";
import { ErrorNote, Link, Loading } from "./ui";
import "./styles.css";

export function navigate(path: string, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  dispatchEvent(new PopStateEvent("popstate"));
}

function usePath(): string {
  const [path, setPath] = useState(location.pathname);
  useEffect(() => {
    const update = () => setPath(location.pathname);
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  return path;
}

export interface Viewer {
  user: { id: string; email: string; role: "ADMIN" | "CARDHOLDER" };
  cards: { nodes: { id: string; last4: string | null; brand: string | null; currency: string; status: CardStatus; cardholder: { name: string | null } | null }[] };
}

// The first page of cards (the API's default size) is what the card switcher offers.
const VIEWER = `{ viewer { user { id email role } cards { nodes { id last4 brand currency status cardholder { name } } } } }`;

function App() {
  const path = usePath();
  const [signedIn, setSignedIn] = useState(token() !== null);
  // Bumped at every sign-in, so the viewer is fetched again even when the tab was signed in
  // already (accepting an invitation signs in as someone else).
  const [session, setSession] = useState(0);
  const [viewer, setViewer] = useState<Viewer | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  // Why the sign-in form is showing, when the server ended the session.
  const [notice, setNotice] = useState<string | null>(null);

  useEffect(() => onSessionEnd((reason) => {
    setViewer(null);
    setSignedIn(false);
    setNotice(reason);
    if (location.pathname !== "/invitation") navigate("/login", { replace: true });
  }), []);

  useEffect(() => {
    if (!signedIn) return;
    const load = () => gql<{ viewer: Viewer }>(VIEWER)
      .then((d) => { setViewer(d.viewer); setError(null); })
      // UNAUTHENTICATED has already signed out (onSessionEnd above).
      .catch((e: ApiError) => { if (e.code !== "UNAUTHENTICATED") setError(e); });
    load();
    // A tab coming back into view asks again: a page without live updates learns this way that
    // its session ended or its role changed.
    const visible = () => { if (document.visibilityState === "visible" && token()) load(); };
    document.addEventListener("visibilitychange", visible);
    return () => document.removeEventListener("visibilitychange", visible);
  }, [signedIn, session]);

  const signedInNow = (to: string) => {
    setNotice(null);
    setViewer(null);
    setSignedIn(true);
    setSession((s) => s + 1);
    // Replace, not push: the invitation's URL carries its secret and should not stay in history.
    navigate(to, { replace: true });
  };

  if (path === "/invitation") return <AcceptInvitation onSignedIn={() => signedInNow("/")} />;
  if (!signedIn || path === "/login") return <Login notice={notice} onSignedIn={() => signedInNow("/")} />;
  if (error) return <ErrorNote error={error} />;
  if (!viewer) return <Loading what="your cards" />;

  const leave = async () => {
    setViewer(null);
    setSignedIn(false);
    setNotice(null);
    navigate("/login");
    await signOut();
  };
  const card = path.match(/^\/cards\/([^/]+)$/);
  const auth = path.match(/^\/authorizations\/([^/]+)$/);
  let screen;
  if (card) screen = <CardView cardId={decodeURIComponent(card[1])} viewer={viewer} />;
  else if (auth) screen = <AuthorizationView id={decodeURIComponent(auth[1])} />;
  else if (path === "/admin" && viewer.user.role === "ADMIN") screen = <AdminView self={viewer.user.id} />;
  else if (path === "/account") screen = <ChangePassword email={viewer.user.email} />;
  else if (viewer.cards.nodes.length > 0) {
    queueMicrotask(() => navigate(`/cards/${viewer.cards.nodes[0].id}`, { replace: true }));
    screen = <Loading what="your first card" />;
  } else screen = <p class="empty">No cards yet. They appear here as soon as Stripe reports them.</p>;

  return (
    <>
      <header class="top">
        <Link class="brand" href="/">cardstream</Link>
        <nav>
          {viewer.user.role === "ADMIN" && <Link href="/admin">Admin</Link>}
          <span class="who" data-testid="who">{viewer.user.email}</span>
          <Link href="/account" testid="account">Change password</Link>
          <button type="button" class="link" data-testid="sign-out" onClick={leave}>Sign out</button>
        </nav>
      </header>
      <main>{screen}</main>
    </>
  );
}

function Login({ notice, onSignedIn }: { notice: string | null; onSignedIn: () => void }) {
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const d = await gql<{ login: { token: string } }>(
        `mutation($i: LoginInput!) { login(input: $i) { token } }`,
        { i: { email, password } },
        { anonymous: true },
      );
      setToken(d.login.token);
      onSignedIn();
    } catch (err) {
      const code = (err as ApiError).code;
      setError(
        code === "UNAUTHENTICATED" ? "That email and password do not match."
          : code === "RATE_LIMITED" ? "Too many attempts; wait a minute and try again."
            : (err as Error).message,
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>cardstream</h1>
      {notice ? <p class="note" role="status" data-testid="signed-out">{notice}</p> : <p>Sign in to see your card spend.</p>}
      <label>Email<input name="email" type="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} /></label>
      <label>Password<input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
      {error && <p class="error" role="alert">{error}</p>}
      <button type="submit" disabled={busy}>{busy ? "Signing in…" : "Sign in"}</button>
    </form>
  );
}

const root = document.getElementById("app");
if (root) {
  root.textContent = "";
  render(<App />, root);
}
