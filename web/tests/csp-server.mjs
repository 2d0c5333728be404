// A tiny server for web/dist with the Content-Security-Policy the API sends on every response,
// so that chromium reports whatever the built pages would be refused. GET /graphql answers
// graphiql.html, as `cardstream dev --graphiql` does. With `api: true` it also answers
// POST /graphql and the graphql-transport-ws socket at /graphql/ws from the in-memory stand-in
// (mock-api.mjs). With `upstream: "http://host:port"` it forwards those two to a running API
// instead: for testing this checkout's web/dist against a cardstream binary built from another
// checkout (a debug binary serves the dist/ of the checkout it was built in). With neither, it
// proxies nothing and the pages only get as far as they can alone.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { connect } from "node:net";
import { extname, join, normalize, resolve as absolute } from "node:path";
import { fileURLToPath } from "node:url";
import { graphql } from "graphql";
import { contractSchema, createWorld } from "./mock-api.mjs";

/** The policy the API sends (crates/api), word for word. */
export const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self' data:; "
  + "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

// CARDSTREAM_WEB_DIST: another build of the dashboard (e.g. a deliberately broken one, built
// from a copy of web/ into a folder of its own, to see a test fail without touching web/dist).
const DIST = process.env.CARDSTREAM_WEB_DIST
  ? join(absolute(process.env.CARDSTREAM_WEB_DIST), "/")
  : fileURLToPath(new URL("../dist/", import.meta.url));
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".png": "image/png", ".woff2": "font/woff2", ".json": "application/json" };

/** Starts the server on a free port; `graphiqlCsp` lets a test try GraphiQL under another policy. */
export async function startStatic({ api = false, upstream = null, graphiqlCsp = CSP } = {}) {
  if (!existsSync(join(DIST, "index.html"))) throw new Error(`${DIST} is not built: npm run build`);
  const schema = api ? contractSchema() : null;
  const sockets = new Map(); // token -> Set of sockets, to close them when the session ends
  const world = createWorld({
    onSessionsEnded: (tokens) => tokens.forEach((t) => sockets.get(t)?.forEach((s) => s.close(4403, "session ended"))),
  });

  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (path === "/graphql" && req.method === "POST" && upstream) return forward(req, res, upstream);
    if (path === "/graphql" && req.method === "POST" && api) return answer(req, res, schema, world);
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 405, "text/plain", "method not allowed");
    if (path === "/graphql") return send(res, 200, TYPES[".html"], readFileSync(join(DIST, "graphiql.html")), graphiqlCsp);
    const file = normalize(join(DIST, path));
    if (file.startsWith(DIST) && existsSync(file) && statSync(file).isFile()) {
      return send(res, 200, TYPES[extname(file)] ?? "application/octet-stream", readFileSync(file));
    }
    // As the API does: a missing file is a 404, any other path is one of the app's routes.
    if (extname(path)) return send(res, 404, "text/plain", "not found");
    send(res, 200, TYPES[".html"], readFileSync(join(DIST, "index.html")));
  });
  server.on("upgrade", (req, socket, head) => {
    if (upstream && new URL(req.url, "http://x").pathname === "/graphql/ws") return tunnel(req, socket, head, upstream);
    if (!api || new URL(req.url, "http://x").pathname !== "/graphql/ws") return socket.destroy();
    graphqlWs(req, socket, world, sockets);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const stop = () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });
  return { base, stop, world };
}

function send(res, status, type, body, csp = CSP) {
  res.writeHead(status, { "content-type": type, "content-security-policy": csp, "cache-control": "no-cache" });
  res.end(body);
}

/** POST /graphql to the upstream API, as is (the answer's headers stay behind, but its status). */
async function forward(req, res, upstream) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const headers = { "content-type": req.headers["content-type"] ?? "application/json" };
  if (req.headers.authorization) headers.authorization = req.headers.authorization;
  const answer = await fetch(`${upstream}/graphql`, { method: "POST", headers, body: Buffer.concat(chunks) });
  res.writeHead(answer.status, { "content-type": answer.headers.get("content-type") ?? "application/json", "content-security-policy": CSP });
  res.end(Buffer.from(await answer.arrayBuffer()));
}

