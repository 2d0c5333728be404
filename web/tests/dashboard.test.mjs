// The dashboard in a real browser (Debian's chromium, headless) against `cardstream dev`:
// sign-in, tiles against the database, a purchase arriving live, filters and pagination, the
// authorization view, another holder's card by URL, the admin's policy edit reaching the
// gateway, invitations, revocable sessions, password changes, and the Content-Security-Policy
// (those flows are in accounts.mjs, shared with contract.test.mjs). Screenshots of each screen
// go to web/test-results/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { isDeepStrictEqual } from "node:util";
import {
  PAGE, authorizationEvent, browser, live, money, postWebhook, psql, psqlJson, screenshot, signIn, simulate, startDev, waitFor, when,
} from "./harness.mjs";
import { adminPage, changePassword, cspClean, inviteAndAccept, resetAndRevoke, revokeSessions } from "./accounts.mjs";

const BINARY = process.env.CARDSTREAM_BIN ?? new URL("../../target/debug/cardstream", import.meta.url).pathname;
const SEED = 11;
const CARDS = 12;
let dev, chrome, page, holder, cards;

// What the dashboard shows, worked out from the database. Amounts are whole formatted strings
// (`money`), dates as the page's fixed locale and time zone write them (`when`), rows in the
// API's order (newest first, then by id).

/** An authorization's outcome as its badge says it. */
const outcome = (a) => (a.approved ? "approved" : a.status === "pending" ? "pending" : "declined");
const words = (s) => s.replaceAll("_", " ");
/** The reasons the dev world produces, in the dashboard's plain words (web/src/reasons.ts). */
const REASONS = {
  card_inactive: "the card is not active", insufficient_funds: "not enough funds in the Issuing balance",
  suspected_fraud: "Stripe suspected fraud", verification_failed: "the card's details did not verify (CVC, expiry or address)",
  webhook_approved: "approved by cardstream", webhook_declined: "declined by cardstream",
  webhook_error: "cardstream's answer could not be read", webhook_timeout: "cardstream did not answer within Stripe's 2 seconds",
  approved: "approved", amount_over_limit: "over the most allowed for one purchase",
  category_blocked: "the merchant's category is blocked", daily_limit_exceeded: "over the card's daily limit",
  monthly_limit_exceeded: "over the card's monthly limit", spend_unknown: "the card's spend could not be checked",
  partially_approved: "partially approved",
};
const reasonText = (r) => REASONS[r] ?? words(r);

/** The rows the activity table should show for `where` on `card`: at most `limit`, newest first. */
function activityRows(cardId, where = "TRUE", limit = 20) {
  return psqlJson(dev.database, `SELECT id, created, merchant_name, merchant_category, requested_amount, currency, approved,
      status, cardstream_reason, decline_reason, merchant_amount, merchant_currency,
      (SELECT coalesce(json_agg(t.amount ORDER BY t.created, t.id), '[]') FROM transactions t
        WHERE t.authorization_id = a.id AND t.kind = 'refund') AS refunds
    FROM authorizations a WHERE card_id = '${cardId}' AND (${where}) ORDER BY created DESC, id DESC LIMIT ${limit}`,
  "created DESC, id DESC").map((a) => ({
    id: a.id,
    date: when(a.created),
    merchant: a.merchant_name ?? "Unknown merchant",
    category: words(a.merchant_category),
    // Amounts read one way: what was spent, positive; a decline is an attempt; a reversal and
    // each refund are marked beside it. A purchase abroad shows the merchant's amount first:
    // "€12.00 → $13.05".
    amount: `${a.merchant_currency && a.merchant_currency !== a.currency ? `${money(a.merchant_amount, a.merchant_currency)} → ` : ""}${
      money(a.requested_amount, a.currency)}${!a.approved ? " attempted" : a.status === "reversed" ? " reversed" : ""}${
      a.approved ? a.refunds.map((r) => ` · ${money(r, a.currency)} refunded`).join("") : ""}`,
    status: outcome(a),
    reason: outcome(a) === "declined" ? reasonText(a.cardstream_reason ?? a.decline_reason ?? "") : "",
  }));
}

/** The activity table's rows as shown, cell by cell. */
async function shownRows() {
  return page.locator("[data-testid=activity] tbody tr").evaluateAll((rows) => rows.map((tr) => {
    const [date, merchant, category, amount, status] = tr.querySelectorAll("td");
    const text = (node) => (node?.textContent ?? "").replace(/\s+/g, " ").trim();
    return {
      id: tr.dataset.id, date: text(date), merchant: text(merchant), category: text(category), amount: text(amount),
      status: text(status.querySelector(".badge")), reason: text(status.querySelector(".reason")),
    };
  }));
}

/** Waits until the table shows exactly `expected` (an empty list: the "no activity" note), and
 * the "Show more" button exactly when the database holds more; fails with the difference. */
async function expectRows(expected, { more = false, what }) {
  let shown = null;
  const matches = async () => {
    shown = await shownRows();
    const note = expected.length > 0 || (await page.getByText("No activity matches.").count()) === 1;
    return note && isDeepStrictEqual(shown, expected) && (await page.locator("[data-testid=more]").count()) === (more ? 1 : 0);
  };
  try {
    await waitFor(what, matches, 10_000);
  } catch (e) {
    await screenshot(page, `rows-${what.replace(/\W+/g, "-")}`);
    assert.deepEqual(shown, expected, `${what}: ${e.message}`);
    assert.equal(await page.locator("[data-testid=more]").count(), more ? 1 : 0, `${what}: "Show more" ${more ? "missing" : "shown"}`);
    throw e;
  }
}

/** How many of `card`'s authorizations match `where`. */
const countWhere = (cardId, where) => Number(psql(dev.database, `SELECT count(*) FROM authorizations WHERE card_id = '${cardId}' AND (${where})`));

before(async () => {
  // Processes report to the health page every second, not every 10 s, so its test waits less.
  dev = await startDev({ seed: SEED, cards: CARDS, env: { CARDSTREAM_STATUS_INTERVAL: "1s" } });
  // The same seed and card count as `dev` (whose own simulator is off): its world, with history.
  await simulate(BINARY, dev, { seed: SEED, cards: CARDS, count: 1500 });
  holder = psql(dev.database, "SELECT cardholder_id FROM user_cardholders uc JOIN users u ON u.id = uc.user_id WHERE u.email = 'demo@cardstream.dev'");
  cards = psql(dev.database, `SELECT c.id, c.currency, count(a.id) FROM cards c LEFT JOIN authorizations a ON a.card_id = c.id
    WHERE c.cardholder_id = '${holder}' GROUP BY c.id, c.currency ORDER BY count(a.id) DESC, c.id`)
    .split("\n").map((l) => { const [id, currency, n] = l.split("|"); return { id, currency, n: Number(n) }; });
  chrome = await browser();
  page = await chrome.newPage({ viewport: { width: 1280, height: 900 }, ...PAGE });
  await signIn(page, dev.api, "demo@cardstream.dev", "cardstream-demo");
});

after(async () => {
  await chrome?.close();
  await dev?.stop();
});

/** The tiles for all time as the dashboard should show them, from the facts (transactions and
 * authorizations) rather than the rollups the API reads: spend is captures minus refunds
 * (Stripe's captures are negative, so it is minus their sum), in the card's currency. */
