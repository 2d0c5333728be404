#!/usr/bin/env bash
# Installs what cardstream's tests and `cardstream dev` need beyond the Rust toolchain and the
# local Postgres, into a per-user tool cache. Idempotent: a second run finds everything and
# takes a second.
#
#   tansu     a Kafka-protocol broker (Apache Kafka itself cannot be installed from the
#             registries this project reaches). Built from crates.io once: about 15-25 minutes on
#             2 cores.
#   promtool  Prometheus' checker (Debian's prometheus package): the tests lint every
#             component's /metrics and the chart's alert rules with it.
#   chromium  with --browser only: Debian's, for the dashboard's browser tests (driven by
#             playwright-core, an npm dev dependency of web/; no browser download).
#
# The cache is $CARDSTREAM_TOOLS, else ${XDG_CACHE_HOME:-~/.cache}/cardstream/tools.
set -euo pipefail

TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
TANSU_VERSION="0.6.0"
mkdir -p "$TOOLS"

# One installer at a time: CI and a developer (or two test runs) may start together.
exec 9>"$TOOLS/.install.lock"
flock 9

tansu="$TOOLS/bin/tansu"
if [ -x "$tansu" ] && "$tansu" --version 2>/dev/null | grep -qx "tansu $TANSU_VERSION"; then
  echo "tools: tansu $TANSU_VERSION present ($tansu)"
else
  echo "tools: building tansu $TANSU_VERSION, a Kafka-protocol broker for the tests (once; 15-25 minutes)"
  # --locked: without it cargo picks dependency versions that do not build together.
  # dynostore and libsql: the memory and SQLite storage engines (the defaults have none).
  cargo install tansu --version "$TANSU_VERSION" --locked --features dynostore,libsql \
    --root "$TOOLS" --quiet
  "$tansu" --version
fi
if command -v promtool >/dev/null; then
  echo "tools: promtool present ($(command -v promtool))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tools: installing Debian's prometheus package for promtool"
  apt-get update -qq
  # The package's service is never started: the tests run promtool only.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
else
  echo "tools: promtool is missing and cannot be installed without root: apt-get install prometheus" >&2
  exit 1
fi

if [ "${1:-}" != "--browser" ]; then
  exit 0
elif command -v chromium >/dev/null; then
  echo "tools: chromium present ($(command -v chromium))"
elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "tools: installing Debian's chromium for the browser tests"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "tools: chromium is missing and cannot be installed without root: apt-get install chromium" >&2
  exit 1
fi
