import { defineConfig } from "vite";

// The dashboard is served by `cardstream api` from the binary; `npm run dev` proxies the API of
// a running `cardstream dev` so the app can be worked on with hot reload.
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, target: "es2022" },
  server: {
    proxy: {
      "/graphql": { target: "http://127.0.0.1:8080", ws: true },
    },
  },
});
