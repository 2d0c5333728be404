// A stand-in for cardstream's GraphQL API, for running the dashboard's browser tests where the
// real backend (`cardstream dev`) is not available. It is NOT the backend and proves nothing
// about it: it checks the dashboard against the contract it was written to.
//
// The schema is the API's own SDL (crates/api/schema.graphql) with the sessions-and-invitations
// contract applied on top (CONTRACT below, which replaces whatever the SDL says about the same
// names), so every query the dashboard sends is validated as the real server would validate
// it. State lives in memory: two users as `cardstream dev` seeds them, one cardholder with one
// card, revocable sessions, invitations with one-time tokens.

import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { buildASTSchema, GraphQLError, Kind, parse } from "graphql";

const SDL = fileURLToPath(new URL("../../crates/api/schema.graphql", import.meta.url));

// The contract for revocable sessions, invitations and user management, as the dashboard was
// built against it.
const CONTRACT = `
enum InvitationKind { INVITE PASSWORD_RESET }
enum InvitationState { PENDING ACCEPTED REVOKED EXPIRED }
type Invitation { id: ID!, email: String!, role: RoleKind!, cardholderIds: [ID!]!, kind: InvitationKind!,
  state: InvitationState!, invitedBy: String, createdAt: DateTime!, expiresAt: DateTime! }
type InvitationPayload { invitation: Invitation!, token: String! }
type InvitationPreview { email: String!, kind: InvitationKind!, expiresAt: DateTime! }
input InviteUserInput { email: String!, role: RoleKind!, cardholderIds: [ID!] = [] }
extend type UserObject { disabled: Boolean!, createdAt: DateTime! }
extend type Query {
  users(first: Int = 50, after: ID): [UserObject!]!
  invitations(first: Int = 50): [Invitation!]!
  invitation(token: String!): InvitationPreview!
}
extend type Mutation {
  logout: Boolean!
  changePassword(currentPassword: String!, newPassword: String!): LoginPayload!
  inviteUser(input: InviteUserInput!): InvitationPayload!
  revokeInvitation(id: ID!): Invitation!
  disableUser(id: ID!): UserObject!
  enableUser(id: ID!): UserObject!
  deleteUser(id: ID!): ID!
  setUserRole(id: ID!, role: RoleKind!): UserObject!
  setUserCardholders(id: ID!, cardholderIds: [ID!]!): UserObject!
  resetPassword(id: ID!): InvitationPayload!
  acceptInvitation(token: String!, password: String!): LoginPayload!
}`;
// Gone from the API: admins no longer choose other people's passwords.
const REMOVED = { Mutation: ["createUser"], types: ["CreateUserInput"] };

/** The API's SDL with CONTRACT applied: the contract's types and fields win over the SDL's. */
export function contractSchema() {
  const base = parse(readFileSync(SDL, "utf8"));
  const delta = parse(CONTRACT);
  const newTypes = new Set(delta.definitions.filter((d) => !d.kind.endsWith("Extension")).map((d) => d.name.value));
  const newFields = {};
  for (const d of delta.definitions.filter((d) => d.kind === Kind.OBJECT_TYPE_EXTENSION)) {
    newFields[d.name.value] = new Set(d.fields.map((f) => f.name.value));
  }
  for (const name of REMOVED.Mutation) (newFields.Mutation ??= new Set()).add(name);
  const definitions = base.definitions
    .filter((d) => !(d.name && (newTypes.has(d.name.value) || REMOVED.types.includes(d.name.value))))
    .map((d) => (d.kind === Kind.OBJECT_TYPE_DEFINITION && newFields[d.name.value]
      ? { ...d, fields: d.fields.filter((f) => !newFields[d.name.value].has(f.name.value)) }
      : d));
  return buildASTSchema({ kind: Kind.DOCUMENT, definitions: [...definitions, ...delta.definitions] });
}