function expectedTiles(card) {
  const [t] = psqlJson(dev.database, `SELECT
      coalesce(-sum(amount) FILTER (WHERE kind IN ('capture', 'refund')), 0) AS spend,
      count(*) FILTER (WHERE kind = 'capture') AS captures
    FROM transactions WHERE card_id = '${card.id}' AND currency = '${card.currency}'`);
  const [a] = psqlJson(dev.database, `SELECT count(*) FILTER (WHERE approved) AS approved,
      count(*) FILTER (WHERE NOT approved AND status <> 'pending') AS declined
    FROM authorizations WHERE card_id = '${card.id}' AND currency = '${card.currency}'`);
  const spend = Number(t.spend);
  const decided = a.approved + a.declined;
  return {
    total: money(spend, card.currency),
    // The API divides in integers (towards zero).
    average: t.captures === 0 ? "—" : money(Math.trunc(spend / t.captures), card.currency),
    purchases: String(t.captures),
    approval: decided === 0 ? "—" : `${Math.round((a.approved / decided) * 100)}%`,
    detail: `${a.approved} approved · ${a.declined} declined`,
  };
}

/** The tiles as shown. */
async function shownTiles() {
  const text = async (id, part = "value") => (await page.textContent(`[data-testid=${id}] .${part}`)).trim();
  return {
    total: await text("tile-total"), average: await text("tile-average"), purchases: await text("tile-purchases"),
    approval: await text("tile-approval"), detail: await text("tile-approval", "detail"),
  };
}

/** Waits until the tiles equal the database's; fails with the difference. */
async function expectTiles(card, what) {
  let shown = null;
  let expected = null;
  try {
    await waitFor(what, async () => {
      expected = expectedTiles(card);
      shown = await shownTiles();
      return isDeepStrictEqual(shown, expected);
    }, 10_000);
  } catch (e) {
    assert.deepEqual(shown, expected, `${what}: ${e.message}`);
    throw e;
  }
}

