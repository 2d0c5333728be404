// Stripe Connect in a real browser against `cardstream dev --connect-accounts 2`: the simulated
// world is spread over the platform's own account and two connected accounts, with live
// traffic. Two users made with `cardstream users add --account`, one limited to each account,
// and the platform admin; what each sees through the dashboard and through GraphQL with their
// own token (queries, `node(id:)`, the `activity` subscription) is compared with the database.
// Screenshots go to web/test-results/connect-*.png.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { PAGE, browser, psql, screenshot, signIn, startDev, waitFor } from "./harness.mjs";
import { ADMIN, adminPage } from "./accounts.mjs";

const BINARY = process.env.CARDSTREAM_BIN ?? new URL("../../target/debug/cardstream", import.meta.url).pathname;
const A = "acct_dev1";
const B = "acct_dev2";
const CARDS = 12;
let dev, chrome;
/** The users limited to A and to B: email, password, token. */
const users = {};

const lines = (sql) => { const out = psql(dev.database, sql); return out ? out.split("\n") : []; };
const cardsOf = (account) => lines(`SELECT id FROM cards WHERE account = '${account}' ORDER BY id`);
const holdersOf = (account) => lines(`SELECT id FROM cardholders WHERE account = '${account}' ORDER BY id`);
const sorted = (ids) => [...ids].sort();

