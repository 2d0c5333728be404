// The dashboard's JavaScript budget, enforced: what index.html loads, gzipped, must stay under
// TARGET_GZIP_KB (GraphiQL, a developer's tool at /graphql, is exempt; see scripts/assets.mjs).
// scripts/web-budget.sh prints the same figures with cold-load times.

import { test } from "node:test";
import assert from "node:assert/strict";
import { TARGET_GZIP_KB, assets, sum } from "../scripts/assets.mjs";

test("the dashboard's JavaScript, gzipped, is within its budget", () => {
  const { files } = assets();
  const scripts = files.filter((f) => f.name.endsWith(".js"));
  assert.ok(scripts.length > 0, "index.html loads no script: is web/dist built?");
  const kb = sum(files, ".js", "gzip") / 1024;
  console.log(`dashboard JavaScript: ${(sum(files, ".js", "raw") / 1024).toFixed(1)} KB raw, ${kb.toFixed(1)} KB gzip (budget ${TARGET_GZIP_KB} KB)`);
  assert.ok(kb < TARGET_GZIP_KB, `the dashboard ships ${kb.toFixed(1)} KB of gzipped JavaScript, past its budget of ${TARGET_GZIP_KB} KB`);
});
