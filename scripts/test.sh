#!/usr/bin/env bash
# Runs every check and test of cardstream: formatting, lints, then the unit and integration
# tests against the real Postgres (127.0.0.1:5432) and real Kafka-protocol brokers that the
# tests start themselves, then the dashboard's tests in headless chromium against
# `cardstream dev`. Installs what it needs first (scripts/install-tools.sh, scripts/web.sh, and
# for the Helm chart's tests scripts/python-tools.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# A cold build of the workspace and its test binaries takes about 4.6 GB (measured on a fresh
# clone); say so at once rather than fail half an hour in with "No space left on device".
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
free_gb=$(( $(df --output=avail -k "$target" | tail -1) / 1024 / 1024 ))
if [ "$free_gb" -lt 8 ]; then
  echo "test: only ${free_gb} GB free where $target lives; the build and tests need about 8 GB" >&2
  exit 1
fi

scripts/install-tools.sh --browser
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="$TOOLS/bin/tansu"

echo "== dashboard build"
scripts/web.sh

echo "== Helm chart (rendered, linted and validated with Helm's engine in .venv)"
scripts/chart-test.sh

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
echo "== browser tests (screenshots in web/test-results/)"
cargo build --locked -p cardstream
(cd web && CARDSTREAM_BIN="$PWD/../target/debug/cardstream" node --test tests/*.test.mjs)
