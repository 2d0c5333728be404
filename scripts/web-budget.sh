#!/usr/bin/env bash
# Prints the dashboard's budget: JavaScript shipped (raw and gzip) and cold-load times in
# headless chromium against `cardstream dev` built in release mode. The budget is the
# dashboard's (what dist/index.html loads); GraphiQL (dist/graphiql.html, React, about 1 MB) is
# exempt: a developer's tool served only with --graphiql, never loaded by the dashboard. Its
# size is printed beside the budget for information.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh --browser >/dev/null
scripts/web.sh >/dev/null
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="$TOOLS/bin/tansu"
cargo build --release --locked -p cardstream
CARDSTREAM_BIN="$PWD/target/release/cardstream" exec node web/scripts/budget.mjs