test("the demo cardholder lands on a card whose tiles equal the database", async () => {
  await page.waitForURL(/\/cards\//);
  const card = cards[0];
  assert.ok(cards.length >= 1 && card.n >= 1, "the demo holder has activity");
  await page.goto(`${dev.api}/cards/${card.id}`);
  await page.getByRole("button", { name: "All time" }).click();
  await page.waitForSelector("[data-testid=tile-total]");
  await expectTiles(card, "the all-time tiles");
  await screenshot(page, "dashboard");
  const phone = await chrome.newPage({ viewport: { width: 390, height: 844 } });
  await signIn(phone, dev.api, "demo@cardstream.dev", "cardstream-demo");
  await phone.goto(`${dev.api}/cards/${card.id}`);
  await phone.waitForSelector("[data-testid=activity]");
  await screenshot(phone, "dashboard-phone");
  await phone.close();
});

/** Posts a purchase (approved unless said) on `card` and returns its authorization's id. */
async function purchase(card, { amount, merchant, category = "bakeries", approved = true, created }) {
  const event = authorizationEvent("issuing_authorization.created", {
    card: card.id, holder, currency: card.currency, amount, category, merchant, approved, created,
  });
  const posted = await postWebhook(dev.webhooks, "/webhooks/stripe", event);
  assert.equal(posted.status, 200, JSON.stringify(posted.body));
  return event.data.object.id;
}

/** Waits until the page's activity subscription is registered on the server. The protocol has
 * no acknowledgement for a subscription, so the only sign is an update arriving: post a small
 * purchase and wait for it to appear without a reload; one posted before the server listened
 * is never pushed, so post another until one shows. */
async function subscribed(card) {
  const probes = [];
  await waitFor("the activity subscription to deliver", async () => {
    probes.push(await purchase(card, { amount: 100, merchant: `Live Probe ${probes.length + 1}` }));
    try {
      await page.locator("[data-testid=activity] tbody tr").filter({ hasText: "Live Probe" }).first().waitFor({ timeout: 2_000 });
      return true;
    } catch {
      return false;
    }
  }, 30_000);
  return probes;
}

test("a purchase appears live, without a reload, as the database holds it, and moves the tiles", async () => {
  const card = cards[0];
  await page.goto(`${dev.api}/cards/${card.id}`);
  await page.waitForSelector("[data-testid=activity]");
  await page.getByRole("button", { name: "All time" }).click();
  await live(page);
  const probes = await subscribed(card);
  await expectTiles(card, "the tiles after the probes");
  const before = (await shownTiles()).detail;
  const merchant = `Live Test Bakery ${Date.now()}`;
  const id = await purchase(card, { amount: 123_456, merchant });
  const answered = Date.now();
  const row = page.locator(`[data-testid=activity] tbody tr[data-id="${id}"]`);
  await row.waitFor({ timeout: 15_000 });
  const elapsed = Date.now() - answered;
  // The row exactly as the database holds it (a true minus and the currency's symbol), in the
  // first page exactly as the database orders it.
  const [expected] = activityRows(card.id, `id = '${id}'`, 1);
  assert.equal(expected.amount, money(123_456, card.currency));
  assert.deepEqual((await shownRows()).find((r) => r.id === id), expected);
  await expectRows(activityRows(card.id), { more: true, what: "the first page with the purchase" });
  await expectTiles(card, "the tiles after the purchase");
  console.log(`webhook 200 -> row on screen: ${elapsed} ms (after ${probes.length} probe(s)); approvals tile ${before} -> ${(await shownTiles()).detail}`);
  await screenshot(page, "live");
});

test("filters and pagination show exactly the database's rows", async () => {
  const card = cards[0];
  // A decline and a merchant of our own, so both filters have something to find.
  const florist = await purchase(card, { amount: 999, category: "florists", merchant: "Filter Test Florist", approved: false });
  await waitFor("the florist's decline folded", async () => countWhere(card.id, `id = '${florist}'`) === 1);
  await page.goto(`${dev.api}/cards/${card.id}`);
  await expectRows(activityRows(card.id), { more: countWhere(card.id, "TRUE") > 20, what: "the first page" });

  const declined = "NOT approved AND status <> 'pending'";
  await page.selectOption("select[name=status]", "DECLINED");
  await expectRows(activityRows(card.id, declined), { more: countWhere(card.id, declined) > 20, what: "declined rows" });
  assert.ok((await shownRows()).some((r) => r.id === florist), "the florist's decline is among them");
  await page.selectOption("select[name=status]", "");

  await page.fill("input[name=merchant]", "filter test");
  await expectRows(activityRows(card.id, "lower(merchant_name) LIKE '%filter test%'"), { what: "the merchant filter" });
  assert.deepEqual((await shownRows()).map((r) => r.merchant), ["Filter Test Florist"]);
  await screenshot(page, "filters");
  await page.getByRole("button", { name: "Clear" }).click();

  await page.selectOption("select[name=category]", "florists");
  const florists = "merchant_category = 'florists'";
  await expectRows(activityRows(card.id, florists), { more: countWhere(card.id, florists) > 20, what: "the category filter" });
  await page.getByRole("button", { name: "Clear" }).click();

  // Dates: the simulator's traffic is all of today, so purchases of our own on earlier days, at
  // the edges of a range of whole UTC days (from 7 to 5 days ago): its first and last second
  // are in, the seconds either side of it are out, and so is everything since.
  const today = Math.floor(Date.now() / 86_400_000);
  const [first, last] = [today - 7, today - 5];
  const edges = [
    { created: first * 86_400 - 1, merchant: "Dated Test before" },
    { created: first * 86_400, merchant: "Dated Test first second" },
    { created: (first + 1) * 86_400 + 43_200, merchant: "Dated Test middle" },
    { created: (last + 1) * 86_400 - 1, merchant: "Dated Test last second" },
    { created: (last + 1) * 86_400, merchant: "Dated Test after" },
  ];
  const dated = [];
  for (const e of edges) dated.push(await purchase(card, { amount: 2_500, ...e }));
  await waitFor("the dated purchases folded", async () => countWhere(card.id, `id IN ('${dated.join("','")}')`) === dated.length);
  const date = (day) => new Date(day * 86_400_000).toISOString().slice(0, 10);
  const inRange = `created >= ${first * 86_400} AND created < ${(last + 1) * 86_400}`;
  await page.fill("input[name=from]", date(first));
  await page.fill("input[name=to]", date(last));
  await expectRows(activityRows(card.id, inRange), { what: `${date(first)} to ${date(last)}` });
  assert.deepEqual((await shownRows()).map((r) => r.merchant),
    ["Dated Test last second", "Dated Test middle", "Dated Test first second"]);
  await screenshot(page, "filter-dates");
  // A range after the last activity shows none.
  const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
  await page.fill("input[name=to]", "");
  await page.fill("input[name=from]", tomorrow);
  await expectRows([], { what: "after tomorrow" });
  await page.getByRole("button", { name: "Clear" }).click();

  // Pagination: the first page, then the first two, exactly, with no row twice.
  const total = countWhere(card.id, "TRUE");
  assert.ok(total > 40, `the busiest demo card has ${total} authorizations`);
  await expectRows(activityRows(card.id), { more: true, what: "the first page again" });
  await page.click("[data-testid=more]");
  await expectRows(activityRows(card.id, "TRUE", 40), { more: true, what: "the first two pages" });
  const ids = (await shownRows()).map((r) => r.id);
  assert.equal(new Set(ids).size, ids.length, "no row twice across pages");
});

/** The authorization page's checks as they should read, from the stored verification_data. */
function checksOf(v) {
  if (!v) return ["Stripe sent no checks."];
  const check = (c) => ({ match: "matched", mismatch: "did not match" })[c] ?? (c == null ? "not sent" : words(c));
  return [`CVC: ${check(v.cvc_check)}`, `Expiry: ${check(v.expiry_check)}`, `Address: ${check(v.address_line1_check)}`,
    `Postal code: ${check(v.address_postal_code_check)}`, `3-D Secure: ${v.three_d_secure?.result ? words(v.three_d_secure.result) : "not used"}`];
}

function networkOf(n) {
  if (!n) return [];
  return [`Network: transaction ${n.transaction_id ?? "—"}, acquirer ${n.acquiring_institution_id ?? "—"}${
    n.system_trace_audit_number ? `, trace ${n.system_trace_audit_number}` : ""}`];
}

/** An authorization's page as it should be, from its row, its request history and its
 * transactions in the database. */
function expectedAuthorization(id) {
  const [a] = psqlJson(dev.database, `SELECT * FROM authorizations WHERE id = '${id}'`);
  const transactions = psqlJson(dev.database, `SELECT id, kind, amount, currency, created FROM transactions
    WHERE authorization_id = '${id}'`, "created, id");
  const history = Array.isArray(a.request_history) ? a.request_history : [];
  const m = a.merchant_name ?? "Unknown merchant";
  return {
    heading: `${m} · ${money(a.requested_amount, a.currency)}`,
    lines: [
      "← Back to the card",
      ...(a.merchant_currency && a.merchant_currency !== a.currency
        ? [`Abroad: ${money(a.merchant_amount, a.merchant_currency)} → ${money(a.requested_amount, a.currency)} on the card`] : []),
      `${outcome(a)} ${a.status} · ${when(a.created)} · ${words(a.merchant_category)}`
        + `${a.merchant_city ? ` · ${a.merchant_city}` : ""}${a.merchant_country ? `, ${a.merchant_country}` : ""}`,
      ...(outcome(a) === "declined"
        ? [`Declined: ${a.cardstream_reason ?? a.decline_reason ? reasonText(a.cardstream_reason ?? a.decline_reason) : "no reason given"}`] : []),
      ...(a.cardstream_reason === "partially_approved"
        ? ["Partially approved: the request asked for more than the card's spend limit had left, and cardstream approved what was left."] : []),
      `Held now: ${money(a.amount, a.currency)}`,
    ],
    history: history.length === 0 ? ["No decision yet."] : history.slice(0, 10).map((h) =>
      `${when(h.created ?? a.created)}: ${h.approved ? "approved" : "declined"} ${money(h.amount ?? 0, h.currency ?? a.currency)} (${reasonText(h.reason ?? "")})`),
    checks: [...checksOf(a.verification_data), ...networkOf(a.network_data)],
    transactions: transactions.length === 0 ? ["Nothing captured."]
      : transactions.slice(0, 10).map((t) => `${when(t.created)}: ${t.kind} ${money(t.amount, t.currency)}`),
  };
}

/** The authorization page as shown: its heading, its lines, and the two lists. */
async function shownAuthorization() {
  return page.locator("[data-testid=authorization]").evaluate((root) => {
    const text = (node) => node.textContent.replace(/\s+/g, " ").trim();
    const list = (title) => {
      const section = [...root.querySelectorAll("section")].find((s) => text(s.querySelector("h2")) === title);
      return section ? [...section.querySelectorAll("li, p")].map(text) : null;
    };
    return {
      heading: text(root.querySelector("h1")),
      lines: [...root.querySelectorAll(":scope > p")].map(text),
      history: list("Request history"),
      checks: list("Checks"),
      transactions: list("Transactions"),
    };
  });
}

async function expectAuthorization(id) {
  await page.waitForURL(new RegExp(`/authorizations/${id}$`));
  await page.waitForSelector("[data-testid=authorization]");
  assert.deepEqual(await shownAuthorization(), expectedAuthorization(id), id);
}

test("an authorization's page shows its amount, merchant, category, status, reason and transactions as the database holds them", async (t) => {
  const card = cards[0];
  // Opened from the activity table: the newest row (the florist's decline or a later one).
  const first = page.locator("[data-testid=activity] tbody tr").first();
  const firstId = await first.getAttribute("data-id");
  await first.locator("td:nth-child(2) a").click();
  await expectAuthorization(firstId);
  // A captured one with the most kinds of transaction (a capture and a refund, if any), with
  // its city; and the latest decline, one that cardstream decided if there is one (its own
  // reason is shown before Stripe's).
  const captured = psql(dev.database, `SELECT a.id FROM authorizations a JOIN transactions t ON t.authorization_id = a.id
    WHERE a.card_id = '${card.id}' GROUP BY a.id, a.merchant_city
    ORDER BY count(DISTINCT t.kind) DESC, (a.merchant_city IS NOT NULL) DESC, count(*) DESC, a.id LIMIT 1`);
  assert.ok(captured.startsWith("iauth_"), "the card has a captured authorization");
  await page.goto(`${dev.api}/authorizations/${captured}`);
  await expectAuthorization(captured);
  assert.notDeepEqual(expectedAuthorization(captured).transactions, ["Nothing captured."]);
  await screenshot(page, "authorization");
  const declined = psql(dev.database, `SELECT id FROM authorizations WHERE card_id = '${card.id}' AND NOT approved
    AND status <> 'pending' ORDER BY (cardstream_reason IS NOT NULL) DESC, created DESC, id DESC LIMIT 1`);
  await page.goto(`${dev.api}/authorizations/${declined}`);
  await expectAuthorization(declined);
  assert.ok(expectedAuthorization(declined).lines.some((l) => l.startsWith("Declined: ")));
  // A decline for a CVC that did not match, if the simulator has made one on these cards: its
  // checks say so, and its reason reads in words.
  const failed = psql(dev.database, `SELECT id FROM authorizations WHERE card_id IN (${cards.map((c) => `'${c.id}'`).join(",")})
    AND decline_reason = 'verification_failed' ORDER BY created DESC, id DESC LIMIT 1`);
  t.diagnostic(failed ? `verification failed: ${failed}` : "no verification_failed decline on the holder's cards yet");
  if (failed) {
    await page.goto(`${dev.api}/authorizations/${failed}`);
    await expectAuthorization(failed);
    assert.ok(expectedAuthorization(failed).checks.includes("CVC: did not match"));
  }
  // A purchase abroad on the holder's cards, if the simulator has made one yet: the merchant's
  // amount beside the card's.
  const abroad = psql(dev.database, `SELECT id FROM authorizations WHERE card_id IN (${cards.map((c) => `'${c.id}'`).join(",")})
    AND merchant_currency <> currency ORDER BY created DESC, id DESC LIMIT 1`);
  t.diagnostic(abroad ? `abroad: ${abroad}` : "no purchase abroad on the holder's cards yet");
  if (abroad) {
    await page.goto(`${dev.api}/authorizations/${abroad}`);
    await expectAuthorization(abroad);
    await screenshot(page, "authorization-abroad");
  }
});

test("a dispute on a capture shows on its card and on its authorization: won, funds reinstated, spend unchanged", async () => {
  const card = cards[0];
  const [capture] = psqlJson(dev.database, `SELECT id, authorization_id, -amount AS amount, currency FROM transactions
    WHERE card_id = '${card.id}' AND kind = 'capture' AND authorization_id IS NOT NULL AND currency = '${card.currency}'
    ORDER BY created DESC, id DESC LIMIT 1`);
  assert.ok(capture, "the card has a capture to dispute");
  const tilesBefore = expectedTiles(card);
  // Stripe's lifecycle for a won dispute, each step signed and posted to the gateway.
  const id = `idp_web${Date.now()}`;
  const opened = Math.floor(Date.now() / 1000) - 600;
  const steps = [
    ["issuing_dispute.created", "unsubmitted"], ["issuing_dispute.submitted", "submitted"],
    ["issuing_dispute.closed", "won"], ["issuing_dispute.funds_reinstated", "won"],
  ];
  for (const [i, [type, status]] of steps.entries()) {
    const object = {
      id, object: "issuing.dispute", amount: capture.amount, currency: capture.currency, status, transaction: capture.id,
      created: opened, livemode: false, evidence: { reason: "not_received" }, loss_reason: null, metadata: {},
    };
    const event = { id: `evt_${id}_${i}`, object: "event", api_version: "2024-06-20", type, created: opened + 60 * i,
      livemode: false, data: { object } };
    const posted = await postWebhook(dev.webhooks, "/webhooks/stripe", event);
    assert.equal(posted.status, 200, JSON.stringify(posted.body));
  }
  await waitFor("the dispute folded with its funds", async () =>
    psql(dev.database, `SELECT status || ' ' || coalesce(funds_reinstated_at::text, '-') FROM disputes WHERE id = '${id}'`)
      === `won ${opened + 180}`, 30_000);
  const amount = money(capture.amount, capture.currency);
  const expected = `won ${amount} · not received · opened ${new Date(opened * 1000).toLocaleDateString(PAGE.locale, { timeZone: PAGE.timezoneId })}`
    + ` · ${amount} reinstated to the program; spend unchanged`;

  await page.goto(`${dev.api}/cards/${card.id}`);
  const onCard = page.locator(`[data-testid=dispute][data-id=${id}]`);
  await waitFor("the dispute on the card page", async () => (await onCard.count()) > 0, 10_000);
  assert.equal((await onCard.first().textContent()).replace(/\s+/g, " ").trim(), expected);
  // Spend is what was captured: the tiles are what they were before the dispute.
  assert.deepEqual(expectedTiles(card), tilesBefore);
  await expectTiles(card, "tiles after a won dispute");
  await screenshot(page, "card-dispute");

  await page.goto(`${dev.api}/authorizations/${capture.authorization_id}`);
  const onAuthorization = page.locator(`[data-testid=dispute][data-id=${id}]`);
  await waitFor("the dispute on the authorization page", async () => (await onAuthorization.count()) > 0, 10_000);
  assert.equal((await onAuthorization.first().textContent()).replace(/\s+/g, " ").trim(), expected);
  await screenshot(page, "authorization-dispute");
});

test("a card's wallet tokens show on its page as the database holds them", async () => {
  const card = cards[0];
  // A token of its own, provisioned as Stripe does it: requested, then active.
  const id = `intok_web${Date.now()}`;
  const created = Math.floor(Date.now() / 1000) - 300;
  for (const [i, status] of ["requested", "active"].entries()) {
    const object = {
      id, object: "issuing.token", card: card.id, created, status, wallet_provider: "apple_pay", network: "visa",
      last4: "4321", device_fingerprint: "dfp_web", network_updated_at: created + 30 * i, livemode: false,
      network_data: { device: { type: "phone" }, type: "visa" },
    };
    const event = { id: `evt_${id}_${i}`, object: "event", api_version: "2024-06-20",
      type: i === 0 ? "issuing_token.created" : "issuing_token.updated", created: created + 30 * i, livemode: false,
      data: { object } };
    const posted = await postWebhook(dev.webhooks, "/webhooks/stripe", event);
    assert.equal(posted.status, 200, JSON.stringify(posted.body));
  }
  await waitFor("the token folded", async () =>
    psql(dev.database, `SELECT status FROM tokens WHERE id = '${id}'`) === "active", 30_000);
  await page.goto(`${dev.api}/cards/${card.id}`);
  const token = page.locator(`[data-testid=token][data-id=${id}]`);
  await waitFor("the token on the card page", async () => (await token.count()) > 0, 10_000);
  const day = new Date(created * 1000).toLocaleDateString(PAGE.locale, { timeZone: PAGE.timezoneId });
  assert.equal((await token.textContent()).replace(/\s+/g, " ").trim(), `active Apple Pay · phone · token ••4321 · added ${day}`);
  // Every token of the card (the simulator's too), newest first, and no other card's.
  const expected = psql(dev.database, `SELECT id FROM tokens WHERE card_id = '${card.id}' ORDER BY created DESC, id`).split("\n");
  const shown = await page.locator("[data-testid=token]").evaluateAll((rows) => rows.map((r) => r.dataset.id));
  assert.deepEqual(shown, expected);
  await screenshot(page, "card-wallets");
});

test("each screen names itself in the tab's title, and following a link moves focus to the new screen", async () => {
  const card = cards[0];
  await page.goto(`${dev.api}/cards/${card.id}`);
  await page.waitForSelector("[data-testid=activity] tbody tr");
  const last4 = psql(dev.database, `SELECT last4 FROM cards WHERE id = '${card.id}'`);
  await waitFor("the card's title", async () => (await page.title()) === `Card •••• ${last4} · cardstream` || null, 5_000);
  await page.locator("[data-testid=activity] tbody tr a").first().click();
  await page.waitForURL(/\/authorizations\//);
  await waitFor("the authorization's title", async () => (await page.title()) === "Authorization · cardstream" || null, 5_000);
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "MAIN");
  await page.goBack();
  await waitFor("the card's title again", async () => (await page.title()) === `Card •••• ${last4} · cardstream` || null, 5_000);
  assert.equal(await page.evaluate(() => document.activeElement?.tagName), "MAIN");
});

test("on a phone (390 px) every activity row shows its amount and status, and nothing is cut off", async () => {
  const phone = await chrome.newPage({ viewport: { width: 390, height: 844 }, ...PAGE });
  await signIn(phone, dev.api, "demo@cardstream.dev", "cardstream-demo");
  await phone.goto(`${dev.api}/cards/${cards[0].id}`);
  const rows = phone.locator("[data-testid=activity] tbody tr");
  await rows.first().waitFor({ timeout: 10_000 });
  const n = await rows.count();
  assert.ok(n >= 5, `${n} rows`);
  for (let i = 0; i < n; i += 1) {
    for (const cell of ["[data-testid=amount]", ".badge"]) {
      const box = await rows.nth(i).locator(cell).boundingBox();
      assert.ok(box && box.width > 0 && box.x >= 0 && box.x + box.width <= 390, `row ${i} ${cell}: ${JSON.stringify(box)}`);
    }
  }
  const widths = await phone.evaluate(() => [document.documentElement.scrollWidth, document.querySelector("form.filters").scrollWidth]);
  assert.ok(widths.every((w) => w <= 390), `scroll widths ${widths}`);
  await screenshot(phone, "phone-card");
  await phone.close();
});

test("a burst of live purchases makes the page refetch at most once a second, and the last one shows", async () => {
  const card = cards[0];
  const burst = await chrome.newPage({ viewport: { width: 1280, height: 900 }, ...PAGE });
  await signIn(burst, dev.api, "demo@cardstream.dev", "cardstream-demo");
  await burst.goto(`${dev.api}/cards/${card.id}`);
  await burst.waitForSelector("[data-testid=activity] tbody tr");
  await live(burst);
  const queries = [];
  burst.on("request", (r) => { if (r.url().endsWith("/graphql") && r.method() === "POST") queries.push(Date.now()); });
  const started = Date.now();
  const ids = [];
  await Promise.all(Array.from({ length: 20 }, (_, i) => {
    const event = authorizationEvent("issuing_authorization.created", {
      card: card.id, holder, currency: card.currency, amount: 1_000 + i, category: "book_stores",
      merchant: `Burst Books ${i}`, approved: true, created: Math.floor(Date.now() / 1000) + 10 + i,
    });
    ids.push(event.data.object.id);
    return postWebhook(dev.webhooks, "/webhooks/stripe", event);
  }));
  await burst.locator(`[data-testid=activity] tr[data-id="${ids[19]}"]`).waitFor({ timeout: 15_000 });
  await new Promise((r) => setTimeout(r, 1_500));
  const seconds = (Date.now() - started) / 1000;
  // Each refetch is two queries (the tiles and the activity page).
  const refetches = queries.length / 2;
  console.log(`20 purchases in a burst: ${queries.length} queries (${refetches} refetches) over ${seconds.toFixed(1)} s`);
  assert.ok(refetches <= Math.ceil(seconds) + 1, `${refetches} refetches in ${seconds} s`);
  for (let i = 1; i < queries.length / 2; i += 1) {
    assert.ok(queries[2 * i] - queries[2 * (i - 1)] >= 950, `refetches ${i - 1} and ${i} ${queries[2 * i] - queries[2 * (i - 1)]} ms apart`);
  }
  await burst.close();
});

test("the activity's CSV export holds exactly the filtered rows, as the database holds them", async () => {
  const card = cards[0];
  const csv = await chrome.newPage({ viewport: { width: 1280, height: 900 }, ...PAGE, acceptDownloads: true });
  await signIn(csv, dev.api, "demo@cardstream.dev", "cardstream-demo");
  await csv.goto(`${dev.api}/cards/${card.id}`);
  await csv.waitForSelector("[data-testid=activity] tbody tr");
  await csv.selectOption("select[name=status]", "DECLINED");
  const [download] = await Promise.all([csv.waitForEvent("download"), csv.click("[data-testid=export]")]);
  const text = await new Promise((resolve, reject) => {
    download.createReadStream().then((stream) => {
      let out = "";
      stream.on("data", (c) => { out += c; }).on("end", () => resolve(out)).on("error", reject);
    }, reject);
  });
  const lines = text.trim().split("\n");
  assert.equal(lines[0], "created,authorization,merchant,category,city,country,amount,currency,outcome,status,decline_reason,cardstream_reason");
  const expected = psqlJson(dev.database, `SELECT id, created FROM authorizations WHERE card_id = '${card.id}'
    AND NOT approved AND status <> 'pending'`, "created DESC, id DESC").map((r) => r.id);
  assert.ok(expected.length > 0);
  assert.deepEqual(lines.slice(1).map((l) => l.split(",")[1]), expected);
  assert.ok(lines.slice(1).every((l) => l.includes(",declined,")), lines.slice(0, 3).join("\n"));
  await csv.close();
});

test("a custom range is days of the viewer's own time zone, and the amount filter takes amounts as written", async () => {
  const card = cards[0];
  const zone = "Pacific/Auckland";
  const far = await chrome.newPage({ viewport: { width: 1280, height: 900 }, locale: "en-US", timezoneId: zone });
  await signIn(far, dev.api, "demo@cardstream.dev", "cardstream-demo");
  await far.goto(`${dev.api}/cards/${card.id}`);
  await far.waitForSelector("[data-testid=activity] tbody tr");
  // The Auckland day of the card's newest authorization, and a floor amount below most.
  const day = psql(dev.database, `SELECT (to_timestamp(max(created)) AT TIME ZONE '${zone}')::date FROM authorizations WHERE card_id = '${card.id}'`);
  await far.fill("input[name=from]", day);
  await far.fill("input[name=to]", day);
  // 20 in the card's major unit (a yen card has no decimals).
  const floor = 20 * 10 ** (card.currency === "jpy" ? 0 : 2);
  await far.fill("input[name=min]", "20");
  await far.locator("input[name=min]").blur();
  const expected = psqlJson(dev.database, `SELECT id, created FROM authorizations WHERE card_id = '${card.id}'
    AND created >= extract(epoch FROM ('${day}'::timestamp AT TIME ZONE '${zone}'))
    AND created < extract(epoch FROM (('${day}'::date + 1)::timestamp AT TIME ZONE '${zone}'))
    AND requested_amount >= ${floor} ORDER BY created DESC, id DESC LIMIT 20`, "created DESC, id DESC").map((r) => r.id);
  assert.ok(expected.length > 0, "the day has purchases of 20 or more");
  const shownIds = () => far.locator("[data-testid=activity] tbody tr").evaluateAll((rs) => rs.map((r) => r.dataset.id));
  await waitFor("the range and amount to apply", async () => isDeepStrictEqual(await shownIds(), expected) || null, 10_000)
    .catch(async (e) => {
      await screenshot(far, "custom-range-mismatch");
      console.log(JSON.stringify({ day, floor, currency: card.currency, min: await far.inputValue("input[name=min]"), from: await far.inputValue("input[name=from]"), to: await far.inputValue("input[name=to]") }));
      assert.deepEqual(await shownIds(), expected);
      throw e;
    });
  // An amount with more decimals than the currency has is refused, with why.
  await far.fill("input[name=min]", "20.005");
  await far.locator("input[name=min]").blur();
  await far.getByText("An amount is a number like 12.50", { exact: false }).waitFor({ timeout: 5_000 });
  await far.close();
});

test("the chart has its points as a table, one row per point, as GraphQL gives them", async () => {
  await page.goto(`${dev.api}/cards/${cards[0].id}`);
  await page.waitForSelector("[data-testid=chart]");
  const label = await page.getAttribute("[data-testid=chart]", "aria-label");
  assert.match(label, /^Spend over time: \d+ periods? from /);
  await page.click(".chart-table summary");
  const rows = await page.locator("[data-testid=chart-table] tbody tr").count();
  const n = Number(label.match(/: (\d+) period/)[1]);
  assert.equal(rows, n);
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
  // Amounts as people write them; the minor units only as a hint.
  assert.match(await admin.inputValue("input[name=dailyLimit]"), /3,000\.00 USD/);
  assert.match(await admin.textContent("[data-testid=dailyLimit-hint]"), /300000 usd \(minor units\)/);
  await admin.fill("input[name=blockedCategories]", "betting_casino_gambling, book_stores");
  // Partial approvals: off as dev configures them, turned on with the same save.
  assert.equal(await admin.isChecked("input[name=partialApproval]"), false);
  await admin.check("input[name=partialApproval]");
  await admin.click("[data-testid=policy] button[type=submit]");
  await admin.getByText(/Saved as version/).waitFor({ timeout: 5_000 });
  const saved = Date.now();
  assert.equal(psql(dev.database, "SELECT policy->>'partial_approval' FROM authorization_policy WHERE id = 1"), "true");
  const after = await waitFor("the gateway to apply the policy", async () => {
    const answer = await request();
    return answer.body.approved === false ? answer : null;
  }, 15_000);
  console.log(`policy saved -> gateway declines: ${Date.now() - saved} ms`);
  assert.equal(after.body.metadata.cardstream_reason, "category_blocked");
  await screenshot(admin, "admin-saved");

  // A row written past the API that the gateway refuses (not a Stripe category): the editor
  // still opens, on that row, says why, and saving replaces it.
  psql(dev.database, `UPDATE authorization_policy SET version = version + 1,
    policy = '{"blocked_categories": ["gambling"]}', updated_by = 'psql' WHERE id = 1`);
  const version = Number(psql(dev.database, "SELECT version FROM authorization_policy WHERE id = 1"));
  await admin.reload();
  const refused = admin.locator("[data-testid=policy-refused]");
  await refused.waitFor({ timeout: 5_000 });
  assert.equal((await refused.textContent()).trim(), `The gateway refuses version ${version} and keeps the policy before it: `
    + "blocked_categories has names that are not Stripe merchant categories: gambling. Saving replaces it.");
  assert.equal(await admin.inputValue("input[name=blockedCategories]"), "gambling");
  await admin.fill("input[name=blockedCategories]", "betting_casino_gambling, book_stores");
  await admin.click("[data-testid=policy] button[type=submit]");
  await admin.getByText(`Saved as version ${version + 1}`, { exact: false }).waitFor({ timeout: 5_000 });
  await waitFor("the refusal to go", async () => (await refused.count()) === 0 || null, 5_000);

  // Each save through the console is in the audit log, by this admin, with what it changed;
  // the row written with psql went past the API and is not. The page shows the database's.
  const audit = psqlJson(dev.database, `SELECT id::text, actor, action, subject FROM audit_log
    ORDER BY id DESC LIMIT 25`, "id::int8 DESC");
  assert.deepEqual(audit.slice(0, 2).map((e) => [e.actor, e.action, e.subject]), [
    ["admin@cardstream.dev", "policy.updated", `version ${version + 1}`],
    ["admin@cardstream.dev", "policy.updated", `version ${version - 1}`],
  ]);
  await admin.reload();
  const entries = admin.locator("[data-testid=audit-entry]");
  await entries.first().waitFor({ timeout: 5_000 });
  assert.deepEqual(await entries.evaluateAll((rows) => rows.map((r) => [r.dataset.id,
    r.querySelector("[data-testid=audit-actor]").textContent, r.dataset.action,
    r.querySelector("[data-testid=audit-subject]").textContent])), audit.map((e) => [e.id, e.actor, e.action, e.subject]));
  const change = await entries.first().locator("[data-testid=audit-change]").textContent();
  assert.ok(change.includes('blocked_categories: ["gambling"] → ["betting_casino_gambling","book_stores"]'), change);
  await entries.first().scrollIntoViewIfNeeded();
  await screenshot(admin, "admin-audit-log");
  await admin.close();
});

test("the admin lands on the program overview, which equals the database: spend per currency, approvals, declines by reason, top cards, the live feed", async () => {
  const admin = await chrome.newPage({ viewport: { width: 1280, height: 900 }, ...PAGE });
  await signIn(admin, dev.api, "admin@cardstream.dev", "cardstream-admin");
  // The admin's home page.
  await admin.waitForURL((url) => url.pathname === "/overview", { timeout: 10_000 });
  await admin.waitForSelector("[data-testid=overview-approval-rate]");
  await admin.click("[data-period='30d']");
  // The last 30 UTC days, as the page counts them.
  const within = "created >= extract(epoch FROM current_date - 29)";
  const expected = () => {
    const spend = psqlJson(dev.database, `SELECT currency, sum(-amount)::int8 AS spend FROM transactions
      WHERE kind IN ('capture', 'refund') AND ${within} GROUP BY currency`, "spend DESC, currency");
    const [counts] = psqlJson(dev.database, `SELECT count(*) FILTER (WHERE approved) AS approved,
      count(*) FILTER (WHERE NOT approved AND status <> 'pending') AS declined FROM authorizations WHERE ${within}`);
    return { spend: spend.map((s) => `${s.currency}:${money(s.spend, s.currency)}`), approved: String(counts.approved), declined: String(counts.declined) };
  };
  const shown = async () => ({
    spend: await admin.locator("[data-testid=overview-spend]").evaluateAll((tiles) =>
      tiles.map((t) => `${t.dataset.currency}:${t.querySelector("[data-testid=overview-spend-amount]").textContent}`)),
    approved: await admin.textContent("[data-testid=overview-approved]"),
    declined: await admin.textContent("[data-testid=overview-declined]"),
  });
  await waitFor("the 30-day overview to equal the database", async () => isDeepStrictEqual(await shown(), expected()) || null, 10_000)
    .catch(async (e) => { assert.deepEqual(await shown(), expected()); throw e; });
  const want = expected();
  assert.ok(want.spend.length > 0 && Number(want.approved) > 0 && Number(want.declined) > 0, JSON.stringify(want));

  // Declines by reason, in plain words, with their counts.
  const declines = psqlJson(dev.database, `SELECT coalesce(decline_reason, '') AS reason, coalesce(cardstream_reason, '') AS cs,
      count(*) AS n FROM authorizations WHERE NOT approved AND status <> 'pending' AND ${within} GROUP BY 1, 2`, "n DESC, reason, cs");
  const rows = await admin.locator("[data-testid=decline-row]").evaluateAll((rs) => rs.map((r) => ({
    reason: r.dataset.reason, cs: r.dataset.cardstreamReason, n: Number(r.querySelector("[data-testid=decline-count]").textContent),
    words: r.querySelector("td").textContent,
  })));
  assert.deepEqual(rows.map(({ reason, cs, n }) => ({ reason, cs, n })), declines.slice(0, 10).map(({ reason, cs, n }) => ({ reason, cs, n: Number(n) })));
  for (const r of rows) assert.equal(r.words, reasonText(r.cs || r.reason || "unknown"));

  // The top card of the first currency, and the feed's newest authorization.
  const first = want.spend[0].split(":")[0];
  const [top] = psqlJson(dev.database, `SELECT card_id, sum(-amount)::int8 AS spend FROM transactions
    WHERE kind IN ('capture', 'refund') AND currency = '${first}' AND ${within} GROUP BY card_id`, "spend DESC, card_id");
  const topRow = admin.locator(`section[data-currency=${first}] [data-testid=overview-cards] tbody tr`).first();
  assert.equal(await topRow.getAttribute("data-card"), top.card_id);
  assert.equal(await topRow.locator("[data-testid=top-card-spend]").textContent(), money(top.spend, first));
  const newest = psql(dev.database, "SELECT id FROM authorizations ORDER BY created DESC, id DESC LIMIT 1");
  assert.equal(await admin.locator("[data-testid=feed-row]").first().getAttribute("data-id"), newest);
  await screenshot(admin, "overview");

  // A purchase arrives: the feed shows it without a reload (a tick, then one refetch).
  const card = psqlJson(dev.database, "SELECT id, cardholder_id, currency FROM cards WHERE status = 'active'", "id")[0];
  const id = `iauth_overview${Date.now()}`;
  const event = authorizationEvent("issuing_authorization.created", {
    card: card.id, holder: card.cardholder_id, currency: card.currency, amount: 4321, category: "book_stores",
    // Newer than anything stored (other tests post purchases a little in the future).
    merchant: "Overview Books", approved: true,
    created: Math.max(Math.floor(Date.now() / 1000), Number(psql(dev.database, "SELECT max(created) FROM authorizations"))) + 60,
  });
  event.data.object.id = id;
  assert.equal((await postWebhook(dev.webhooks, "/webhooks/stripe", event)).status, 200);
  await admin.locator(`[data-testid=feed-row][data-id="${id}"]`).waitFor({ timeout: 15_000 });

  // A custom range of one day shows that day only.
  await admin.click("[data-period=custom]");
  const day = psql(dev.database, "SELECT (current_date - 3)::text");
  await admin.fill("input[name=from]", day);
  await admin.fill("input[name=to]", day);
  await waitFor("the custom range to apply", async () => (await admin.textContent("[data-testid=overview-range]")).startsWith(`${day},`) || null, 10_000);
  await admin.close();
});

test("the admin's event log finds an authorization's events as stored, with their raw JSON and which version is stored", async () => {
  const [auth] = psqlJson(dev.database, `SELECT object_id, card_id FROM stripe_events
    WHERE event_type LIKE 'issuing_authorization.%' GROUP BY object_id, card_id HAVING count(*) >= 2`, "object_id");
  const stored = psqlJson(dev.database, `SELECT event_id, event_type, created, payload FROM stripe_events
    WHERE object_id = '${auth.object_id}'`, "created DESC, event_id DESC");
  const version = psql(dev.database, `SELECT version_event_id FROM authorizations WHERE id = '${auth.object_id}'`);
  const admin = await chrome.newPage({ viewport: { width: 1280, height: 900 }, ...PAGE });
  await signIn(admin, dev.api, "admin@cardstream.dev", "cardstream-admin");
  await admin.click("[data-testid=nav-events]");
  await admin.waitForSelector("[data-testid=event-row]");
  await admin.fill("[data-testid=event-search] input[name=objectId]", auth.object_id);
  await admin.click("[data-testid=event-search] button[type=submit]");
  const rows = admin.locator("[data-testid=event-row]");
  await waitFor("the search to apply", async () => (await rows.count()) === stored.length || null, 10_000);
  assert.deepEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.id)), stored.map((e) => e.event_id));
  for (const [i, e] of stored.entries()) {
    const row = rows.nth(i);
    await row.locator("summary").click();
    assert.deepEqual(JSON.parse(await row.locator("[data-testid=event-payload]").textContent()), e.payload);
    assert.equal(await row.locator("[data-testid=event-current]").textContent(),
      e.event_id === version ? "the stored version" : `replaced by ${version}`);
  }
  await screenshot(admin, "event-log");
  // By card and type: the card's events of that type only.
  await admin.fill("[data-testid=event-search] input[name=objectId]", "");
  await admin.fill("[data-testid=event-search] input[name=cardId]", auth.card_id);
  await admin.selectOption("[data-testid=event-search] select[name=type]", "issuing_authorization.created");
  await admin.click("[data-testid=event-search] button[type=submit]");
  const ofCard = psqlJson(dev.database, `SELECT event_id FROM stripe_events WHERE card_id = '${auth.card_id}'
    AND event_type = 'issuing_authorization.created' ORDER BY created DESC, event_id DESC LIMIT 50`, "event_id").map((e) => e.event_id);
  await waitFor("the card's events", async () =>
    isDeepStrictEqual(await rows.evaluateAll((rs) => rs.map((r) => r.dataset.id)).then((ids) => [...ids].sort()), [...ofCard].sort()) || null, 10_000);
  await admin.close();
});

