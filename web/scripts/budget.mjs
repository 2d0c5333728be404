// The dashboard's budget, printed (not asserted): what a browser downloads, raw and gzipped,
// and how long a cold load takes to show the sign-in form and, signed in, a card's dashboard,
// in headless chromium against `cardstream dev` on this machine. Median of 5 cold loads each.
// Run through scripts/web-budget.sh.
//
// Only the dashboard's files count: those dist/index.html loads (its entry script, the
// modulepreload links Vite writes for every chunk the entry imports statically, and its
// stylesheets). GraphiQL (dist/graphiql.html and its React and CodeMirror chunks, about 1 MB
// raw) is exempt from the budget: it is a developer's tool, loaded only at /graphql when the API
// runs with --graphiql, never by the dashboard. Its size is printed for information.

import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import { browser, psql, simulate, startDev } from "../tests/harness.mjs";

const dist = fileURLToPath(new URL("../dist/", import.meta.url));
const BINARY = process.env.CARDSTREAM_BIN ?? fileURLToPath(new URL("../../target/debug/cardstream", import.meta.url));
const TARGET_GZIP_KB = 250;

const measure = (name) => {
  const data = readFileSync(dist + name);
  return { name, raw: data.length, gzip: gzipSync(data, { level: 9 }).length };
};
/** The assets an HTML page of dist/ loads (src= and href= under /assets/). */
const loadedBy = (page) =>
  [...new Set([...readFileSync(dist + page, "utf8").matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]))];
const files = loadedBy("index.html").map(measure);
const dashboardFiles = new Set(files.map((f) => f.name));
// Everything else in assets/ belongs to GraphiQL (its page and the chunks it imports lazily).
// The dashboard imports nothing lazily; should it start to, those chunks must be counted here.
const exempt = readdirSync(dist + "assets").map((n) => `assets/${n}`).filter((n) => !dashboardFiles.has(n)).map(measure);
const sum = (ext, key, of = files) => of.filter((f) => f.name.endsWith(ext)).reduce((n, f) => n + f[key], 0);
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;

const dev = await startDev({ seed: 5, cards: 12 });
await simulate(BINARY, dev, { seed: 5, cards: 12, count: 600 });
const login = await (await fetch(`${dev.api}/graphql`, {
  method: "POST", headers: { "content-type": "application/json" },
  body: JSON.stringify({ query: 'mutation { login(email: "demo@cardstream.dev", password: "cardstream-demo") { token } }' }),
})).json();
const token = login.data.login.token;
const card = psql(dev.database, "SELECT c.id FROM cards c JOIN user_cardholders uc ON uc.cardholder_id = c.cardholder_id ORDER BY c.id LIMIT 1");

const chrome = await browser();
async function coldLoad(path, selector, signedIn) {
  const context = await chrome.newContext(); // no cache, no storage
  if (signedIn) await context.addInitScript((t) => sessionStorage.setItem("cardstream.token", t), token);
  const page = await context.newPage();
  await page.goto(`${dev.api}${path}`);
  await page.waitForSelector(selector);
  const ms = await page.evaluate((sel) => {
    const nav = performance.getEntriesByType("navigation")[0];
    const fcp = performance.getEntriesByName("first-contentful-paint")[0];
    return { ready: performance.now() - (nav?.startTime ?? 0), fcp: fcp?.startTime ?? NaN, sel };
  }, selector);
  await context.close();
  return ms;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const runs = async (path, selector, signedIn) => {
  const out = [];
  for (let i = 0; i < 5; i++) out.push(await coldLoad(path, selector, signedIn));
  return { ready: median(out.map((o) => o.ready)), fcp: median(out.map((o) => o.fcp)) };
};
const signInPage = await runs("/login", "form.login", false);
const dashboard = await runs(`/cards/${card}`, "[data-testid=activity] tbody tr", true);
await chrome.close();
await dev.stop();

const jsGzip = sum(".js", "gzip");
console.log("\ncardstream dashboard budget");
console.log(`  JavaScript shipped: ${kb(sum(".js", "raw"))} raw, ${kb(jsGzip)} gzip (target < ${TARGET_GZIP_KB} KB: ${jsGzip / 1024 < TARGET_GZIP_KB ? "met" : "NOT met"})`);
console.log(`  CSS shipped:        ${kb(sum(".css", "raw"))} raw, ${kb(sum(".css", "gzip"))} gzip`);
console.log(`  (not counted: GraphiQL at /graphql, ${kb(sum(".js", "raw", exempt))} JavaScript raw, ${kb(sum(".js", "gzip", exempt))} gzip; ${kb(sum(".css", "gzip", exempt))} CSS gzip)`);
console.log(`  cold load, sign-in page: first contentful paint ${signInPage.fcp.toFixed(0)} ms, form ready ${signInPage.ready.toFixed(0)} ms`);
console.log(`  cold load, a card's dashboard (signed in): first contentful paint ${dashboard.fcp.toFixed(0)} ms, tiles and activity rendered ${dashboard.ready.toFixed(0)} ms`);
console.log("  (median of 5 cold loads each, headless chromium and the whole system on this machine)");
