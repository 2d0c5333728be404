// The dashboard in a real browser (Debian's chromium, headless) against `cardstream dev`:
// sign-in, tiles against the database, a purchase arriving live, filters and pagination, the
// authorization view, another holder's card by URL, the admin's policy edit reaching the
// gateway, invitations, revocable sessions, password changes, and the Content-Security-Policy
// (those flows are in accounts.mjs, shared with contract.test.mjs). Screenshots of each screen
// go to web/test-results/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import {
  authorizationEvent, browser, live, postWebhook, psql, screenshot, signIn, simulate, startDev, waitFor,
} from "./harness.mjs";
import { adminPage, changePassword, cspClean, inviteAndAccept, resetAndRevoke, revokeSessions } from "./accounts.mjs";

const BINARY = process.env.CARDSTREAM_BIN ?? new URL("../../target/debug/cardstream", import.meta.url).pathname;
const SEED = 11;
const CARDS = 12;
let dev, chrome, page, holder, cards;

const digits = (s) => s.replace(/[^0-9]/g, "").replace(/^0+/, "") || "0";

before(async () => {
  dev = await startDev({ seed: SEED, cards: CARDS });
  // The same seed and card count as `dev` (whose own simulator is off): its world, with history.
  await simulate(BINARY, dev, { seed: SEED, cards: CARDS, count: 1500 });
  holder = psql(dev.database, "SELECT cardholder_id FROM user_cardholders uc JOIN users u ON u.id = uc.user_id WHERE u.email = 'demo@cardstream.dev'");
  cards = psql(dev.database, `SELECT c.id, c.currency, count(a.id) FROM cards c LEFT JOIN authorizations a ON a.card_id = c.id
    WHERE c.cardholder_id = '${holder}' GROUP BY c.id, c.currency ORDER BY count(a.id) DESC, c.id`)
    .split("\n").map((l) => { const [id, currency, n] = l.split("|"); return { id, currency, n: Number(n) }; });
  chrome = await browser();
  page = await chrome.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, dev.api, "demo@cardstream.dev", "cardstream-demo");
});

after(async () => {
  await chrome?.close();
  await dev?.stop();
});

