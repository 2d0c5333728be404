// Accessibility in a real browser against `cardstream dev` with a month of history: axe-core
// (the rules of WCAG 2.1 A and AA) finds no serious or critical violation on any screen, a
// cardholder's and an admin's; and every control of a card's dashboard is reached with the Tab
// key. axe is injected into each page, so these contexts bypass the CSP (the CSP itself is
// checked by dashboard.test.mjs). Screenshots go to web/test-results/a11y-*.png.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { PAGE, browser, psql, screenshot, signIn, startDev, waitFor } from "./harness.mjs";

const AXE = createRequire(import.meta.url).resolve("axe-core/axe.min.js");
let dev, chrome;

before(async () => {
  dev = await startDev({ seed: 31, cards: 12, rate: 5, args: ["--history", "30d", "--history-purchases", "400"] });
  await waitFor("the history folded", async () =>
    Number(psql(dev.database, "SELECT count(*) FROM authorizations")) >= 380 || null, 120_000);
  chrome = await browser();
});

after(async () => {
  await chrome?.close();
  await dev?.stop();
});

/** Serious and critical violations of WCAG 2.1 A/AA on the page as it is now. */
async function violations(page) {
  await page.addScriptTag({ path: AXE });
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map((n) => n.target.join(" ")) }));
  });
  return found.filter((v) => v.impact === "serious" || v.impact === "critical");
}

async function signedIn(email, password) {
  const context = await chrome.newContext({ viewport: { width: 1280, height: 900 }, ...PAGE, bypassCSP: true });
  const page = await context.newPage();
  await signIn(page, dev.api, email, password);
  return page;
}

test("no serious or critical axe violation on any screen", async () => {
  const anonymous = await (await chrome.newContext({ ...PAGE, bypassCSP: true })).newPage();
  await anonymous.goto(`${dev.api}/login`);
  await anonymous.waitForSelector("form.login");
  const found = { "/login": await violations(anonymous) };
  await anonymous.context().close();

  const holder = await signedIn("demo@cardstream.dev", "cardstream-demo");
  await holder.waitForURL(/\/cards\//);
  await holder.waitForSelector("[data-testid=activity] tbody tr");
  found["card"] = await violations(holder);
  await holder.click("[data-testid=activity] tbody tr a");
  await holder.waitForURL(/\/authorizations\//);
  await holder.waitForSelector("main h1, main h2");
  found["authorization"] = await violations(holder);
  await holder.goto(`${dev.api}/account`);
  await holder.waitForSelector("[data-testid=change-password]");
  found["/account"] = await violations(holder);
  await holder.context().close();

  const admin = await signedIn("admin@cardstream.dev", "cardstream-admin");
  for (const [path, ready] of [
    ["/overview", "[data-testid=overview-approval-rate]"],
    ["/events", "[data-testid=event-row]"],
    ["/admin", "[data-testid=audit-entry]"],
    ["/health", "[data-testid=health-components]"],
  ]) {
    await admin.goto(`${dev.api}${path}`);
    await admin.waitForSelector(ready, { timeout: 15_000 });
    found[path] = await violations(admin);
    await screenshot(admin, `a11y${path.replace("/", "-")}`);
  }
  await admin.context().close();
  const serious = Object.entries(found).filter(([, v]) => v.length > 0);
  assert.deepEqual(serious, [], JSON.stringify(serious, null, 2));
});

test("every control of a card's dashboard is reached with the Tab key", async () => {
  const page = await signedIn("demo@cardstream.dev", "cardstream-demo");
  await page.waitForURL(/\/cards\//);
  await page.waitForSelector("[data-testid=activity] tbody tr");
  // What a pointer can use: links, buttons, fields and the chart table's summary, visible.
  const controls = await page.evaluate(() => {
    const all = [...document.querySelectorAll("a[href], button, input, select, textarea, summary")];
    return all.filter((el) => !el.disabled && el.getClientRects().length > 0 && el.tabIndex >= 0).map((el, i) => {
      el.dataset.a11y = String(i);
      return String(i);
    });
  });
  assert.ok(controls.length >= 15, `${controls.length} controls`);
  const reached = new Set();
  for (let i = 0; i < controls.length + 10; i += 1) {
    await page.keyboard.press("Tab");
    const at = await page.evaluate(() => document.activeElement?.dataset?.a11y ?? null);
    if (at !== null) reached.add(at);
  }
  // Live traffic (5 events/s) keeps the activity table moving: a row that scrolled off the
  // page while we tabbed is gone from the document and cannot be reached; every control still
  // on the page must have been. (CI saw one such row, reported as `undefined`.)
  const unreached = controls.filter((c) => !reached.has(c));
  const names = await page.evaluate((ids) => ids.map((id) => document.querySelector(`[data-a11y="${id}"]`)?.outerHTML.slice(0, 120)), unreached);
  const gone = names.filter((n) => n === undefined).length;
  assert.ok(gone <= controls.length / 4, `${gone} of ${controls.length} controls left the page while tabbing`);
  assert.deepEqual(names.filter((n) => n !== undefined), [], "controls Tab never reached");
  await page.context().close();
});
