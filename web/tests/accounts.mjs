// The browser flows of invitations, revocable sessions, password changes and the
// Content-Security-Policy, written once and run twice: against `cardstream dev` in
// dashboard.test.mjs, and against the in-memory stand-in in contract.test.mjs (for when the
// backend is not at hand). Each takes the browser, the base URL and what differs between the two.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { live, screenshot, signIn, waitFor } from "./harness.mjs";

export const ADMIN = { email: "admin@cardstream.dev", password: "cardstream-admin" };

/** How long an open page may take to notice that its session ended. */
const SIGN_OUT_MS = 5_000;

const row = (page, email) => page.locator(`[data-testid=user-row][data-email="${email}"]`);
const token = (page) => page.evaluate(() => sessionStorage.getItem("cardstream.token"));

/** A page of its own (cookies, storage) signed in as the admin, on /admin. */
export async function adminPage(chrome, base) {
  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, base, ADMIN.email, ADMIN.password);
  await page.goto(`${base}/admin`);
  await page.waitForSelector("[data-testid=users]");
  return page;
}

/** (a) The admin invites someone; the link, opened in a fresh browser context, lets them set a
 * password and lands them signed in; the used link is dead. */
export async function inviteAndAccept(chrome, base, admin, { cardholderId, shots = "invite" }) {
  const email = `invitee-${randomBytes(4).toString("hex")}@example.com`;
  const password = `correct horse ${randomBytes(3).toString("hex")}`;
  await admin.fill("[data-testid=invite] input[name=email]", email);
  await admin.selectOption("[data-testid=invite] select[name=role]", "CARDHOLDER");
  await admin.fill("[data-testid=invite] input[name=cardholderIds]", cardholderId);
  await admin.click("[data-testid=invite] button[type=submit]");
  const link = await admin.locator("[data-testid=one-time-link]").inputValue({ timeout: 5_000 });
  assert.ok(link.startsWith(`${base}/invitation#`) && link.length > `${base}/invitation#`.length + 16, "a one-time link with its secret in the fragment");
  await admin.locator(`[data-testid=invitation-row][data-email="${email}"][data-state=PENDING]`).waitFor({ timeout: 5_000 });
  await screenshot(admin, `${shots}-admin`);

  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await page.goto(link);
  assert.equal((await page.textContent("[data-testid=invitation-email]", { timeout: 5_000 })).trim(), email);
  await page.fill("[data-testid=invitation] input[name=password]", password);
  await page.fill("[data-testid=invitation] input[name=repeat]", `${password}x`);
  await page.click("[data-testid=invitation] button[type=submit]");
  await page.getByText("The two passwords differ.").waitFor({ timeout: 2_000 });
  await page.fill("[data-testid=invitation] input[name=repeat]", password);
  await screenshot(page, `${shots}-accept`);
  await page.click("[data-testid=invitation] button[type=submit]");
  await page.waitForSelector("[data-testid=who]", { timeout: 10_000 });
  assert.equal((await page.textContent("[data-testid=who]")).trim(), email);
  assert.ok(!page.url().includes("#"), "the secret left the address bar");
  assert.ok(await token(page), "signed in");

  // Used once, the link is dead: a clear message, and the fragment cleared from the address bar.
  const again = await (await chrome.newContext()).newPage();
  await again.goto(link);
  await again.locator("[data-testid=invitation-problem]").waitFor({ timeout: 5_000 });
  assert.ok(!again.url().includes("#"));
  await again.context().close();
  return { email, password, page };
}

/** An admin's password reset and a revoked invitation: the reset link (kind PASSWORD_RESET) sets
 * a new password and signs in; a revoked invitation's link is dead. Returns the new password. */
