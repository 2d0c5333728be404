#!/usr/bin/env bash
# Runs the fault drills in release mode and prints what each found: `scripts/drill.sh` runs
# them all; `scripts/drill.sh broker-restart` (or postgres-restart, aggregator-kill, scale,
# gateway-term, duplicates) runs one. `scripts/drill.sh all --help` lists the knobs.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-tools.sh >/dev/null
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="$TOOLS/bin/tansu"
cargo build --release --locked -p cardstream -p cardstream-bench
exec target/release/cardstream-bench drill "${@:-all}"