/** The websocket's bytes both ways, after replaying the upgrade request to the upstream API. */
function tunnel(req, socket, head, upstream) {
  const { hostname, port } = new URL(upstream);
  const out = connect(Number(port), hostname, () => {
    const lines = [`${req.method} ${req.url} HTTP/1.1`];
    for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
    out.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head?.length) out.write(head);
    out.pipe(socket);
    socket.pipe(out);
  });
  const close = () => { out.destroy(); socket.destroy(); };
  out.on("error", close);
  socket.on("error", close);
  out.on("close", close);
  socket.on("close", close);
}

async function answer(req, res, schema, world) {
  let body = "";
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 64 * 1024) return send(res, 413, "text/plain", "too large");
  }
  const { query, variables } = JSON.parse(body || "{}");
  const token = req.headers.authorization?.replace(/^Bearer /, "") ?? null;
  const result = await graphql({ schema, source: query, rootValue: world.root, variableValues: variables, contextValue: { token, user: world.viewerOf(token) } });
  // A query the contract does not allow is the dashboard's bug: say so where the test runs.
  for (const e of result.errors ?? []) if (!e.extensions?.code) console.error(`mock API: ${e.message}`);
  send(res, 200, "application/json", JSON.stringify(result));
}

/** Just enough of RFC 6455 and graphql-transport-ws: the handshake, text frames, ping/pong,
 * close codes. Subscriptions are accepted and stay silent; a socket whose session ends is
 * closed with 4403, as the API does. */
function graphqlWs(req, socket, world, sockets) {
  const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  socket.write(["HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${accept}`, "Sec-WebSocket-Protocol: graphql-transport-ws", "", ""].join("\r\n"));
  const frame = (opcode, payload) => {
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | opcode, n]) : Buffer.from([0x80 | opcode, 126, n >> 8, n & 255]);
    socket.write(Buffer.concat([head, payload]));
  };
  let token = null;
  const ws = {
    json: (m) => frame(1, Buffer.from(JSON.stringify(m))),
    close: (code, reason) => {
      const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
      payload.writeUInt16BE(code);
      payload.write(reason, 2);
      frame(8, payload);
      socket.end();
    },
  };
  socket.on("close", () => sockets.get(token)?.delete(ws));
  socket.on("error", () => {});
  let buffer = Buffer.alloc(0);
  socket.on("data", (chunk) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      if (buffer.length < 2) return;
      const opcode = buffer[0] & 15;
      let length = buffer[1] & 127;
      let offset = 2;
      if (length === 126) { length = buffer.readUInt16BE(2); offset = 4; }
      else if (length === 127) { length = Number(buffer.readBigUInt64BE(2)); offset = 10; }
      if (buffer.length < offset + 4 + length) return;
      const mask = buffer.subarray(offset, offset + 4);
      const data = Buffer.from(buffer.subarray(offset + 4, offset + 4 + length).map((b, i) => b ^ mask[i % 4]));
      buffer = buffer.subarray(offset + 4 + length);
      if (opcode === 8) return socket.end();
      if (opcode === 9) { frame(10, data); continue; }
      if (opcode !== 1) continue;
      const message = JSON.parse(data.toString("utf8"));
      if (message.type === "connection_init") {
        token = String(message.payload?.authorization ?? "").replace(/^Bearer /, "");
        if (!world.viewerOf(token)) return ws.close(4403, "Forbidden");
        if (!sockets.has(token)) sockets.set(token, new Set());
        sockets.get(token).add(ws);
        ws.json({ type: "connection_ack" });
      } else if (message.type === "ping") ws.json({ type: "pong" });
    }
  });
}