export async function resetAndRevoke(chrome, base, admin, { email }) {
  await admin.reload();
  await row(admin, email).locator("[data-testid=user-reset]").click();
  await row(admin, email).locator("[data-testid=user-reset-confirm]").click();
  await admin.locator("[data-testid=one-time]").getByText("Password-reset link").waitFor({ timeout: 5_000 });
  const link = await admin.locator("[data-testid=one-time-link]").inputValue();
  await admin.locator(`[data-testid=invitation-row][data-email="${email}"][data-state=PENDING]`).getByText("password reset").waitFor({ timeout: 5_000 });

  const password = `battery staple ${randomBytes(3).toString("hex")}`;
  const context = await chrome.newContext();
  const page = await context.newPage();
  await page.goto(link);
  await page.getByText("Choose a new password for").waitFor({ timeout: 5_000 });
  await page.fill("[data-testid=invitation] input[name=password]", password);
  await page.fill("[data-testid=invitation] input[name=repeat]", password);
  await page.click("[data-testid=invitation] button[type=submit]");
  assert.equal((await page.textContent("[data-testid=who]", { timeout: 10_000 })).trim(), email);
  await context.close();

  const other = `revoked-${randomBytes(4).toString("hex")}@example.com`;
  await admin.click("[data-testid=one-time] button.link"); // Done: the link is gone for good
  await admin.fill("[data-testid=invite] input[name=email]", other);
  await admin.selectOption("[data-testid=invite] select[name=role]", "ADMIN");
  await admin.click("[data-testid=invite] button[type=submit]");
  const dead = await admin.locator("[data-testid=one-time-link]").inputValue({ timeout: 5_000 });
  const invitation = admin.locator(`[data-testid=invitation-row][data-email="${other}"]`);
  await invitation.and(admin.locator("[data-state=PENDING]")).locator("[data-testid=revoke]").click();
  await invitation.and(admin.locator("[data-state=REVOKED]")).waitFor({ timeout: 5_000 });
  const revoked = await (await chrome.newContext()).newPage();
  await revoked.goto(dead);
  await revoked.locator("[data-testid=invitation-problem]").waitFor({ timeout: 5_000 });
  await revoked.context().close();
  return password;
}

/** Waits until `page` shows the sign-in form with the session-ended notice; returns the ms. */
async function signedOut(page, what) {
  const started = Date.now();
  await page.locator("[data-testid=signed-out]").waitFor({ timeout: SIGN_OUT_MS }).catch(async (e) => {
    await screenshot(page, `signed-out-missing-${what}`);
    throw new Error(`${what}: the page was not signed out within ${SIGN_OUT_MS} ms (${e.message})`);
  });
  assert.equal(await token(page), null, "the token is gone");
  return Date.now() - started;
}

/** (b) Disabling, promoting, demoting, then deleting the invitee signs their open pages out:
 * the live page through its socket (closed 4403), a page without a socket at its next query
 * (UNAUTHENTICATED). */
