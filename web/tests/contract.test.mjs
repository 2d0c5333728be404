// The dashboard's invitation, session and password flows, and its Content-Security-Policy,
// against the in-memory stand-in of the API (mock-api.mjs served by csp-server.mjs) instead of
// `cardstream dev`: runnable without the Rust backend, Postgres or a broker, only web/dist and
// chromium. The same flows run against the real backend in dashboard.test.mjs; a pass here
// says the dashboard keeps the contract, not that the backend does.

import { after, before, test } from "node:test";
import { browser } from "./harness.mjs";
import { startStatic } from "./csp-server.mjs";
import { adminPage, changePassword, cspClean, inviteAndAccept, resetAndRevoke, revokeSessions } from "./accounts.mjs";

const CARD = "/cards/ic_mock1";
let server, chrome, admin, invitee;

before(async () => {
  server = await startStatic({ api: true });
  chrome = await browser();
  admin = await adminPage(chrome, server.base);
});

after(async () => {
  await chrome?.close();
  await server?.stop();
});

test("stand-in: no Content-Security-Policy violation on the dashboard's screens or GraphiQL", async () => {
  await cspClean(chrome, server.base, { cardId: "ic_mock1" });
});

test("stand-in: an invited user sets a password from the link and lands signed in", async () => {
  invitee = await inviteAndAccept(chrome, server.base, admin, { cardholderId: "ich_mock1", shots: "stand-in-invite" });
});

test("stand-in: a password change keeps the tab signed in and signs the other sessions out", async () => {
  invitee.password = await changePassword(chrome, server.base, invitee, { cardPath: CARD });
});

test("stand-in: a password-reset link sets a new password; a revoked invitation's link is dead", async () => {
  invitee.password = await resetAndRevoke(chrome, server.base, admin, invitee);
});

test("stand-in: disabling, promoting, demoting, then deleting a user signs their open pages out", async () => {
  await revokeSessions(chrome, server.base, admin, invitee, { cardPath: CARD, cardholderId: "ich_mock1" });
});