test("a record the aggregator cannot fold shows in the admin's dead letters as the database holds it", async () => {
  // A card event of a shape no Stripe version has: the gateway stores it (it reads only the
  // objects it decides), the aggregator dead-letters it as invalid_object and records it.
  const eventId = `evt_webdead${Date.now()}`;
  const posted = await postWebhook(dev.webhooks, "/webhooks/stripe", {
    id: eventId, object: "event", type: "issuing_card.created", created: Math.floor(Date.now() / 1000),
    data: { object: { id: "ic_webbroken", object: "issuing_card" } },
  });
  assert.equal(posted.status, 200, JSON.stringify(posted.body));
  await waitFor("the dead letter to be recorded", async () =>
    psql(dev.database, `SELECT count(*) FROM dead_letters WHERE event_id = '${eventId}'`) === "1" || null, 30_000);
  const [row] = psqlJson(dev.database, `SELECT id, reason, source_partition, source_offset, error FROM dead_letters
    WHERE event_id = '${eventId}'`);
  assert.equal(row.reason, "invalid_object");

  const admin = await chrome.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(admin, dev.api, "admin@cardstream.dev", "cardstream-admin");
  await admin.goto(`${dev.api}/admin`);
  const shown = admin.locator(`[data-testid=dead-letter][data-id="${row.id}"]`);
  await shown.waitFor({ timeout: 10_000 });
  const text = await shown.textContent();
  assert.match(text, /An object of a shape this version does not know/);
  assert.ok(text.includes(eventId), text);
  assert.ok(text.includes(`partition ${row.source_partition}, offset ${row.source_offset}`), text);
  await shown.locator("summary").click();
  assert.ok((await shown.locator("details p").textContent()).includes(row.error.slice(0, 60)));
  await shown.scrollIntoViewIfNeeded();
  await screenshot(admin, "admin-dead-letters");
  // Filtered to another reason, it is not listed.
  await admin.selectOption("select[name=deadLetterReason]", "not_json");
  await waitFor("the filter to apply", async () => (await shown.count()) === 0 || null, 5_000);

  // Redriven from the console with its cause not fixed: an aggregator writes it back, it is
  // marked redriven by the admin, and it comes back as a new dead letter of its own.
  await admin.selectOption("select[name=deadLetterReason]", "");
  await shown.locator("button", { hasText: "Redrive" }).click();
  await waitFor("an aggregator to redrive it", async () =>
    psql(dev.database, `SELECT coalesce(redriven_by, '') FROM dead_letters WHERE id = ${row.id}`) === "admin@cardstream.dev" || null, 30_000);
  await waitFor("it to come back as a new dead letter", async () =>
    psql(dev.database, `SELECT count(*) FROM dead_letters WHERE event_id = '${eventId}' AND id > ${row.id}`) === "1" || null, 30_000);
  assert.equal(psql(dev.database, `SELECT count(*) FROM stripe_events WHERE event_id = '${eventId}'`), "0");
  await waitFor("the list to drop it", async () => (await shown.count()) === 0 || null, 10_000);
  await admin.check("input[name=redriven]");
  await shown.waitFor({ timeout: 5_000 });
  assert.match(await shown.locator("[data-testid=redriven]").textContent(), /by admin@cardstream\.dev/);
  await admin.close();
});