before(async () => {
  dev = await startDev({ seed: 23, cards: CARDS, rate: 60, args: ["--connect-accounts", "2"] });
  // The world is made (every card) and each account has purchases, captures included.
  await waitFor("cards, authorizations and transactions in the platform's account and both connected accounts", () => {
    const [cards, ...counts] = psql(dev.database, `SELECT (SELECT count(*) FROM cards),
      ${[null, A, B].map((a) => {
        const is = a ? `= '${a}'` : "IS NULL";
        return `(SELECT count(*) FROM authorizations WHERE account ${is}), (SELECT count(*) FROM transactions WHERE account ${is})`;
      }).join(", ")}`).split("|").map(Number);
    return cards === CARDS && counts.every((n, i) => n >= (i % 2 === 0 ? 10 : 3));
  }, 120_000);
  for (const [account, name] of [[A, "a"], [B, "b"]]) {
    const email = `${name}-${randomBytes(3).toString("hex")}@connect.test`;
    const password = `connect password ${randomBytes(4).toString("hex")}`;
    execFileSync(BINARY, ["users", "add", "--email", email, "--role", "admin", "--account", account], {
      env: { ...process.env, CARDSTREAM_DATABASE_URL: dev.url, CARDSTREAM_USER_PASSWORD: password, RUST_LOG: "warn" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    users[account] = { email, password, token: await login(email, password) };
  }
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  await dev?.stop();
});

/** The API's answer (data and errors) to `query` with `token`. */
async function gqlAs(token, query, variables = {}) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${dev.api}/graphql`, { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  return response.json();
}

const codeOf = (body) => body.errors?.[0]?.extensions?.code ?? null;

async function login(email, password) {
  const body = await gqlAs(null, `mutation($i: LoginInput!) { login(input: $i) { token } }`, { i: { email, password } });
  assert.ok(body.data?.login?.token, `${email} signs in: ${JSON.stringify(body.errors)}`);
  return body.data.login.token;
}

/** The data of `query`, which must succeed. */
async function ok(token, query, variables) {
  const body = await gqlAs(token, query, variables);
  assert.equal(body.errors, undefined, `${query}: ${JSON.stringify(body.errors)}`);
  return body.data;
}

const ids = (connection) => sorted(connection.nodes.map((n) => n.id));

/** One `activity` subscription over graphql-transport-ws from inside `page` (the browser's own
 * WebSocket, as the dashboard's): the first message that answers it, or "quiet" after `ms`. */
function subscribeOnce(page, token, cardId, ms) {
  return page.evaluate(({ token, cardId, ms }) => new Promise((resolve) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, "ws")}/graphql/ws`, "graphql-transport-ws");
    const done = (result) => { clearTimeout(timer); resolve(result); ws.close(); };
    const timer = setTimeout(() => done({ kind: "quiet" }), ms);
    ws.onopen = () => ws.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${token}` } }));
    ws.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "connection_ack") {
        ws.send(JSON.stringify({
          id: "1", type: "subscribe",
          payload: { query: "subscription($id: ID!) { activity(cardId: $id) { cardId authorization { id } } }", variables: { id: cardId } },
        }));
      } else if (msg.type === "next") {
        done(msg.payload.errors ? { kind: "refused", code: msg.payload.errors[0]?.extensions?.code ?? null } : { kind: "data", data: msg.payload.data });
      } else if (msg.type === "error") {
        done({ kind: "refused", code: msg.payload?.[0]?.extensions?.code ?? null });
      }
    };
    ws.onclose = (e) => done({ kind: "closed", code: e.code });
  }), { token, cardId, ms });
}

/** A fresh browser context signed in as `email`, on its first card: where a cardholder lands;
 * an admin lands on the program's overview and follows "Cards". */
async function signedInPage(email, password) {
  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 }, ...PAGE });
  const page = await context.newPage();
  await signIn(page, dev.api, email, password);
  await page.waitForURL(/\/(cards\/ic_|overview)/, { timeout: 10_000 });
  if (new URL(page.url()).pathname === "/overview") await page.click("[data-testid=nav-cards]");
  await page.waitForURL(/\/cards\/ic_/, { timeout: 10_000 });
  await page.waitForSelector("[data-testid=tile-total]");
  return page;
}

const options = (page, testid) =>
  page.locator(`[data-testid=${testid}] option`).evaluateAll((os) => os.map((o) => o.value));

/** Waits until the card switcher offers exactly `expected` (sorted ids); fails with the difference. */
async function expectCardOptions(page, expected, what) {
  let shown = null;
  try {
    await waitFor(what, async () => {
      shown = sorted(await options(page, "card-switcher"));
      return JSON.stringify(shown) === JSON.stringify(expected);
    }, 10_000);
  } catch (e) {
    await screenshot(page, `connect-failed-${what.replace(/\W+/g, "-")}`);
    assert.deepEqual(shown, expected, `${what}: ${e.message}`);
    throw e;
  }
}

/** Waits until the admin view lists exactly `expected` cardholders (sorted ids). */
async function expectHolderRows(page, expected, what) {
  let shown = null;
  try {
    await waitFor(what, async () => {
      shown = sorted(await page.locator("[data-testid=cardholder-row]").evaluateAll((rows) => rows.map((r) => r.dataset.id)));
      return JSON.stringify(shown) === JSON.stringify(expected);
    }, 10_000);
  } catch (e) {
    assert.deepEqual(shown, expected, `${what}: ${e.message}`);
    throw e;
  }
}

test("the dev world is spread over the platform and two accounts, one account per cardholder", (t) => {
  t.diagnostic(psql(dev.database, `SELECT string_agg(format('%s: %s cardholders, %s cards, %s authorizations', a, h, c, n), '; ' ORDER BY a)
    FROM (SELECT coalesce(h.account, 'platform') AS a, count(DISTINCT h.id) AS h, count(DISTINCT c.id) AS c, count(DISTINCT x.id) AS n
      FROM cardholders h LEFT JOIN cards c ON c.cardholder_id = h.id LEFT JOIN authorizations x ON x.card_id = c.id GROUP BY 1) s`));
  assert.deepEqual(lines("SELECT DISTINCT coalesce(account, '-') FROM cardholders ORDER BY 1"), ["-", A, B]);
  // A card is its cardholder's account's, and so is everything that happens on it.
  assert.equal(psql(dev.database, `SELECT count(*) FROM cards c JOIN cardholders h ON h.id = c.cardholder_id
    WHERE c.account IS DISTINCT FROM h.account`), "0");
  for (const table of ["authorizations", "transactions"]) {
    assert.equal(psql(dev.database, `SELECT count(*) FROM ${table} x JOIN cards c ON c.id = x.card_id
      WHERE x.account IS DISTINCT FROM c.account`), "0", table);
  }
  assert.ok(cardsOf(A).length > 0 && cardsOf(B).length > 0);
});

for (const [mine, other] of [[A, B], [B, A]]) {
  test(`${mine}'s user sees only ${mine}'s cards, cardholders and activity through GraphQL`, async () => {
    const { token } = users[mine];
    const myCards = cardsOf(mine);
    const d = await ok(token, `{ viewer { user { role accounts } cards(first: 100) { nodes { id account } } }
      cards(first: 100) { nodes { id account } } cardholders(first: 100) { nodes { id account } } accounts { id cards } }`);
    assert.deepEqual(d.viewer.user, { role: "ADMIN", accounts: [mine] });
    assert.deepEqual(ids(d.cards), myCards);
    assert.deepEqual(ids(d.viewer.cards), myCards);
    assert.ok(d.cards.nodes.every((c) => c.account === mine));
    assert.deepEqual(ids(d.cardholders), holdersOf(mine));
    assert.deepEqual(d.accounts, [{ id: mine, cards: myCards.length }]);
    // Their own account by name is theirs; another's is not found.
    assert.deepEqual(ids((await ok(token, `query($a: ID) { cards(account: $a, first: 100) { nodes { id } } }`, { a: mine })).cards), myCards);
    for (const list of ["cards", "cardholders", "disputes"]) {
      const body = await gqlAs(token, `query($a: ID) { ${list}(account: $a) { nodes { id } } }`, { a: other });
      assert.equal(codeOf(body), "NOT_FOUND", `${list}(account: ${other}): ${JSON.stringify(body)}`);
    }
    assert.equal(codeOf(await gqlAs(token, `query($a: ID) { viewer { cards(account: $a) { nodes { id } } } }`, { a: other })), "NOT_FOUND");

    // By id: the other account's card, cardholder, authorization and transaction are null as
    // nodes and NOT_FOUND by name; the user's own are found (so the nulls are not vacuous).
    const one = (account, sql) => psql(dev.database, sql.replace("$account", `'${account}'`));
    const objects = (account) => ({
      card: one(account, "SELECT id FROM cards WHERE account = $account ORDER BY id LIMIT 1"),
      cardholder: one(account, "SELECT id FROM cardholders WHERE account = $account ORDER BY id LIMIT 1"),
      authorization: one(account, "SELECT id FROM authorizations WHERE account = $account ORDER BY id LIMIT 1"),
      transaction: one(account, "SELECT id FROM transactions WHERE account = $account ORDER BY id LIMIT 1"),
    });
    for (const [whose, expectFound] of [[mine, true], [other, false]]) {
      for (const [kind, id] of Object.entries(objects(whose))) {
        assert.match(id, /^i[a-z]+_/, `${whose} has a ${kind}`);
        const node = (await ok(token, `query($id: ID!) { node(id: $id) { id } }`, { id })).node;
        assert.equal(node?.id ?? null, expectFound ? id : null, `node(id: ${whose}'s ${kind} ${id})`);
      }
      const { card, authorization } = objects(whose);
      const byName = await gqlAs(token, `query($c: ID!, $a: ID!) { card(id: $c) { id } authorization(id: $a) { id } }`, { c: card, a: authorization });
      if (expectFound) assert.equal(byName.errors, undefined, JSON.stringify(byName.errors));
      else assert.deepEqual(byName.errors.map((e) => e.extensions.code), ["NOT_FOUND", "NOT_FOUND"]);
    }
  });

  test(`${mine}'s user: the dashboard shows ${mine}'s cards and no other account's; ${other}'s activity subscription is refused`, async () => {
    const { email, password, token } = users[mine];
    const myCards = cardsOf(mine);
    const page = await signedInPage(email, password);
    // One account: nothing to switch between.
    assert.equal(await page.locator("[data-testid=account-switcher]").count(), 0);
    await expectCardOptions(page, myCards, `${mine}'s card switcher`);
    await screenshot(page, `connect-${mine}`);
    for (const id of myCards) {
      await page.goto(`${dev.api}/cards/${id}`);
      await page.waitForSelector("[data-testid=tile-total]", { timeout: 10_000 });
      assert.equal((await page.textContent("[data-testid=card-account]")).trim(), mine, id);
      assert.equal(await page.locator("[role=alert]").count(), 0, id);
    }
    // Another account's card by URL: not found, and nothing of it shown.
    const theirs = cardsOf(other)[0];
    await page.goto(`${dev.api}/cards/${theirs}`);
    await page.locator("[role=alert][data-code=NOT_FOUND]").waitFor({ timeout: 5_000 });
    assert.equal(await page.locator("[data-testid=tile-total]").count(), 0);
    await screenshot(page, `connect-${mine}-not-found`);
    // Another account picked in the URL: not found either, with the way back.
    await page.goto(`${dev.api}/?account=${other}`);
    await page.locator("[role=alert][data-code=NOT_FOUND]").waitFor({ timeout: 5_000 });
    await page.click("[data-testid=all-accounts]");
    // Home: the overview of their own account(s).
    await page.waitForURL((url) => url.pathname === "/overview", { timeout: 10_000 });
    assert.ok(!page.url().includes("account="), page.url());
    // The admin page of an admin limited to an account: its cardholders, no policy, no users.
    await page.goto(`${dev.api}/admin`);
    await page.waitForSelector("[data-testid=limited-admin]");
    await expectHolderRows(page, holdersOf(mine), `${mine}'s cardholders on /admin`);
    assert.equal(await page.locator("[data-testid=policy]").count(), 0);
    assert.equal(await page.locator("[data-testid=users]").count(), 0);
    await screenshot(page, `connect-${mine}-admin`);

    // Live updates: the user's own card's activity arrives (the simulator keeps buying), the
    // other account's card's subscription is refused.
    const busiest = psql(dev.database, `SELECT card_id FROM authorizations WHERE account = '${mine}'
      GROUP BY card_id ORDER BY count(*) DESC, card_id LIMIT 1`);
    const own = await subscribeOnce(page, token, busiest, 30_000);
    assert.equal(own.kind, "data", JSON.stringify(own));
    assert.equal(own.data.activity.cardId, busiest);
    const refused = await subscribeOnce(page, token, theirs, 10_000);
    assert.deepEqual(refused, { kind: "refused", code: "NOT_FOUND" });
    await page.context().close();
  });
}

