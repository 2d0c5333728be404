// Talking to cardstream's GraphQL API: queries over fetch, subscriptions over
// graphql-transport-ws (graphql-ws). The sign-in token lives in sessionStorage: closing the tab
// signs out.
//
// Sessions are revocable on the server (sign-out, a password change, an admin disabling or
// deleting a user). The app learns of it in two ways, and both end here in `endSession`:
// a query answered UNAUTHENTICATED, and the subscription socket closed with 4401 (token expired)
// or 4403 (session ended or refused). The shell listens (`onSessionEnd`) and shows the sign-in
// screen with the reason.

import { createClient, type Client } from "graphql-ws";

const TOKEN_KEY = "cardstream.token";

export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

export function token(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value: string | null) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
  // The socket authenticated with the old token: a new one connects on the next subscription.
  closeSocket();
}

type SessionListener = (reason: string) => void;
const sessionListeners = new Set<SessionListener>();

/** Called when the server ends this tab's session; returns the function that unregisters. */
export function onSessionEnd(listener: SessionListener): () => void {
  sessionListeners.add(listener);
  return () => sessionListeners.delete(listener);
}

/** Forgets the token and tells the shell, once per session. */
function endSession(reason: string) {
  if (token() === null) return;
  setToken(null);
  sessionListeners.forEach((l) => l(reason));
}

// While a password change is in flight the server ends every session of the user, this tab's
// old one included, and only then answers with the new token: the socket's 4403 in that window
// is expected and must not sign out.
let renewing = 0;

/** Runs `fn` (which ends the current session and returns a new token) and keeps the tab signed in. */
export async function renewSession(fn: () => Promise<string>): Promise<void> {
  renewing++;
  try {
    setToken(await fn());
  } finally {
    renewing--;
  }
}

async function post(query: string, variables: Record<string, unknown>, bearer: string | null): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  try {
    return await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError("cardstream cannot be reached; check your connection", "NETWORK");
  }
}

/** Runs a query or mutation; throws an ApiError carrying the server's `code`. `anonymous`: send
 * no token (sign-in and invitations are public, and a stale token must not get in their way). */
export async function gql<T>(
  query: string,
  variables: Record<string, unknown> = {},
  { anonymous = false }: { anonymous?: boolean } = {},
): Promise<T> {
  const t = anonymous ? null : token();
  const response = await post(query, variables, t);
  const body = await response.json().catch(() => null);
  const error = body?.errors?.[0];
  if (error) {
    const code: string = error.extensions?.code ?? "INTERNAL";
    // Only a token that was sent can have ended; a failed sign-in is answered UNAUTHENTICATED too.
    if (code === "UNAUTHENTICATED" && t && t === token() && !renewing) endSession("Your session ended; sign in again.");
    throw new ApiError(error.message, code);
  }
  if (!response.ok || !body?.data) throw new ApiError(`the API answered ${response.status}`, "INTERNAL");
  return body.data as T;
}

/** Signs out: forgets the token at once, then asks the server to end the session (best effort:
 * the tab is signed out whether or not the server can be reached). */
export async function signOut(): Promise<void> {
  const t = token();
  setToken(null);
  if (!t) return;
  const timeout = new Promise<void>((resolve) => setTimeout(resolve, 3_000));
  await Promise.race([post("mutation { logout(input: {}) { ended } }", {}, t).then(() => undefined, () => undefined), timeout]);
}

let socket: Client | null = null;

function closeSocket() {
  const s = socket;
  socket = null;
  s?.dispose();
}

/** 4401: the token expired; 4403: the session ended or the token was refused. */
function isSessionClose(event: unknown): event is CloseEvent {
  return event instanceof CloseEvent && (event.code === 4401 || event.code === 4403);
}

function client(): Client {
  if (!socket) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const own = createClient({
      url: `${scheme}://${location.host}/graphql/ws`,
      connectionParams: () => ({ authorization: `Bearer ${token() ?? ""}` }),
      retryAttempts: Infinity,
      // Retrying with a refused token cannot help: the tab signs out instead.
      shouldRetry: (event) => !isSessionClose(event),
      on: {
        // For the browser tests: the moment live updates can arrive.
        connected: () => { document.documentElement.dataset.live = "connected"; },
        closed: (event) => {
          document.documentElement.dataset.live = "closed";
          // A socket already replaced (a new token) says nothing about the current session.
          if (socket !== own || !isSessionClose(event) || renewing) return;
          endSession(event.code === 4401 ? "Your session expired; sign in again." : "Your session ended; sign in again.");
        },
      },
    });
    socket = own;
  }
  return socket;
}

/** Subscribes; returns the function that ends the subscription. */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  onData: (data: T) => void,
  onError: (message: string) => void,
): () => void {
  return client().subscribe<T>(
    { query, variables },
    {
      next: (result) => {
        if (result.errors?.length) onError(result.errors[0].message);
        else if (result.data) onData(result.data as T);
      },
      error: (e) =>
        onError(isSessionClose(e) ? "live updates were refused: sign in again" : "live updates were interrupted; reconnecting"),
      complete: () => {},
    },
  );
}

export interface Money {
  amount: number;
  currency: string;
  formatted: string;
  /** Decimal places of one major unit; asked for where amounts are scaled (the chart). */
  exponent?: number;
}

/** A page of a connection as the dashboard asks for it: its nodes, and where the next page
 * starts (cursors are opaque: only ever passed back as `after`). */
export interface Connection<T> {
  nodes: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** The `after` for the page following `page`; null when it was the last. */
export function nextCursor(page: Connection<unknown>): string | null {
  return page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
}

/** The API's statuses are enums (OTHER for a value it does not know yet); `rawStatus` holds
 * Stripe's lowercase word, which is what the dashboard shows. */
export type CardStatus = "ACTIVE" | "INACTIVE" | "CANCELED" | "OTHER";
export type AuthorizationStatus = "PENDING" | "CLOSED" | "REVERSED" | "EXPIRED" | "OTHER";
export type TransactionKind = "CAPTURE" | "REFUND" | "OTHER";

/** How the API's DateTime (RFC 3339 on the wire) reads on screen. */
export function when(value: string): string {
  return new Date(value).toLocaleString();
}