test("the admin's pipeline health shows what the processes counted, as GraphQL and the database say", async () => {
  // A forged signature, refused: it shows under signature failures.
  const forged = await fetch(`${dev.webhooks}/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}` },
    body: "{}",
  });
  assert.equal(forged.status, 400);
  // And a card event of a shape no Stripe version has, which the aggregator dead-letters.
  const eventId = `evt_webhealth${Date.now()}`;
  const posted = await postWebhook(dev.webhooks, "/webhooks/stripe", {
    id: eventId, object: "event", type: "issuing_card.created", created: Math.floor(Date.now() / 1000),
    data: { object: { id: "ic_webhealth", object: "issuing_card" } },
  });
  assert.equal(posted.status, 200, JSON.stringify(posted.body));
  await waitFor("the dead letter to be recorded", async () =>
    psql(dev.database, `SELECT count(*) FROM dead_letters WHERE event_id = '${eventId}'`) === "1" || null, 30_000);
  const admin = await chrome.newPage({ viewport: { width: 1280, height: 1000 }, ...PAGE });
  await signIn(admin, dev.api, "admin@cardstream.dev", "cardstream-admin");
  await admin.click("[data-testid=nav-health]");
  const mismatch = admin.locator("[data-testid=health-refusals] tr[data-reason=signature_mismatch]");
  await mismatch.waitFor({ timeout: 30_000 });
  assert.equal(await admin.title(), "Pipeline health · cardstream");
  assert.match(await mismatch.textContent(), /Signature: A signature no webhook secret made/);
  assert.equal(await mismatch.getAttribute("data-signature"), "true");

  // What GraphQL says, with the admin's own token; the page shows the same once it has read
  // again (every 5 s), and the figures that live in the database equal it.
  const health = () => admin.evaluate(async () => {
    const query = `{ pipelineHealth { webhooks { count } rejections { reason count } records { new duplicate deadLetter }
      partitions { partition lag } deadLettersWaiting components { component version ready silent } } }`;
    const r = await fetch("/graphql", { method: "POST", body: JSON.stringify({ query }),
      headers: { "content-type": "application/json", authorization: `Bearer ${sessionStorage.getItem("cardstream.token")}` } });
    return (await r.json()).data.pipelineHealth;
  });
  const text = (id) => admin.textContent(`[data-testid=${id}]`);
  let h;
  await waitFor("the page to show what GraphQL says", async () => {
    h = await health();
    const stored = Number(psql(dev.database, "SELECT count(*) FROM stripe_events"));
    const shown = [await text("health-webhooks"), await text("records-new"), await text("health-dead-letters")];
    const expected = [String(h.webhooks.reduce((n, w) => n + w.count, 0)), String(h.records.new), String(h.deadLettersWaiting)];
    return (h.records.new === stored && isDeepStrictEqual(shown, expected)) || null;
  }, 30_000);
  assert.equal(String(h.deadLettersWaiting), psql(dev.database, "SELECT count(*) FROM dead_letters WHERE redriven_at IS NULL"));
  assert.ok(h.deadLettersWaiting >= 1 && h.records.deadLetter >= 1, JSON.stringify(h));
  assert.equal(await text("records-dead-letter"), String(h.records.deadLetter));
  assert.equal(await text("records-duplicate"), String(h.records.duplicate));
  const refusals = await admin.locator("[data-testid=health-refusals] tbody tr").evaluateAll((rows) =>
    Object.fromEntries(rows.map((r) => [r.dataset.reason, Number(r.querySelector("[data-testid=refusal-hour]").textContent)])));
  const byReason = {};
  for (const r of h.rejections) byReason[r.reason] = (byReason[r.reason] ?? 0) + r.count;
  assert.deepEqual(refusals, byReason);
  assert.ok(byReason.signature_mismatch >= 1);
  // Each partition's lag, and each process: ready, this build.
  const partitions = await admin.locator("[data-testid=health-partitions] tbody tr").evaluateAll((rows) =>
    rows.map((r) => ({ partition: Number(r.dataset.partition), lag: Number(r.querySelector("[data-testid=partition-lag]").textContent) })));
  assert.deepEqual(partitions, h.partitions);
  assert.ok(partitions.length >= 1);
  const processes = await admin.locator("[data-testid=health-components] tbody tr").evaluateAll((rows) =>
    rows.map((r) => ({ component: r.dataset.component, version: r.querySelector("[data-testid=component-version]").textContent,
      state: r.querySelector("[data-testid=component-state]").textContent })));
  assert.deepEqual(processes.map((p) => p.component), ["aggregator", "api", "gateway"]);
  assert.deepEqual(processes.map((p) => p.version), h.components.map((c) => c.version));
  assert.ok(processes.every((p) => p.state === "ready"), JSON.stringify(processes));
  assert.match(await text("health-last-webhook"), /s ago|min ago|just now/);
  await screenshot(admin, "health");
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
