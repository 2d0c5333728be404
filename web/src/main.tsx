// The app shell: routing (history API; the server falls back to index.html), sign-in, the
// header, and which screen a path shows. Signed out, every path shows the sign-in form except
// /invitation, which is how someone without a password yet gets one.

import { render } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { ApiError, gql, onSessionEnd, setToken, signOut, token, type CardStatus } from "./api";
import { CardView } from "./dashboard";
import { AuthorizationView } from "./authorization";
import { AdminView } from "./admin";
import { Overview } from "./overview";
import { EventLog } from "./events";
import { PipelineHealth } from "./health";
import { AcceptInvitation, ChangePassword } from "./account";
import { ErrorNote, Link, Loading } from "./ui";
import { AccountSwitcher, chosenAccount, switcherOf, withAccount, type ConnectAccount } from "./connect";
import "./styles.css";

/** Goes to `path` in-app. The chosen Connect account (`?account=`) goes along unless `path`
 * has a query of its own or `account` says otherwise (null: none). */
export function navigate(path: string, { replace = false, account }: { replace?: boolean; account?: string | null } = {}) {
  const target = account !== undefined ? withAccount(path, account) : path.includes("?") ? path : withAccount(path, chosenAccount());
  if (replace) history.replaceState(null, "", target);
  else history.pushState(null, "", target);
  dispatchEvent(new PopStateEvent("popstate"));
}

/** The path and the chosen account, as the address bar has them now. */
function useLocation(): { path: string; account: string | null } {
  const read = () => ({ path: location.pathname, account: chosenAccount() });
  const [at, setAt] = useState(read);
  useEffect(() => {
    const update = () => setAt((old) => {
      const now = read();
      return now.path === old.path && now.account === old.account ? old : now;
    });
    addEventListener("popstate", update);
    return () => removeEventListener("popstate", update);
  }, []);
  return at;
}

export interface Viewer {
  /** `accounts`: the Connect accounts the user is limited to; empty: every account. */
  user: { id: string; email: string; role: "ADMIN" | "CARDHOLDER"; accounts: string[] };
  /** Those of the chosen account, when one is chosen. */
  cards: { nodes: { id: string; last4: string | null; brand: string | null; currency: string; status: CardStatus; account: string | null; cardholder: { name: string | null } | null }[] };
}

/** The signed-in user, their cards (of the chosen account), and the accounts they may pick. */
export interface Session { viewer: Viewer; accounts: ConnectAccount[] }

/** Whether the viewer is an admin of the whole platform (every account, users, the policy). */
export const platformAdmin = (v: Viewer) => v.user.role === "ADMIN" && v.user.accounts.length === 0;

// The first page of cards (the API's default size) is what the card switcher offers.
const VIEWER = `query($account: ID) { viewer { user { id email role accounts }
  cards(account: $account) { nodes { id last4 brand currency status account cardholder { name } } } }
  accounts { id cards cardholders } }`;

