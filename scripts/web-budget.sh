#!/usr/bin/env bash
# Prints the dashboard's budget: JavaScript shipped (raw and gzip) and cold-load times in
# headless chromium against `cardstream dev` built in release mode.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh --browser >/dev/null
scripts/web.sh >/dev/null
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="$TOOLS/bin/tansu"
cargo build --release --locked -p cardstream
CARDSTREAM_BIN="$PWD/target/release/cardstream" exec node web/scripts/budget.mjs
