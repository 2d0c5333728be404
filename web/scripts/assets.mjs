// The dashboard's own files in web/dist, with their sizes: those dist/index.html loads (its
// entry script, the modulepreload links Vite writes for every chunk the entry imports
// statically, and its stylesheets). GraphiQL (dist/graphiql.html and its React and CodeMirror
// chunks) is exempt: a developer's tool, loaded only at /graphql when the API runs with
// --graphiql, never by the dashboard. Shared by the budget test and scripts/web-budget.sh.

import { readdirSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";

export const dist = fileURLToPath(new URL("../dist/", import.meta.url));

/** The dashboard's JavaScript may weigh this much, gzipped at level 9. */
export const TARGET_GZIP_KB = 250;

const measure = (name) => {
  const data = readFileSync(dist + name);
  return { name, raw: data.length, gzip: gzipSync(data, { level: 9 }).length };
};

/** The assets an HTML page of dist/ loads (src= and href= under /assets/). */
const loadedBy = (page) =>
  [...new Set([...readFileSync(dist + page, "utf8").matchAll(/(?:src|href)="\/(assets\/[^"]+)"/g)].map((m) => m[1]))];

/** `{ files, exempt }`: the dashboard's files and GraphiQL's, each `{ name, raw, gzip }`. */
export function assets() {
  const files = loadedBy("index.html").map(measure);
  const dashboardFiles = new Set(files.map((f) => f.name));
  // Everything else in assets/ belongs to GraphiQL (its page and the chunks it imports lazily).
  // The dashboard imports nothing lazily; should it start to, those chunks must be counted here.
  const exempt = readdirSync(dist + "assets").map((n) => `assets/${n}`).filter((n) => !dashboardFiles.has(n)).map(measure);
  return { files, exempt };
}

/** Total of `key` ("raw" or "gzip") over the files ending in `ext`. */
export const sum = (of, ext, key) => of.filter((f) => f.name.endsWith(ext)).reduce((n, f) => n + f[key], 0);
