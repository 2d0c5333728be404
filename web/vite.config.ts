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
    rollupOptions: { input: { index: page("index.html"), graphiql: page("graphiql.html") } },
  },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
});
