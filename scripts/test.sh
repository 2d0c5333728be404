#!/usr/bin/env bash
# Runs every check and test of cardstream: formatting, lints, then the unit and integration
# tests against the real Postgres (127.0.0.1:5432) and real Kafka-protocol brokers that the
# tests start themselves. Installs what it needs first (scripts/install-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-tools.sh
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="$TOOLS/bin/tansu"

echo "== format"
cargo fmt --all -- --check
echo "== lints"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast "$@"
else
  cargo test --workspace --locked --no-fail-fast "$@"
fi