test("the demo cardholder lands on a card whose tiles equal the database", async () => {
  await page.waitForURL(/\/cards\//);
  const card = cards[0];
  await page.goto(`${dev.api}/cards/${card.id}`);
  await page.getByRole("button", { name: "All time" }).click();
  await page.waitForSelector("[data-testid=tile-total]");
  const [spend, captures, approved, declined] = psql(dev.database,
    `SELECT coalesce(sum(spend),0), coalesce(sum(captures),0), coalesce(sum(approved),0), coalesce(sum(declined),0)
     FROM card_daily_spend WHERE card_id = '${card.id}' AND currency = '${card.currency}'`).split("|").map(Number);
  const text = async (id) => (await page.textContent(`[data-testid=${id}] .value`)).trim();
  await waitFor("the all-time tiles", async () => digits(await text("tile-total")) === String(Math.abs(spend)));
  assert.equal(digits(await text("tile-total")), String(Math.abs(spend)));
  assert.equal(await text("tile-purchases"), String(captures));
  const rate = approved + declined === 0 ? "—" : `${Math.round((100 * approved) / (approved + declined))}%`;
  assert.equal(await text("tile-approval"), rate);
  assert.ok(cards.length >= 1 && card.n >= 1, "the demo holder has activity");
  await screenshot(page, "dashboard");
  const phone = await chrome.newPage({ viewport: { width: 390, height: 844 } });
  await signIn(phone, dev.api, "demo@cardstream.dev", "cardstream-demo");
  await phone.goto(`${dev.api}/cards/${card.id}`);
  await phone.waitForSelector("[data-testid=activity]");
  await screenshot(phone, "dashboard-phone");
  await phone.close();
});

test("a purchase appears live, within 2 s of the webhook's 200, and moves the tiles", async () => {
  const card = cards[0];
  await page.goto(`${dev.api}/cards/${card.id}`);
  await page.waitForSelector("[data-testid=activity]");
  const detail = async () => (await page.textContent("[data-testid=tile-approval] .detail")).trim();
  const before = await detail();
  const merchant = `Live Test Bakery ${Date.now()}`;
  const event = authorizationEvent("issuing_authorization.created", {
    card: card.id, holder, currency: card.currency, amount: 1234, category: "bakeries", merchant, approved: true,
  });
  await live(page);
  const posted = await postWebhook(dev.webhooks, "/webhooks/stripe", event);
  assert.equal(posted.status, 200);
  const answered = Date.now();
  await page.getByText(merchant).waitFor({ timeout: 2_000 });
  const elapsed = Date.now() - answered;
  await waitFor("the tiles to move", async () => (await detail()) !== before, 2_000);
  console.log(`webhook 200 -> row on screen: ${elapsed} ms; approvals tile ${before} -> ${await detail()}`);
  assert.ok(elapsed <= 2_000, `${elapsed} ms`);
  await screenshot(page, "live");
});

test("filters and pagination return what they say", async () => {
  const card = cards[0];
  // A decline and a merchant of our own, so both filters have something to find.
  const declined = authorizationEvent("issuing_authorization.created", {
    card: card.id, holder, currency: card.currency, amount: 999, category: "florists", merchant: "Filter Test Florist", approved: false,
  });
  assert.equal((await postWebhook(dev.webhooks, "/webhooks/stripe", declined)).status, 200);
  await page.goto(`${dev.api}/cards/${card.id}`);
  await page.getByText("Filter Test Florist").waitFor({ timeout: 5_000 });
  await page.selectOption("select[name=status]", "DECLINED");
  await waitFor("declined rows only", async () => {
    const badges = await page.locator("[data-testid=activity] .badge").allTextContents();
    return badges.length > 0 && badges.every((b) => b === "declined");
  }, 5_000);
  const expectedDeclined = Number(psql(dev.database, `SELECT count(*) FROM authorizations WHERE card_id = '${card.id}' AND NOT approved AND status <> 'pending'`));
  assert.equal(await page.locator("[data-testid=activity] tbody tr").count(), Math.min(20, expectedDeclined));
  await page.selectOption("select[name=status]", "");
  await page.fill("input[name=merchant]", "filter test");
  let names = [];
  try {
    await waitFor("the merchant filter", async () => {
      names = await page.locator("[data-testid=activity] tbody td:nth-child(2)").allTextContents();
      return names.length === 1 && names[0] === "Filter Test Florist";
    }, 5_000);
  } catch (e) {
    await screenshot(page, "filters-failed");
    throw new Error(`${e.message}; rows show ${JSON.stringify(names)}`);
  }
  await screenshot(page, "filters");
  await page.getByRole("button", { name: "Clear" }).click();
  // Category: only the florist purchase is in "florists" on this card.
  const florists = Number(psql(dev.database, `SELECT count(*) FROM authorizations WHERE card_id = '${card.id}' AND merchant_category = 'florists'`));
  await page.selectOption("select[name=category]", "florists");
  await waitFor("the category filter", async () => {
    const categories = await page.locator("[data-testid=activity] tbody td:nth-child(3)").allTextContents();
    return categories.length === Math.min(20, florists) && categories.every((c) => c === "florists");
  }, 5_000);
  // Dates: nothing happened after tomorrow.
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  await page.fill("input[name=from]", tomorrow);
  await page.getByText("No activity matches.").waitFor({ timeout: 5_000 });
  await page.getByRole("button", { name: "Clear" }).click();
  const total = Number(psql(dev.database, `SELECT count(*) FROM authorizations WHERE card_id = '${card.id}'`));
  await waitFor("the first page", async () => (await page.locator("[data-testid=activity] tbody tr").count()) === Math.min(20, total), 5_000);
  assert.ok(total > 20, `the busiest demo card has ${total} authorizations`);
  await page.click("[data-testid=more]");
  await waitFor("the second page", async () => (await page.locator("[data-testid=activity] tbody tr").count()) === Math.min(40, total), 5_000);
  const ids = await page.locator("[data-testid=activity] tbody tr").evaluateAll((rows) => rows.map((r) => r.dataset.id));
  assert.equal(new Set(ids).size, ids.length, "no row twice across pages");
});

test("an authorization opens with its request history and transactions", async () => {
  await page.locator("[data-testid=activity] tbody tr td:nth-child(2) a").first().click();
  await page.waitForSelector("[data-testid=authorization]");
  await page.getByText("Request history").waitFor();
  await screenshot(page, "authorization");
});

test("another cardholder's card cannot be opened by URL", async () => {
  const other = psql(dev.database, `SELECT id FROM cards WHERE cardholder_id <> '${holder}' ORDER BY id LIMIT 1`);
  assert.ok(other.startsWith("ic_"));
  await page.goto(`${dev.api}/cards/${other}`);
  const alert = page.locator("[role=alert][data-code=NOT_FOUND]");
  await alert.waitFor({ timeout: 5_000 });
  assert.equal(await page.locator("[data-testid=tile-total]").count(), 0);
  await screenshot(page, "not-yours");
});

test("the admin blocks a category and the next authorization request is declined for it", async () => {
  // The quietest card, far from dev's daily limit, so only the category can decline it.
  const [id, owner, currency] = psql(dev.database, `SELECT c.id, c.cardholder_id, c.currency FROM cards c
    LEFT JOIN authorizations a ON a.card_id = c.id GROUP BY c.id ORDER BY count(a.id), c.id LIMIT 1`).split("|");
  const request = () => postWebhook(dev.webhooks, "/webhooks/stripe/authorization", authorizationEvent("issuing_authorization.request", {
    card: id, holder: owner, currency, amount: 500, category: "book_stores", merchant: "Policy Test Books",
  }));
  const before = await request();
  assert.equal(before.status, 200);
  assert.equal(before.body.approved, true, JSON.stringify(before.body));

  const admin = await chrome.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(admin, dev.api, "admin@cardstream.dev", "cardstream-admin");
  await admin.goto(`${dev.api}/admin`);
  await admin.waitForSelector("[data-testid=policy]");
  await screenshot(admin, "admin");
  // The editor starts from the policy in force (dev saved its own); add one category to it.
  assert.equal(await admin.inputValue("input[name=blockedCategories]"), "betting_casino_gambling");
  assert.match(await admin.inputValue("input[name=dailyLimit]"), /usd=300000/);
  await admin.fill("input[name=blockedCategories]", "betting_casino_gambling, book_stores");
  await admin.click("[data-testid=policy] button[type=submit]");
  await admin.getByText(/Saved as version/).waitFor({ timeout: 5_000 });
  const saved = Date.now();
  const after = await waitFor("the gateway to apply the policy", async () => {
    const answer = await request();
    return answer.body.approved === false ? answer : null;
  }, 15_000);
  console.log(`policy saved -> gateway declines: ${Date.now() - saved} ms`);
  assert.equal(after.body.metadata.cardstream_reason, "category_blocked");
  await screenshot(admin, "admin-saved");
  await admin.close();
});

// Invitations and sessions. The invitee sees the demo holder's cards, so their page has a live
// socket for the server to close when it ends their session.
let invitee, people;

test("an admin invites someone; the link opened elsewhere sets a password and signs them in", async () => {
  people = await adminPage(chrome, dev.api);
  invitee = await inviteAndAccept(chrome, dev.api, people, { cardholderId: holder });
  await invitee.page.waitForURL(/\/cards\//);
});

test("a password change keeps the tab signed in, signs the other sessions out, and the new password works", async () => {
  invitee.password = await changePassword(chrome, dev.api, invitee, { cardPath: `/cards/${cards[0].id}` });
});

test("an admin's password reset link sets a new password; a revoked invitation's link is dead", async () => {
  invitee.password = await resetAndRevoke(chrome, dev.api, people, invitee);
});

test("disabling, promoting, demoting, then deleting a user signs their open pages out within seconds", async () => {
  await revokeSessions(chrome, dev.api, people, invitee, { cardPath: `/cards/${cards[0].id}`, cardholderId: holder });
  await people.context().close();
});

test("no Content-Security-Policy violation on the dashboard's main screens or on GraphiQL (/graphql)", async () => {
  await cspClean(chrome, dev.api, { cardId: cards[0].id });
});
