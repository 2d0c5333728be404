// A stand-in for cardstream's GraphQL API, for running the dashboard's browser tests where the
// real backend (`cardstream dev`) is not available. It is NOT the backend and proves nothing
// about it: it checks the dashboard against the contract it was written to.
//
// The schema is the API's own SDL (crates/api/schema.graphql), so every query the dashboard
// sends is validated as the real server would validate it. State lives in memory: two users as
// `cardstream dev` seeds them, one cardholder with one card, revocable sessions, invitations
// with one-time tokens, the policy.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildSchema, GraphQLError } from "graphql";

const SDL = fileURLToPath(new URL("../../crates/api/schema.graphql", import.meta.url));

/** The schema the stand-in answers to: the API's SDL as committed. */
export function contractSchema() {
  return buildSchema(readFileSync(SDL, "utf8"));
}

const fail = (code, message) => { throw new GraphQLError(message, { extensions: { code } }); };
const hash = (s) => createHash("sha256").update(s).digest("hex");
const secret = () => randomBytes(24).toString("base64url");
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
const money = (amount) => ({ amount, currency: "usd", formatted: `${amount < 0 ? "-" : ""}$${(Math.abs(amount) / 100).toFixed(2)}`, exponent: 2 });

// Cursors are opaque, as the API's are (hex there, base64url here): the dashboard may only pass
// back what it was given.
const cursorOf = (id) => Buffer.from(id).toString("base64url");
const idOf = (cursor) => Buffer.from(cursor, "base64url").toString();

/** One page of `items` (already in the list's order) as a Relay connection, with the API's
 * rules: `first`/`after` forward or `last`/`before` backward, `size` rows when neither size is
 * given, at most 100. A row of a cursor must still be listed (the API pages by key, which also
 * survives a deleted row; the stand-in's lists are too small to care). */
