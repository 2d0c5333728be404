// GraphiQL for cardstream's API, served from the same origin as the dashboard (a second Vite
// entry, graphiql.html) so that the page needs no CDN, no inline script and no other origin
// under the API's Content-Security-Policy. It is React (GraphiQL is a React app); the dashboard
// stays Preact, and this entry's chunks are loaded by graphiql.html only.
//
// Signed in to the dashboard in this tab, GraphiQL sends the same token: as a header on HTTP
// and in connection_init on the subscription socket. The token is never shown or logged: it is
// not put in GraphiQL's headers editor (which could persist it to localStorage).

import { createElement } from "react";
import { createRoot } from "react-dom/client";
import { GraphiQL } from "graphiql";
import { createGraphiQLFetcher } from "@graphiql/toolkit";
import { createClient } from "graphql-ws";
import "graphiql/graphiql.css";
import "./graphiql.css";

// The dashboard's key (src/api.ts).
const token = sessionStorage.getItem("cardstream.token");
const bearer = token ? `Bearer ${token}` : null;

const subscriptionUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql/ws`;
// Our own client rather than the toolkit's (it would make the same from subscriptionUrl): a
// refused token (4401, 4403) should end with the error shown, not be retried.
const wsClient = createClient({
  url: subscriptionUrl,
  connectionParams: bearer ? { authorization: bearer } : {},
  shouldRetry: (event) => !(event instanceof CloseEvent && (event.code === 4401 || event.code === 4403)),
});

const fetcher = createGraphiQLFetcher({
  url: "/graphql",
  subscriptionUrl,
  wsClient,
  headers: bearer ? { authorization: bearer } : undefined,
});

const defaultQuery = `# cardstream's GraphQL API
# ${bearer
  ? "Runs as the user signed in to the dashboard in this tab."
  : "Not signed in: sign in to the dashboard in this tab (/login),\n# then come back to /graphql. Until then the schema may not\n# load (introspection needs a sign-in)."}

{
  viewer {
    user { email role }
    cards(first: 10) {
      totalCount
      nodes { id last4 currency status rawStatus }
      pageInfo { hasNextPage endCursor }
    }
  }
}
`;

const root = document.getElementById("graphiql");
if (root) {
  root.textContent = "";
  createRoot(root).render(createElement(GraphiQL, { fetcher, defaultQuery }));
}