const fail = (code, message) => { throw new GraphQLError(message, { extensions: { code } }); };
const hash = (s) => createHash("sha256").update(s).digest("hex");
const secret = () => randomBytes(24).toString("base64url");
const iso = (ms) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z");
const money = (amount) => ({ amount, currency: "usd", formatted: `${amount < 0 ? "-" : ""}$${(Math.abs(amount) / 100).toFixed(2)}` });

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
    outcome: i === 2 ? "DECLINED" : "APPROVED", status: "closed", declineReason: i === 2 ? "webhook_declined" : null,
    cardstreamReason: i === 2 ? "category_blocked" : null, wallet: null, created: iso(now - i * 86_400_000),
    merchant: { name: ["Corner Bakery", "Metro Grocer", "Lucky Casino", "Airline Co", "Book Nook"][i], category: ["bakeries", "grocery_stores_supermarkets", "betting_casino_gambling", "airlines_air_carriers", "book_stores"][i], categoryCode: null, city: "Berlin", country: "DE" },
    requestHistory: [{ approved: i !== 2, reason: i === 2 ? "webhook_declined" : "webhook_approved", amount: money(amount), created: iso(now - i * 86_400_000) }],
    transactions: i === 2 ? [] : [{ id: `ipi_mock${i}`, kind: "capture", amount: money(-amount), spend: money(amount), created: iso(now - i * 86_400_000), authorizationId: `iauth_mock${i}` }],
  }));
  history.forEach((a) => a.transactions.forEach((t) => { t.merchant = a.merchant; }));
  const holder = { id: "ich_mock1", name: "Demo Holder", email: "demo@cardstream.dev", status: "active", created: iso(now - 30 * 86_400_000) };
  const card = {
    id: "ic_mock1", last4: "4242", brand: "Visa", status: "active", currency: "usd", kind: "virtual", expMonth: 12, expYear: 2030, cardholder: holder,
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
    activity: () => ({ edges: history.map((node) => ({ cursor: node.id, node })), pageInfo: { hasNextPage: false, endCursor: null } }),
  };
  holder.cards = [card];

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
  const view = (u) => ({ id: u.id, email: u.email, role: u.role, cardholderIds: u.role === "ADMIN" ? [] : u.cardholderIds, disabled: u.disabled, createdAt: u.createdAt });
  const viewInvitation = ({ tokenHash: _, ...i }) => ({ ...i, state: i.state === "PENDING" && Date.parse(i.expiresAt) < Date.now() ? "EXPIRED" : i.state });
  const invite = (by, { email, role, cardholderIds = [], kind = "INVITE" }) => {
    const token = secret();
    const invitation = {
      id: `inv_${++ids}`, email, role, cardholderIds, kind, state: "PENDING", invitedBy: by.email,
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

  const root = {
    viewer: (_, ctx) => {
      const u = signedIn(ctx);
      return { user: view(u), cardholders: u.role === "ADMIN" || u.cardholderIds.includes(holder.id) ? [holder] : [], cards: u.role === "ADMIN" || u.cardholderIds.includes(holder.id) ? [card] : [] };
    },
    card: ({ id }, ctx) => (signedIn(ctx) && id === card.id ? card : fail("NOT_FOUND", "no such card")),
    activity: (_, ctx) => signedIn(ctx) && card.activity(),
    authorization: ({ id }, ctx) => (signedIn(ctx) && history.find((a) => a.id === id)) || fail("NOT_FOUND", "no such authorization"),
    disputes: (_, ctx) => signedIn(ctx) && [],
    merchantCategories: (_, ctx) => signedIn(ctx) && [...new Set(history.map((a) => a.merchant.category))].sort(),
    cardholders: (_, ctx) => admin(ctx) && [holder],
    cards: (_, ctx) => signedIn(ctx) && [card],
    policy: (_, ctx) => admin(ctx) && {
      version: 1, allowedCurrencies: [], maxAmount: [], blockedCategories: ["betting_casino_gambling"], inactiveCards: [], inactiveCardholders: [],
      dailyLimit: [{ currency: "usd", amount: money(300000) }], monthlyLimit: [], onSpendUnknown: "DECLINE", updatedBy: null,
    },
    users: ({ first, after }, ctx) => {
      admin(ctx);
      const all = [...users.values()].sort((a, b) => a.id.localeCompare(b.id));
      return all.filter((u) => !after || u.id > after).slice(0, first).map(view);
    },
    invitations: ({ first }, ctx) => admin(ctx) && invitations.slice(0, first).map(viewInvitation),
    invitation: ({ token }) => {
      const { email, kind, expiresAt } = pending(token);
      return { email, kind, expiresAt };
    },

    login: ({ email, password }) => {
      const u = [...users.values()].find((x) => x.email === email);
      if (!u || u.disabled || !u.password || u.password !== password) fail("UNAUTHENTICATED", "email and password do not match");
      return issue(u);
    },
    logout: (_, ctx) => { if (ctx.user) sessions.delete(ctx.token); return true; },
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
    inviteUser: ({ input }, ctx) => {
      const by = admin(ctx);
      if ([...users.values()].some((u) => u.email === input.email)) fail("CONFLICT", `${input.email} already has an account`);
      holdersOk(input.cardholderIds ?? []);
      return invite(by, input);
    },
    revokeInvitation: ({ id }, ctx) => {
      admin(ctx);
      const i = invitations.find((x) => x.id === id) ?? fail("NOT_FOUND", "no such invitation");
      if (i.state === "PENDING") i.state = "REVOKED";
      return viewInvitation(i);
    },
    disableUser: ({ id }, ctx) => { const u = target(ctx, id); u.disabled = true; endSessions(u.id); return view(u); },
    enableUser: ({ id }, ctx) => { const u = target(ctx, id); u.disabled = false; return view(u); },
    deleteUser: ({ id }, ctx) => { const u = target(ctx, id); users.delete(u.id); endSessions(u.id); return u.id; },
    // As the API does: a user whose access changed signs in again.
    setUserRole: ({ id, role }, ctx) => { const u = target(ctx, id); u.role = role; endSessions(u.id); return view(u); },
    setUserCardholders: ({ id, cardholderIds }, ctx) => {
      const u = target(ctx, id);
      holdersOk(cardholderIds);
      u.cardholderIds = cardholderIds;
      endSessions(u.id);
      return view(u);
    },
    resetPassword: ({ id }, ctx) => {
      const u = target(ctx, id);
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
      return issue(u);
    },
  };
  return { root, viewerOf, sessions };
}