function connection(items, { first, after, last, before } = {}, size = 50) {
  const backward = last != null || before != null;
  if ((first != null || after != null) && backward) fail("BAD_USER_INPUT", "page forward with `first` and `after`, or backward with `last` and `before`");
  const n = (backward ? last : first) ?? size;
  if (n < 1 || n > 100) fail("BAD_USER_INPUT", `\`${backward ? "last" : "first"}\` must be between 1 and 100`);
  const at = (cursor) => {
    const i = items.findIndex((x) => x.id === idOf(cursor));
    return i >= 0 ? i : fail("BAD_USER_INPUT", "the cursor is not one this API gave out");
  };
  let from = 0;
  let to = items.length;
  if (backward) { to = before != null ? at(before) : items.length; from = Math.max(0, to - n); }
  else { from = after != null ? at(after) + 1 : 0; to = Math.min(items.length, from + n); }
  const nodes = items.slice(from, to);
  const edges = nodes.map((node) => ({ cursor: cursorOf(node.id), node }));
  return {
    edges,
    nodes,
    pageInfo: {
      hasPreviousPage: backward ? from > 0 : after != null,
      hasNextPage: backward ? before != null : to < items.length,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
    totalCount: items.length,
  };
}

/** The mock's state and its resolvers. `onSessionsEnded(tokens)` lets the socket side close
 * the subscriptions of ended sessions with 4403. */
export function createWorld({ onSessionsEnded = () => {} } = {}) {
  const now = Date.now();
  let ids = 0;
  const users = new Map(); // id -> { id, email, role, cardholderIds, disabled, createdAt, password }
  const sessions = new Map(); // token -> user id
  const invitations = []; // newest first; { ..., tokenHash }
  const addUser = (email, role, password, cardholderIds = [], createdAt = iso(now - 86_400_000)) => {
    const id = `usr_${++ids}`;
    users.set(id, { id, email, role, cardholderIds, disabled: false, createdAt, password });
    return users.get(id);
  };
  addUser("admin@cardstream.dev", "ADMIN", "cardstream-admin");
  addUser("demo@cardstream.dev", "CARDHOLDER", "cardstream-demo", ["ich_mock1"]);

  const history = [1200, 4550, 980, 15000, 2300].map((amount, i) => ({
    id: `iauth_mock${i}`, cardId: "ic_mock1", amount: money(amount), heldAmount: money(0), approved: i !== 2,
    outcome: i === 2 ? "DECLINED" : "APPROVED", status: "CLOSED", rawStatus: "closed", declineReason: i === 2 ? "webhook_declined" : null,
    cardstreamReason: i === 2 ? "category_blocked" : null, wallet: null, created: iso(now - i * 86_400_000),
    merchant: { name: ["Corner Bakery", "Metro Grocer", "Lucky Casino", "Airline Co", "Book Nook"][i], category: ["bakeries", "grocery_stores_supermarkets", "betting_casino_gambling", "airlines_air_carriers", "book_stores"][i], categoryCode: null, city: "Berlin", country: "DE" },
    requestHistory: [{ approved: i !== 2, reason: i === 2 ? "webhook_declined" : "webhook_approved", amount: money(amount), created: iso(now - i * 86_400_000) }],
    transactions: i === 2 ? [] : [{ id: `ipi_mock${i}`, dispute: null, kind: "CAPTURE", rawKind: "capture", cardId: "ic_mock1", amount: money(-amount), spend: money(amount), created: iso(now - i * 86_400_000), authorizationId: `iauth_mock${i}` }],
  }));
  history.forEach((a) => a.transactions.forEach((t) => { t.merchant = a.merchant; }));
  // The platform's own (no Stripe Connect account): the dashboard then shows no account switcher.
  const holder = { id: "ich_mock1", account: null, name: "Demo Holder", email: "demo@cardstream.dev", status: "ACTIVE", rawStatus: "active", created: iso(now - 30 * 86_400_000) };
  const card = {
    id: "ic_mock1", account: null, last4: "4242", brand: "Visa", status: "ACTIVE", rawStatus: "active", currency: "usd", kind: "virtual", expMonth: 12, expYear: 2030, cardholder: holder, tokens: [],
    spendSummary: () => {
      const spent = history.filter((a) => a.approved);
      const keyed = (key) => spent.map((a) => ({ key: key(a), amount: a.amount, count: 1 }));
      return {
        currency: "usd", totalSpend: money(spent.reduce((n, a) => n + a.amount.amount, 0)), averageSpend: money(5762),
        purchases: spent.length, refunded: money(0), refunds: 0, approved: spent.length, declined: 1, approvalRate: 0.8,
        byCategory: () => keyed((a) => a.merchant.category), topMerchants: () => keyed((a) => a.merchant.name),
        timeSeries: () => history.map((a) => ({ start: a.created.slice(0, 10), amount: a.amount, count: 1 })).reverse(),
      };
    },
    activity: (args) => connection(history, args, 20),
  };
  holder.cards = (args) => connection([card], args, 10);
  // What `node(id:)` can find; `__typename` tells graphql-js which type of Node each is.
  const nodes = [
    { ...card, __typename: "Card" }, { ...holder, __typename: "Cardholder" },
    ...history.map((a) => ({ ...a, __typename: "Authorization" })),
    ...history.flatMap((a) => a.transactions).map((t) => ({ ...t, __typename: "Transaction" })),
  ];
  let policy = {
    version: 1, allowedCurrencies: [], maxAmount: [], blockedCategories: ["betting_casino_gambling"], inactiveCards: [], inactiveCardholders: [],
    dailyLimit: [{ currency: "usd", amount: money(300000) }], monthlyLimit: [], onSpendUnknown: "DECLINE", partialApproval: false, updatedBy: null, refused: null,
  };

  const issue = (user) => {
    const token = secret();
    sessions.set(token, user.id);
    return { token, expiresAt: iso(Date.now() + 12 * 3_600_000), user: view(user) };
  };
  const endSessions = (userId, except = null) => {
    const ended = [...sessions].filter(([t, u]) => u === userId && t !== except).map(([t]) => t);
    ended.forEach((t) => sessions.delete(t));
    onSessionsEnded(ended);
  };
  const view = (u) => ({
    id: u.id, email: u.email, role: u.role, cardholderIds: u.role === "ADMIN" ? [] : u.cardholderIds, accounts: u.accounts ?? [], disabled: u.disabled, createdAt: u.createdAt,
  });
  const viewInvitation = ({ tokenHash: _, ...i }) => ({ ...i, state: i.state === "PENDING" && Date.parse(i.expiresAt) < Date.now() ? "EXPIRED" : i.state });
  const invite = (by, { email, role, cardholderIds = [], accounts = [], kind = "INVITE" }) => {
    const token = secret();
    const invitation = {
      id: `inv_${++ids}`, email, role, cardholderIds, accounts, kind, state: "PENDING", invitedBy: by.email,
      createdAt: iso(Date.now()), expiresAt: iso(Date.now() + 7 * 86_400_000), tokenHash: hash(token),
    };
    invitations.unshift(invitation);
    return { invitation: viewInvitation(invitation), token };
  };
  const pending = (token) => {
    const i = invitations.find((x) => x.tokenHash === hash(token));
    if (!i || viewInvitation(i).state !== "PENDING") fail("NOT_FOUND", "no such invitation: it is unknown, used, revoked or expired");
    return i;
  };

  /** The signed-in user behind a token, as of now. */
  const viewerOf = (token) => {
    const user = users.get(sessions.get(token ?? ""));
    return user && !user.disabled ? user : null;
  };
  const signedIn = (ctx) => ctx.user ?? fail("UNAUTHENTICATED", "sign in first (or again: the session ended)");
  const admin = (ctx) => (signedIn(ctx).role === "ADMIN" ? ctx.user : fail("FORBIDDEN", "only an admin may do this"));
  const target = (ctx, id) => {
    const me = admin(ctx);
    const user = users.get(id) ?? fail("NOT_FOUND", "no such user");
    if (user.id === me.id) fail("CONFLICT", "an admin cannot do this to their own account");
    return user;
  };
  const holdersOk = (ids) => ids.every((id) => id === holder.id) || fail("BAD_USER_INPUT", `unknown cardholder in ${ids.join(", ")}`);

  // Relay-style mutations: each takes one `input` and answers a payload, which echoes the
  // input's `clientMutationId`. The functions below take the input itself.
  const mutations = {
    login: ({ email, password }) => {
      const u = [...users.values()].find((x) => x.email === email);
      if (!u || u.disabled || !u.password || u.password !== password) fail("UNAUTHENTICATED", "email and password do not match");
      return issue(u);
    },
    logout: (_, ctx) => ({ ended: sessions.delete(ctx.token ?? "") }),
    changePassword: ({ currentPassword, newPassword }, ctx) => {
      const u = signedIn(ctx);
      // The real server's code for a wrong current password is not in the contract: this is the
      // awkward case for a client (the same code as an ended session).
      if (u.password !== currentPassword) fail("UNAUTHENTICATED", "the current password does not match");
      if (newPassword.length < 12) fail("BAD_USER_INPUT", "the new password needs at least 12 characters");
      u.password = newPassword;
      endSessions(u.id);
      return issue(u);
    },
    inviteUser: (input, ctx) => {
      const by = admin(ctx);
      if ([...users.values()].some((u) => u.email === input.email)) fail("CONFLICT", `${input.email} already has an account`);
      holdersOk(input.cardholderIds ?? []);
      return invite(by, input);
    },
    revokeInvitation: ({ invitationId }, ctx) => {
      admin(ctx);
      const i = invitations.find((x) => x.id === invitationId) ?? fail("NOT_FOUND", "no such invitation");
      if (i.state === "PENDING") i.state = "REVOKED";
      return { invitation: viewInvitation(i) };
    },
    disableUser: ({ userId }, ctx) => { const u = target(ctx, userId); u.disabled = true; endSessions(u.id); return { user: view(u) }; },
    enableUser: ({ userId }, ctx) => { const u = target(ctx, userId); u.disabled = false; return { user: view(u) }; },
    deleteUser: ({ userId }, ctx) => { const u = target(ctx, userId); users.delete(u.id); endSessions(u.id); return { deletedUserId: u.id }; },
    // As the API does: a user whose access changed signs in again.
    setUserRole: ({ userId, role }, ctx) => { const u = target(ctx, userId); u.role = role; endSessions(u.id); return { user: view(u) }; },
    setUserCardholders: ({ userId, cardholderIds }, ctx) => {
      const u = target(ctx, userId);
      holdersOk(cardholderIds);
      u.cardholderIds = cardholderIds;
      endSessions(u.id);
      return { user: view(u) };
    },
    resetPassword: ({ userId }, ctx) => {
      const u = target(ctx, userId);
      u.password = null;
      endSessions(u.id);
      return invite(ctx.user, { email: u.email, role: u.role, cardholderIds: u.cardholderIds, kind: "PASSWORD_RESET" });
    },
    acceptInvitation: ({ token, password }) => {
      const i = pending(token);
      if (password.length < 12) fail("BAD_USER_INPUT", "the password needs at least 12 characters");
      i.state = "ACCEPTED";
      const u = [...users.values()].find((x) => x.email === i.email) ?? addUser(i.email, i.role, null, i.cardholderIds ?? [], iso(Date.now()));
      u.password = password;
      if (i.kind === "INVITE") u.accounts = i.accounts ?? [];
      return issue(u);
    },
    updatePolicy: ({ policy: input, expectedVersion }, ctx) => {
      const by = admin(ctx);
      if (expectedVersion != null && expectedVersion !== policy.version) fail("CONFLICT", `the policy is at version ${policy.version} now`);
      const amounts = (list) => list.map(({ currency, amount }) => ({ currency, amount: { ...money(amount), currency } }));
      policy = {
        ...input, maxAmount: amounts(input.maxAmount), dailyLimit: amounts(input.dailyLimit), monthlyLimit: amounts(input.monthlyLimit),
        version: policy.version + 1, updatedBy: by.email,
      };
      return { policy };
    },
  };

  const visible = (u) => u.role === "ADMIN" || u.cardholderIds.includes(holder.id);
  const root = {
    viewer: (_, ctx) => {
      const u = signedIn(ctx);
      return { user: view(u), cardholders: (args) => connection(visible(u) ? [holder] : [], args), cards: (args) => connection(visible(u) ? [card] : [], args) };
    },
    node: ({ id }, ctx) => (signedIn(ctx) && nodes.find((n) => n.id === id)) ?? null,
    card: ({ id }, ctx) => (signedIn(ctx) && id === card.id ? card : fail("NOT_FOUND", "no such card")),
    authorization: ({ id }, ctx) => (signedIn(ctx) && history.find((a) => a.id === id)) || fail("NOT_FOUND", "no such authorization"),
    disputes: (args, ctx) => signedIn(ctx) && connection([], args),
    merchantCategories: (_, ctx) => signedIn(ctx) && [...new Set(history.map((a) => a.merchant.category))].sort(),
    cardholders: (args, ctx) => admin(ctx) && connection([holder], args),
    cards: (args, ctx) => signedIn(ctx) && connection([card], args),
    policy: (_, ctx) => admin(ctx) && policy,
    // No connected accounts in the stand-in's world.
    accounts: (_, ctx) => signedIn(ctx) && [],
    users: (args, ctx) => {
      admin(ctx);
      const all = [...users.values()].sort((a, b) => a.id.localeCompare(b.id));
      return connection(all.map(view), args);
    },
    invitations: (args, ctx) => admin(ctx) && connection(invitations.map(viewInvitation), args),
    invitation: ({ token }) => {
      const { email, kind, expiresAt } = pending(token);
      return { email, kind, expiresAt };
    },
    ...Object.fromEntries(Object.entries(mutations).map(([name, run]) => [
      name,
      ({ input }, ctx) => ({ ...run(input, ctx), clientMutationId: input.clientMutationId ?? null }),
    ])),
  };
  return { root, viewerOf, sessions };
}
