#!/usr/bin/env bash
# Builds the dashboard (web/: TypeScript, Vite) into web/dist, which the cardstream binary
# embeds. Installs its npm packages first when package-lock.json changed (npm ci), so a second
# run only rebuilds. Needs Node.js >= 20.19.
set -euo pipefail
cd "$(dirname "$0")/../web"

# Vite 7 needs Node.js 20.19 or later (Debian 12's own nodejs package is 18).
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null; then
  echo "web: Node.js >= 20.19 is needed to build the dashboard; found: $(node --version 2>/dev/null || echo none)" >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "web: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
