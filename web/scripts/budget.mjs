// The dashboard's budget, printed: what a browser downloads, raw and gzipped (the size is also
// asserted, by tests/budget.test.mjs in the test command), and how long a cold load takes to
// show the sign-in form and, signed in, a card's dashboard, in headless chromium against
// `cardstream dev` on this machine. Median of 5 cold loads each. Run through
// scripts/web-budget.sh. Which files count, and GraphiQL's exemption: scripts/assets.mjs.

import { fileURLToPath } from "node:url";
import { TARGET_GZIP_KB, assets, sum as total } from "./assets.mjs";
import { browser, psql, simulate, startDev } from "../tests/harness.mjs";

const BINARY = process.env.CARDSTREAM_BIN ?? fileURLToPath(new URL("../../target/debug/cardstream", import.meta.url));
const { files, exempt } = assets();
const sum = (ext, key, of = files) => total(of, ext, key);
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
