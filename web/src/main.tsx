// The app shell: routing (history API; the server falls back to index.html), sign-in, the
// header, and which screen a path shows.

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, gql, setToken, token } from "./api";
import { CardView } from "./dashboard";
import { AuthorizationView } from "./authorization";
import { AdminView } from "./admin";
import { ErrorNote, Loading } from "./ui";
import "./styles.css";

export function navigate(path: string) {
  history.pushState(null, "", path);
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
  user: { email: string; role: "ADMIN" | "CARDHOLDER" };
  cards: { id: string; last4: string | null; brand: string | null; currency: string; status: string; cardholder: { name: string | null } | null }[];
}

const VIEWER = `{ viewer { user { email role } cards { id last4 brand currency status cardholder { name } } } }`;

function App() {
  const path = usePath();
  const [signedIn, setSignedIn] = useState(token() !== null);
  const [viewer, setViewer] = useState<Viewer | null>(null);
  const [error, setError] = useState<ApiError | null>(null);

  useEffect(() => {
    if (!signedIn) return;
    gql<{ viewer: Viewer }>(VIEWER)
      .then((d) => setViewer(d.viewer))
      .catch((e: ApiError) => {
        if (e.code === "UNAUTHENTICATED") setSignedIn(false);
        else setError(e);
      });
  }, [signedIn]);

  if (!signedIn || path === "/login") {
    return <Login onSignedIn={() => { setSignedIn(true); navigate("/"); }} />;
  }
  if (error) return <ErrorNote error={error} />;
  if (!viewer) return <Loading what="your cards" />;

  const signOut = () => { setToken(null); setViewer(null); setSignedIn(false); navigate("/login"); };
  const card = path.match(/^\/cards\/([^/]+)$/);
  const auth = path.match(/^\/authorizations\/([^/]+)$/);
  let screen;
  if (card) screen = <CardView cardId={decodeURIComponent(card[1])} viewer={viewer} />;
  else if (auth) screen = <AuthorizationView id={decodeURIComponent(auth[1])} />;
  else if (path === "/admin" && viewer.user.role === "ADMIN") screen = <AdminView />;
  else if (viewer.cards.length > 0) {
    queueMicrotask(() => navigate(`/cards/${viewer.cards[0].id}`));
    screen = <Loading what="your first card" />;
  } else screen = <p class="empty">No cards yet. They appear here as soon as Stripe reports them.</p>;

  return (
    <>
      <header class="top">
        <a class="brand" href="/" onClick={(e) => { e.preventDefault(); navigate("/"); }}>cardstream</a>
        <nav>
          {viewer.user.role === "ADMIN" && (
            <a href="/admin" onClick={(e) => { e.preventDefault(); navigate("/admin"); }}>Admin</a>
          )}
          <span class="who" data-testid="who">{viewer.user.email}</span>
          <button type="button" class="link" onClick={signOut}>Sign out</button>
        </nav>
      </header>
      <main>{screen}</main>
    </>
  );
}

function Login({ onSignedIn }: { onSignedIn: () => void }) {
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
        `mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }`,
        { e: email, p: password },
      );
      setToken(d.login.token);
      onSignedIn();
    } catch (err) {
      const code = (err as ApiError).code;
      setError(code === "UNAUTHENTICATED" ? "That email and password do not match." : (err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="login" onSubmit={submit}>
      <h1>cardstream</h1>
      <p>Sign in to see your card spend.</p>
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
