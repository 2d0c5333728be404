// Talking to cardstream's GraphQL API: queries over fetch, subscriptions over
// graphql-transport-ws (graphql-ws). The sign-in token lives in sessionStorage: closing the tab
// signs out.

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
  socket?.dispose();
  socket = null;
}

/** Runs a query or mutation; throws an ApiError carrying the server's `code`. */
export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  let response: Response;
  try {
    response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  } catch {
    throw new ApiError("cardstream cannot be reached; check your connection", "NETWORK");
  }
  const body = await response.json().catch(() => null);
  const error = body?.errors?.[0];
  if (error) {
    const code: string = error.extensions?.code ?? "INTERNAL";
    if (code === "UNAUTHENTICATED" && t) setToken(null);
    throw new ApiError(error.message, code);
  }
  if (!response.ok || !body?.data) throw new ApiError(`the API answered ${response.status}`, "INTERNAL");
  return body.data as T;
}

let socket: Client | null = null;

function client(): Client {
  if (!socket) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = createClient({
      url: `${scheme}://${location.host}/graphql/ws`,
      connectionParams: () => ({ authorization: `Bearer ${token() ?? ""}` }),
      retryAttempts: Infinity,
      // The server closes with 4403 when the token is refused: retrying cannot help.
      shouldRetry: (event) => !(event instanceof CloseEvent && (event.code === 4403 || event.code === 4401)),
      on: {
        // For the browser tests: the moment live updates can arrive.
        connected: () => { document.documentElement.dataset.live = "connected"; },
        closed: () => { document.documentElement.dataset.live = "closed"; },
      },
    });
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
        onError(
          e instanceof CloseEvent && (e.code === 4403 || e.code === 4401)
            ? "live updates were refused: sign in again"
            : "live updates were interrupted; reconnecting",
        ),
      complete: () => {},
    },
  );
}

export interface Money {
  amount: number;
  currency: string;
  formatted: string;
}
