import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const page = (name: string) => fileURLToPath(new URL(name, import.meta.url));

// The dashboard is served by `cardstream api` from the binary; `npm run dev` proxies the API of
// a running `cardstream dev` so the app can be worked on with hot reload.
//
// Two pages: index.html (the dashboard, Preact) and graphiql.html (GraphiQL, React, served at
// GET /graphql when the API runs with --graphiql). Rollup keeps each page's modules in its own
// chunks, so React never reaches the dashboard's bundle.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    // GraphiQL's main chunk is about 840 KB; the dashboard's size is watched by its own budget
    // (scripts/web-budget.sh), far below this.
    chunkSizeWarningLimit: 900,
    rollupOptions: {
      input: { index: page("index.html"), graphiql: page("graphiql.html") },
      onwarn(warning, warn) {
        // GraphiQL's Radix components start with "use client" (a React Server Components
        // marker that means nothing in a browser bundle); rollup says so once per module.
        if (warning.code === "MODULE_LEVEL_DIRECTIVE" && warning.message.includes('"use client"')) return;
        warn(warning);
      },
    },
  },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
});
