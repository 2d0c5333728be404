// What the browser tests stand on: `cardstream dev` (the real binary: broker, Postgres,
// gateway, aggregator, API, the embedded dashboard) on free ports with a database of its own,
// Debian's chromium driven by playwright-core, psql for what the database holds, and signed
// Stripe webhooks. CARDSTREAM_WEB_FRONT=1 serves this checkout's web/dist in front of the
// binary's API, for a binary built elsewhere (the pages' Content-Security-Policy header then
// comes from that front: csp-server.mjs's copy of the API's).

import { spawn, spawnSync, execFileSync } from "node:child_process";
import { createHmac, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { startStatic } from "./csp-server.mjs";

const here = fileURLToPath(new URL(".", import.meta.url));
export const SECRET = "whsec_cardstream_dev";
export const SHOTS = `${here}../test-results`;
const BINARY = process.env.CARDSTREAM_BIN ?? `${here}../../target/debug/cardstream`;
const CHROMIUM = process.env.CARDSTREAM_CHROMIUM ?? "/usr/bin/chromium";
const FIXTURES = process.env.CARDSTREAM_FIXTURES ?? `${here}../../crates/stripe/tests/fixtures`;

/** Starts `cardstream dev` and waits for its banner. `args`: more of dev's flags. The dev
 * database's URL is `url` of what this returns (e.g. for `cardstream users`). `env`: more of its
 * environment. */
export async function startDev({ seed = 11, cards = 12, rate = 0, args = [], env = {} } = {}) {
  const database = `cardstream_web_${randomBytes(6).toString("hex")}`;
  const url = `postgres://postgres@127.0.0.1:5432/${database}`;
  const child = spawn(
    BINARY,
    ["dev", "--listen", "127.0.0.1:0", "--webhook-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
      "--rate", String(rate), "--seed", String(seed), "--cards", String(cards), ...args],
    { env: { ...process.env, CARDSTREAM_DEV_DATABASE_URL: url, RUST_LOG: "warn", ...env }, stdio: ["ignore", "ignore", "pipe"] },
  );
  const lines = [];
  const banner = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill("SIGTERM"); reject(new Error(`no banner within 90 s:\n${lines.join("\n")}`)); }, 90_000);
    const found = {};
    createInterface({ input: child.stderr }).on("line", (line) => {
      lines.push(line);
      const m = line.match(/^\s*(dashboard \+ GraphQL|webhooks)\s+http:\/\/([^/\s]+)/);
      if (m) found[m[1] === "webhooks" ? "webhooks" : "api"] = m[2];
      if (line.includes("or as a cardholder")) { clearTimeout(timer); resolve(found); }
    });
    child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`cardstream dev exited (${code}):\n${lines.join("\n")}`)); });
  });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      // A clean stop takes seconds (flush, commit, then the broker); past 30 s, kill it.
      const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
      await exited;
      clearTimeout(timer);
    }
    try { psql("postgres", `DROP DATABASE IF EXISTS ${database} WITH (FORCE)`); } catch { /* already gone */ }
  };
  if (process.env.CARDSTREAM_WEB_FRONT) {
    // This checkout's web/dist in front of the binary's API (see csp-server.mjs: for a binary
    // built from another checkout, whose embedded dashboard is not the one under test).
    const front = await startStatic({ upstream: `http://${banner.api}` });
    const stopDev = stop;
    return { api: front.base, webhooks: `http://${banner.webhooks}`, database, url, stop: async () => { await front.stop(); await stopDev(); } };
  }
  return { api: `http://${banner.api}`, webhooks: `http://${banner.webhooks}`, database, url, stop };
}

/** One value (or rows joined by newlines) from psql. */
export function psql(database, sql) {
  return execFileSync("psql", ["-At", "-h", "127.0.0.1", "-U", "postgres", "-d", database, "-c", sql], { encoding: "utf8" }).trim();
}

/** Sends `cardstream simulate` traffic to the gateway and waits until the aggregator has
 * folded every event the gateway accepted. */
export async function simulate(binary, dev, { seed, cards, count }) {
  const run = spawnSync(
    binary,
    ["simulate", "--target", dev.webhooks, "--seed", String(seed), "--cards", String(cards), "--count", String(count), "--rate", "0", "--progress", "0s"],
    { env: { ...process.env, CARDSTREAM_WEBHOOK_SECRETS: SECRET }, encoding: "utf8" },
  );
  const accepted = Number(run.stderr.match(/accepted \(2xx\) (\d+)/)?.[1]);
  if (run.status !== 0 || !accepted) throw new Error(`cardstream simulate failed:\n${run.stderr}`);
  await waitFor(`${accepted} events folded`, async () => Number(psql(dev.database, "SELECT count(*) FROM stripe_events")) >= accepted, 60_000);
  return accepted;
}

/** Waits until the page's live socket is connected (acknowledged): from then on the server
 * closes it when the session ends. Whether a subscription on it is registered yet is another
 * matter, which only an update arriving can show (see the live test). */