export async function revokeSessions(chrome, base, admin, invitee, { cardPath, cardholderId }) {
  const { page, email, password } = invitee;
  // Earlier flows (a password change, a reset) have ended this page's session: start afresh.
  await signIn(page, base, email, password);
  await page.goto(`${base}${cardPath}`);
  await live(page);
  // The admin's table was loaded before the invitee accepted.
  await admin.reload();
  await row(admin, email).locator("[data-testid=user-disable]").click();
  await row(admin, email).and(admin.locator("[data-disabled=true]")).waitFor({ timeout: 5_000 });
  const disabledAt = Date.now();
  await signedOut(page, "disabled, live page");
  console.log(`user disabled -> their live page signed out: ${Date.now() - disabledAt} ms`);
  await screenshot(page, "signed-out");

  // Disabled, they cannot sign in.
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.locator(".login [role=alert]").waitFor({ timeout: 5_000 });
  assert.equal(await token(page), null);

  // Enabled again, they can sign in. A role change ends their sessions too, so that they sign
  // in again as what they now are: promoted, then demoted, their live page signs out each time.
  await row(admin, email).locator("[data-testid=user-enable]").click();
  await row(admin, email).and(admin.locator("[data-disabled=false]")).waitFor({ timeout: 5_000 });
  for (const role of ["ADMIN", "CARDHOLDER"]) {
    await signIn(page, base, email, password);
    await page.goto(`${base}${cardPath}`);
    await live(page);
    await row(admin, email).locator("[data-testid=user-role]").selectOption(role);
    await signedOut(page, `role changed to ${role}`);
    assert.equal(await row(admin, email).locator("[role=alert]").count(), 0, "the role change was accepted");
  }
  // Back to the cardholder they had (what a role change does to the list is the server's call).
  const holders = row(admin, email).locator("[data-testid=user-cardholders]");
  await holders.fill(cardholderId);
  if (await row(admin, email).locator("[data-testid=user-cardholders-save]").count()) {
    await row(admin, email).locator("[data-testid=user-cardholders-save]").click();
    await row(admin, email).locator("[data-testid=user-cardholders-save]").waitFor({ state: "detached", timeout: 5_000 });
  }

  // Deleted, both an open live page and a quiet one sign out.
  await signIn(page, base, email, password);
  await page.goto(`${base}${cardPath}`);
  await live(page);
  const quiet = await page.context().newPage(); // a tab of its own: sessionStorage is per tab
  await signIn(quiet, base, email, password);
  await quiet.goto(`${base}/account`);
  await quiet.waitForSelector("[data-testid=change-password]");

  await row(admin, email).locator("[data-testid=user-delete]").click();
  await row(admin, email).locator("[data-testid=user-delete-confirm]").click();
  await row(admin, email).waitFor({ state: "detached", timeout: 5_000 });
  const deletedAt = Date.now();
  await signedOut(page, "deleted, live page");
  console.log(`user deleted -> their live page signed out: ${Date.now() - deletedAt} ms`);
  await quiet.click("a.brand"); // the next query answers UNAUTHENTICATED
  await signedOut(quiet, "deleted, page without a socket");
  await quiet.close();
}

/** (d) Changing one's password: a wrong current one is refused without signing out; the right
 * one keeps this tab signed in, signs the user's other sessions out, and the new password works. */