function App() {
  const { path, account } = useLocation();
  const [signedIn, setSignedIn] = useState(token() !== null);
  // Bumped at every sign-in, so the viewer is fetched again even when the tab was signed in
  // already (accepting an invitation signs in as someone else).
  const [session, setSession] = useState(0);
  // With the account it was read for: another account's is not shown while the new one loads.
  const [data, setData] = useState<(Session & { of: string | null }) | null>(null);
  const [error, setError] = useState<ApiError | null>(null);
  // Why the sign-in form is showing, when the server ended the session.
  const [notice, setNotice] = useState<string | null>(null);

  // Each screen names itself in the tab's title, and a route change moves focus to the new
  // screen (not on the first load), so a screen reader announces where the reader now is.
  const title = !signedIn && path !== "/invitation" ? "Sign in" : titleOf(path, data?.viewer);
  useEffect(() => { document.title = `${title} · cardstream`; }, [title]);
  const landed = useRef(false);
  useEffect(() => {
    if (!landed.current) { landed.current = true; return; }
    document.querySelector<HTMLElement>("main, form.login")?.focus();
  }, [path]);

  useEffect(() => onSessionEnd((reason) => {
    setData(null);
    setSignedIn(false);
    setNotice(reason);
    if (location.pathname !== "/invitation") navigate("/login", { replace: true, account: null });
  }), []);

  useEffect(() => {
    if (!signedIn) return;
    let current = true;
    const load = () => gql<Session>(VIEWER, { account })
      .then((d) => { if (current) { setData({ ...d, of: account }); setError(null); } })
      // UNAUTHENTICATED has already signed out (onSessionEnd above).
      .catch((e: ApiError) => { if (current && e.code !== "UNAUTHENTICATED") setError(e); });
    load();
    // A tab coming back into view asks again: a page without live updates learns this way that
    // its session ended or its role changed.
    const visible = () => { if (document.visibilityState === "visible" && token()) load(); };
    document.addEventListener("visibilitychange", visible);
    return () => {
      current = false;
      document.removeEventListener("visibilitychange", visible);
    };
  }, [signedIn, session, account]);

  const signedInNow = (to: string) => {
    setNotice(null);
    setData(null);
    setSignedIn(true);
    setSession((s) => s + 1);
    // Replace, not push: the invitation's URL carries its secret and should not stay in history.
    // Someone else may have signed in: the account chosen before is not theirs to keep.
    navigate(to, { replace: true, account: null });
  };

  if (path === "/invitation") return <AcceptInvitation onSignedIn={() => signedInNow("/")} />;
  if (!signedIn || path === "/login") return <Login notice={notice} onSignedIn={() => signedInNow("/")} />;
  if (error) {
    return (
      <main>
        <ErrorNote error={error} />
        {account && (
          <p class="back">
            <button type="button" class="link" data-testid="all-accounts" onClick={() => navigate("/", { account: null })}>Show all accounts</button>
          </p>
        )}
      </main>
    );
  }
  if (!data || data.of !== account) return <Loading what="your cards" />;
  const { viewer, accounts } = data;

  const leave = async () => {
    setData(null);
    setSignedIn(false);
    setNotice(null);
    navigate("/login", { account: null });
    await signOut();
  };
  const switcher = switcherOf(viewer.user.role, viewer.user.accounts, accounts);
  // A card's or an authorization's page belongs to one account: another account starts at its
  // first card. The admin and password pages stay where they are.
  const choose = (next: string | null) =>
    navigate(["/admin", "/overview", "/events", "/health", "/account"].includes(path) ? path : "/cards", { account: next });
  const card = path.match(/^\/cards\/([^/]+)$/);
  const auth = path.match(/^\/authorizations\/([^/]+)$/);
  let screen;
  // Admins of a Connect platform see which account a card is of.
  const showAccount = viewer.user.role === "ADMIN" && (accounts.length > 0 || viewer.user.accounts.length > 0);
  if (card) screen = <CardView cardId={decodeURIComponent(card[1])} viewer={viewer} showAccount={showAccount} />;
  else if (auth) screen = <AuthorizationView id={decodeURIComponent(auth[1])} />;
  else if (path === "/overview" && viewer.user.role === "ADMIN") screen = <Overview account={account} />;
  else if (path === "/events" && platformAdmin(viewer)) screen = <EventLog />;
  else if (path === "/health" && platformAdmin(viewer)) screen = <PipelineHealth />;
  else if (path === "/admin" && viewer.user.role === "ADMIN") screen = <AdminView self={viewer.user.id} viewer={viewer} account={account} />;
  else if (path === "/account") screen = <ChangePassword email={viewer.user.email} />;
  // An admin's home is the program; `/cards` opens the first card, as `/` does for others.
  else if (path === "/" && viewer.user.role === "ADMIN") {
    queueMicrotask(() => navigate("/overview", { replace: true }));
    screen = <Loading what="the program" />;
  } else if (viewer.cards.nodes.length > 0) {
    queueMicrotask(() => navigate(`/cards/${viewer.cards.nodes[0].id}`, { replace: true }));
    screen = <Loading what="your first card" />;
  } else screen = <p class="empty">No cards yet. They appear here as soon as Stripe reports them.</p>;

  return (
    <>
      <header class="top">
        <Link class="brand" href="/">cardstream</Link>
        <nav>
          {switcher && <AccountSwitcher accounts={accounts} chosen={account} all={switcher.all} onChoose={choose} />}
          {viewer.user.role === "ADMIN" && <Link href="/overview" testid="nav-overview">Overview</Link>}
          {viewer.user.role === "ADMIN" && <Link href="/cards" testid="nav-cards">Cards</Link>}
          {platformAdmin(viewer) && <Link href="/events" testid="nav-events">Events</Link>}
          {platformAdmin(viewer) && <Link href="/health" testid="nav-health">Health</Link>}
          {viewer.user.role === "ADMIN" && <Link href="/admin">Admin</Link>}
          <span class="who" data-testid="who">{viewer.user.email}</span>
          <Link href="/account" testid="account">Change password</Link>
          <button type="button" class="link" data-testid="sign-out" onClick={leave}>Sign out</button>
        </nav>
      </header>
      <main tabIndex={-1}>{screen}</main>
    </>
  );
}

/** What the screen at `path` is called, for the tab's title. */
function titleOf(path: string, viewer: Viewer | undefined): string {
  const card = path.match(/^\/cards\/([^/]+)$/);
  if (card) {
    const id = decodeURIComponent(card[1]);
    const last4 = viewer?.cards.nodes.find((c) => c.id === id)?.last4;
    return last4 ? `Card •••• ${last4}` : "Card";
  }
  if (path.startsWith("/authorizations/")) return "Authorization";
  if (path === "/admin") return "Admin";
  if (path === "/overview") return "Program overview";
  if (path === "/events") return "Event log";
  if (path === "/health") return "Pipeline health";
  if (path === "/account") return "Change password";
  if (path === "/invitation") return "Invitation";
  if (path === "/login") return "Sign in";
  return "Cards";
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
    <form class="login" onSubmit={submit} tabIndex={-1}>
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