test("the platform admin sees every card; the account switcher narrows the dashboard to exactly one account's, across a reload", async () => {
  const token = await login(ADMIN.email, ADMIN.password);
  const all = lines("SELECT id FROM cards ORDER BY id");
  assert.equal(all.length, CARDS);
  const d = await ok(token, `{ viewer { user { role accounts } } cards(first: 100) { totalCount nodes { id } } accounts { id cards cardholders } }`);
  assert.deepEqual(d.viewer.user, { role: "ADMIN", accounts: [] });
  assert.deepEqual(ids(d.cards), all);
  assert.equal(Number(d.cards.totalCount), Number(psql(dev.database, "SELECT count(*) FROM cards")));
  assert.deepEqual(d.accounts, [A, B].map((id) => ({ id, cards: cardsOf(id).length, cardholders: holdersOf(id).length })));
  for (const account of [A, B]) {
    const scoped = await ok(token, `query($a: ID) { cards(account: $a, first: 100) { nodes { id } } cardholders(account: $a, first: 100) { nodes { id } }
      disputes(account: $a) { nodes { id } } }`, { a: account });
    assert.deepEqual(ids(scoped.cards), cardsOf(account));
    assert.deepEqual(ids(scoped.cardholders), holdersOf(account));
  }
  // dev's own demo admin of each connected account is limited to it.
  const demo = await login("acct-dev1@cardstream.dev", "cardstream-acct-dev1");
  assert.deepEqual((await ok(demo, "{ viewer { user { accounts } } }")).viewer.user.accounts, [A]);

  const page = await signedInPage(ADMIN.email, ADMIN.password);
  assert.deepEqual(await options(page, "account-switcher"), ["", A, B]);
  await expectCardOptions(page, all, "every card, all accounts");
  await screenshot(page, "connect-admin-all");

  // Pick A: the URL says so, the card shown is A's, and the card switcher offers exactly A's.
  await page.selectOption("[data-testid=account-switcher]", A);
  await page.waitForURL((url) => url.pathname.startsWith("/cards/") && url.searchParams.get("account") === A, { timeout: 10_000 });
  await expectCardOptions(page, cardsOf(A), `${A}'s cards after picking it`);
  await page.waitForSelector("[data-testid=tile-total]");
  assert.equal((await page.textContent("[data-testid=card-account]")).trim(), A);
  assert.ok(cardsOf(A).includes(decodeURIComponent(new URL(page.url()).pathname.split("/")[2])), page.url());
  await screenshot(page, "connect-admin-account");

  // A reload keeps it.
  await page.reload();
  await page.waitForSelector("[data-testid=tile-total]");
  assert.equal(await page.locator("[data-testid=account-switcher]").inputValue(), A);
  await expectCardOptions(page, cardsOf(A), `${A}'s cards after a reload`);

  // Moving on within the account keeps it: another of A's cards, then the admin page.
  const second = cardsOf(A).find((id) => !page.url().includes(id));
  if (second) {
    await page.selectOption("[data-testid=card-switcher]", second);
    await page.waitForURL((url) => url.pathname === `/cards/${second}` && url.searchParams.get("account") === A, { timeout: 10_000 });
  }
  await page.locator("header a", { hasText: "Admin" }).click();
  await page.waitForURL((url) => url.pathname === "/admin" && url.searchParams.get("account") === A, { timeout: 10_000 });
  await expectHolderRows(page, holdersOf(A), `${A}'s cardholders on /admin`);
  const chips = await page.locator("[data-testid=cardholder-row] [data-card]").evaluateAll((cs) => cs.map((c) => c.dataset.card));
  assert.deepEqual(sorted(chips), cardsOf(A));
  await page.waitForSelector("[data-testid=policy]");
  await screenshot(page, "connect-admin-account-admin");

  // Then B on the admin page, then all accounts again.
  await page.selectOption("[data-testid=account-switcher]", B);
  await page.waitForURL((url) => url.pathname === "/admin" && url.searchParams.get("account") === B, { timeout: 10_000 });
  await expectHolderRows(page, holdersOf(B), `${B}'s cardholders on /admin`);
  await page.selectOption("[data-testid=account-switcher]", "");
  await page.waitForURL((url) => url.pathname === "/admin" && !url.searchParams.has("account"), { timeout: 10_000 });
  await expectHolderRows(page, lines("SELECT id FROM cardholders ORDER BY id"), "every cardholder on /admin");
  await page.goto(`${dev.api}/cards`);
  await page.waitForURL(/\/cards\/ic_/, { timeout: 10_000 });
  await expectCardOptions(page, all, "every card again");
  await page.context().close();
});

