#!/usr/bin/env bash
# Builds the dashboard (web/: TypeScript, Vite) into web/dist, which the cardstream binary
# embeds. Installs its npm packages first when package-lock.json changed (npm ci), so a second
# run only rebuilds. Needs Node.js >= 20.19.
set -euo pipefail
cd "$(dirname "$0")/../web"

if ! command -v node >/dev/null; then
  echo "web: Node.js (>= 20.19) is needed to build the dashboard (apt-get install nodejs npm)" >&2
  exit 1
fi
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "web: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
npm run --silent build
