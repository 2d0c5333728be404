#!/usr/bin/env bash
# Runs cardstream on this machine with one command: `cardstream dev` starts a Kafka-protocol
# broker (tansu, in memory), creates the topics and a fresh `cardstream_dev` database on the
# local Postgres, runs the gateway, aggregator and API in one process, adds a demo admin and a
# demo cardholder, and sends gentle simulated traffic. It prints the URLs and the demo logins;
# Ctrl-C stops everything.
#
#   scripts/dev.sh                  # dashboard/GraphQL on :8080, webhooks on :8081
#   RATE=100 scripts/dev.sh         # more traffic
#   scripts/dev.sh --keep-data      # any `cardstream dev` flag (see --help)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-tools.sh
scripts/web.sh
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
export CARDSTREAM_TANSU_BIN="${CARDSTREAM_TANSU_BIN:-$TOOLS/bin/tansu}"
export RUST_LOG="${RUST_LOG:-warn,cardstream=info}"
cargo build --release --locked -p cardstream
exec target/release/cardstream dev --rate "${RATE:-10}" "$@"
