#!/usr/bin/env bash
# Runs a benchmark in release mode and prints its table: `scripts/bench.sh gateway`.
# `scripts/bench.sh <name> --help` lists the knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh >/dev/null
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="$TOOLS/bin/tansu"
cargo build --release --locked -p cardstream -p cardstream-bench
exec target/release/cardstream-bench "$@"