export async function live(page) {
  await page.waitForSelector("html[data-live=connected]", { state: "attached", timeout: 10_000 });
}

/** Money as a person reads it, written here from the API's documented format (`$1,234.50`,
 * `¥1,200`, `-€3.00`, `12.345 KWD`) rather than taken from the page, so the tests compare
 * whole strings worked out from the database's integer amounts. */
export function money(amount, currency) {
  const code = String(currency).toLowerCase();
  if (!/^[a-z]{3}$/.test(code)) return `${amount} ${currency}`;
  const exponent = ZERO_DECIMAL.includes(code) ? 0 : THREE_DECIMAL.includes(code) ? 3 : 2;
  const magnitude = BigInt(Math.abs(Number(amount)));
  const scale = 10n ** BigInt(exponent);
  const major = String(magnitude / scale).replace(/\B(?=(\d{3})+$)/g, ",");
  const number = exponent === 0 ? major : `${major}.${String(magnitude % scale).padStart(exponent, "0")}`;
  const sign = Number(amount) < 0 ? "-" : "";
  const symbol = { usd: "$", eur: "€", gbp: "£", jpy: "¥" }[code];
  return symbol ? `${sign}${symbol}${number}` : `${sign}${number} ${code.toUpperCase()}`;
}
// Stripe's zero- and three-decimal currencies.
const ZERO_DECIMAL = ["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];
const THREE_DECIMAL = ["bhd", "jod", "kwd", "omr", "tnd"];

/** A moment (Unix seconds) as the dashboard shows it on a page opened with `PAGE` below. */
export function when(seconds) {
  return new Date(Number(seconds) * 1000).toLocaleString(PAGE.locale, { timeZone: PAGE.timezoneId }).replace(/\s+/g, " ");
}

/** Page options that fix what dates look like, so that `when` can say it in advance. */
export const PAGE = { locale: "en-US", timezoneId: "UTC" };

/** Rows from psql as JSON objects: those of the query `sql`, in the order `orderBy` (of its
 * columns; json_agg does not promise to keep a subquery's order). */
export function psqlJson(database, sql, orderBy = null) {
  const agg = orderBy ? `json_agg(r ORDER BY ${orderBy})` : "json_agg(r)";
  return JSON.parse(psql(database, `SELECT coalesce(${agg}, '[]') FROM (${sql}) r`));
}

export async function waitFor(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function browser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
  });
}

export async function screenshot(page, name) {
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

export async function signIn(page, base, email, password) {
  await page.goto(`${base}/login`);
  await page.fill("input[name=email]", email);
  await page.fill("input[name=password]", password);
  await page.click("button[type=submit]");
  await page.waitForSelector("[data-testid=who]");
}

/** Posts a signed body to one of the gateway's webhook endpoints. */
export async function postWebhook(webhooks, path, event) {
  const body = JSON.stringify(event);
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac("sha256", SECRET).update(`${t}.${body}`).digest("hex");
  const response = await fetch(`${webhooks}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", "stripe-signature": `t=${t},v1=${v1}` },
    body,
  });
  return { status: response.status, body: await response.json() };
}

/** An Issuing authorization event on `card`, from Stripe's published example object; created
 * now unless `created` (Unix seconds) says when. */
export function authorizationEvent(type, { card, holder, currency, amount, category, merchant, approved, created }) {
  const object = JSON.parse(readFileSync(`${FIXTURES}/issuing.authorization.json`, "utf8"));
  const now = created ?? Math.floor(Date.now() / 1000);
  object.id = `iauth_web${randomBytes(8).toString("hex")}`;
  object.card.id = card;
  if (object.card.cardholder && typeof object.card.cardholder === "object") object.card.cardholder.id = holder;
  else object.card.cardholder = holder;
  object.cardholder = holder;
  object.currency = currency;
  object.merchant_currency = currency;
  object.created = now;
  object.merchant_data.category = category;
  object.merchant_data.name = merchant;
  if (type === "issuing_authorization.request") {
    object.approved = false;
    object.status = "pending";
    object.amount = 0;
    object.merchant_amount = amount;
    object.pending_request = { ...object.pending_request, amount, currency, merchant_amount: amount, merchant_currency: currency };
    object.request_history = [];
  } else {
    object.approved = approved;
    object.status = approved ? "pending" : "closed";
    object.amount = approved ? amount : 0;
    object.merchant_amount = amount;
    object.pending_request = null;
    object.request_history = [{
      amount, currency, merchant_amount: amount, merchant_currency: currency, approved, created: now,
      reason: approved ? "webhook_approved" : "webhook_declined", amount_details: null, authorized_currency: currency,
      network_risk_score: null, reason_message: null, requested_at: now,
    }];
  }
  return {
    id: `evt_web${randomBytes(8).toString("hex")}`, object: "event", api_version: "2024-06-20", created: now,
    livemode: false, pending_webhooks: 1, request: { id: null, idempotency_key: null }, type,
    data: { object },
  };
}