test("an admin invited for one account from /admin lands on the overview, and sees that account's cards only", async () => {
  const admin = await adminPage(chrome, dev.api);
  const email = `invited-${randomBytes(3).toString("hex")}@connect.test`;
  const password = `connect password ${randomBytes(4).toString("hex")}`;
  await admin.fill("[data-testid=invite] input[name=email]", email);
  await admin.selectOption("[data-testid=invite] select[name=role]", "ADMIN");
  await admin.fill("[data-testid=invite] input[name=accounts]", B);
  await admin.click("[data-testid=invite] button[type=submit]");
  const link = await admin.locator("[data-testid=one-time-link]").inputValue({ timeout: 5_000 });
  const invitation = admin.locator(`[data-testid=invitation-row][data-email="${email}"][data-state=PENDING]`);
  assert.equal((await invitation.locator("[data-testid=invitation-accounts]").textContent({ timeout: 5_000 })).trim(), B);
  await screenshot(admin, "connect-invite");
  await admin.context().close();

  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 }, ...PAGE });
  const page = await context.newPage();
  await page.goto(link);
  await page.fill("[data-testid=invitation] input[name=password]", password);
  await page.fill("[data-testid=invitation] input[name=repeat]", password);
  await page.click("[data-testid=invitation] button[type=submit]");
  // An admin's first page is the program overview: of their account only.
  await page.waitForURL((url) => url.pathname === "/overview", { timeout: 10_000 });
  await page.waitForSelector("[data-testid=overview-range]");
  await page.click("[data-testid=nav-cards]");
  await page.waitForURL(/\/cards\/ic_/, { timeout: 10_000 });
  await page.waitForSelector("[data-testid=tile-total]");
  assert.equal((await page.textContent("[data-testid=card-account]")).trim(), B);
  assert.equal(await page.locator("[data-testid=account-switcher]").count(), 0);
  await expectCardOptions(page, cardsOf(B), `the invited ${B} admin's cards`);
  const token = await page.evaluate(() => sessionStorage.getItem("cardstream.token"));
  assert.deepEqual((await ok(token, "{ viewer { user { role accounts } } }")).viewer.user, { role: "ADMIN", accounts: [B] });
  await screenshot(page, "connect-invited");
  await context.close();
});