export async function changePassword(chrome, base, { email, password }, { cardPath }) {
  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
  const other = await context.newPage();
  await signIn(other, base, email, password);
  await other.goto(`${base}${cardPath}`);
  await live(other);
  const page = await context.newPage();
  await signIn(page, base, email, password);
  await page.click("[data-testid=account]");
  const form = page.locator("[data-testid=change-password]");
  await form.waitFor();
  const next = `${password} and more`;
  await form.locator("input[name=current]").fill(`${password}-wrong`);
  await form.locator("input[name=password]").fill(next);
  await form.locator("input[name=repeat]").fill(next);
  await form.locator("button[type=submit]").click();
  await form.locator("[role=alert]").waitFor({ timeout: 5_000 });
  assert.ok(await token(page), "a wrong current password does not sign out");

  await form.locator("input[name=current]").fill(password);
  await form.locator("button[type=submit]").click();
  await page.locator("[data-testid=password-changed]").waitFor({ timeout: 5_000 });
  await screenshot(page, "password-changed");
  await signedOut(other, "the user's other session");
  // This tab stays signed in on the new token: a query works.
  await page.click("a.brand");
  await page.waitForURL(/\/cards\//, { timeout: 5_000 });
  await page.waitForSelector("[data-testid=tile-total]", { timeout: 5_000 });

  await page.click("[data-testid=sign-out]");
  await page.waitForSelector("form.login");
  assert.equal(await token(page), null);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.getByText("That email and password do not match.").waitFor({ timeout: 5_000 });
  await signIn(page, base, email, next);
  await context.close();
  return next;
}

/** Records what the Content-Security-Policy refuses on `page`, from the moment it is called. */
export async function watchCsp(page) {
  const refused = [];
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      // The console line below is how the test learns of it; no secrets are in these fields.
      console.warn(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  page.on("console", (m) => {
    const text = m.text();
    if (text.startsWith("CSP violation:") || text.includes("Refused to") || text.includes("Content Security Policy")) refused.push(text);
  });
  return refused;
}

/** The hash chromium reports for react-remove-scroll-bar's scroll-lock style (no scrollbar gap). */
const SCROLL_LOCK = "sha256-nzTgYzXYDNe6BAHiiI7NNlfK8n/auuOAhh2t92YvuXo=";

/** (c) The dashboard's main screens and GraphiQL under the API's policy: nothing refused. */
export async function cspClean(chrome, base, { cardId, expectHeader = true }) {
  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const refused = await watchCsp(page);
  const response = await page.goto(`${base}/login`);
  if (expectHeader) assert.match(response.headers()["content-security-policy"] ?? "", /script-src 'self'/, "the API sends its policy");
  await signIn(page, base, ADMIN.email, ADMIN.password);
  await page.goto(`${base}/cards/${cardId}`);
  await page.waitForSelector("[data-testid=chart] canvas", { timeout: 10_000 });
  await live(page); // the subscription socket: connect-src 'self' must cover ws://
  await page.waitForSelector("[data-testid=categories] .bar");
  await page.locator("[data-testid=activity] tbody tr td:nth-child(2) a").first().click();
  await page.waitForSelector("[data-testid=authorization]");
  await page.goto(`${base}/admin`);
  await page.waitForSelector("[data-testid=users]");
  await page.waitForSelector("[data-testid=policy]");
  await page.goto(`${base}/account`);
  await page.waitForSelector("[data-testid=change-password]");
  // Signed out: the sign-in form and a dead invitation link.
  const anonymous = await (await chrome.newContext()).newPage();
  const refusedAnonymous = await watchCsp(anonymous);
  await anonymous.goto(`${base}/invitation#not-a-real-token`);
  await anonymous.locator("[data-testid=invitation-problem]").waitFor({ timeout: 5_000 });
  await anonymous.context().close();
  assert.deepEqual([...refused, ...refusedAnonymous], [], "nothing refused on the dashboard's screens");

  // GraphiQL in the same tab, so it runs signed in: a query answers and the schema loads
  // (GraphiQL introspects; the documentation explorer lists the root types).
  await page.goto(`${base}/graphql`);
  await page.waitForSelector(".graphiql-container", { timeout: 15_000 });
  // The editor takes the default query a moment after the page shows: a click before that
  // runs an empty document. Wait for the query, then run it (again if the first click came
  // too early all the same), and keep a screenshot if no answer shows.
  await page.locator(".graphiql-query-editor").getByText("viewer").first().waitFor({ timeout: 10_000 });
  const answer = page.locator(".graphiql-response").getByText('"viewer"');
  for (let attempt = 1; ; attempt += 1) {
    await page.click(".graphiql-execute-button");
    try {
      await answer.waitFor({ timeout: 5_000 });
      break;
    } catch (e) {
      await screenshot(page, `graphiql-no-answer-${attempt}`);
      if (attempt === 3) throw e;
    }
  }
  await page.locator("[aria-label='Show Documentation Explorer']").click();
  const docs = page.locator(".graphiql-doc-explorer");
  await docs.getByText("Query").first().waitFor({ timeout: 10_000 }).catch(async (e) => {
    await screenshot(page, "graphiql-no-schema");
    throw new Error(`GraphiQL's schema did not load: ${(await docs.textContent())?.trim()} (${e.message})`);
  });
  await screenshot(page, "graphiql");
  assert.deepEqual(refused, [], "nothing refused on GraphiQL");
  // GraphiQL's dialogs (Radix) insert a <style> that locks the page's scroll while they are
  // open; style-src 'self' refuses it. The GraphiQL page never scrolls, so that style has
  // nothing to do and the dialog works without it: this one refusal is expected, nothing else.
  await page.click("button[aria-label='Open settings dialog']");
  await page.getByRole("dialog").getByText("Persist headers").waitFor({ timeout: 5_000 });
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "detached", timeout: 5_000 });
  const unexpected = refused.filter((r) => !r.includes(SCROLL_LOCK) && !/^CSP violation: style-src-elem blocked inline at \S+\/assets\/graphiql-/.test(r));
  assert.deepEqual(unexpected, [], "only the dialog's scroll-lock style refused");
  await context.close();
}
