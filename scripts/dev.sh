#!/usr/bin/env bash
# Runs cardstream on this machine: a Kafka-protocol broker (tansu, in memory), the topics, the
# database (cardstream_dev on the local Postgres, migrated), the gateway, the aggregator, and
# the simulator sending gentle, realistic traffic. Ctrl-C stops everything.
#
#   scripts/dev.sh               # gateway on :8080 (admin :9090), aggregator admin :9091
#   RATE=200 scripts/dev.sh      # more traffic
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-tools.sh
TOOLS="${CARDSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/cardstream/tools}"
cargo build --release --locked -p cardstream
bin=target/release/cardstream

state=$(mktemp -d -t cardstream-dev.XXXXXX)
pids=()
cleanup() {
  trap - INT TERM EXIT
  echo; echo "stopping…"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$state"
}
trap cleanup INT TERM EXIT

export CARDSTREAM_KAFKA_BROKERS="127.0.0.1:${BROKER_PORT:-19092}"
export CARDSTREAM_WEBHOOK_SECRETS="${CARDSTREAM_WEBHOOK_SECRETS:-whsec_cardstream_dev}"
export CARDSTREAM_LISTEN="${CARDSTREAM_LISTEN:-127.0.0.1:8080}"
export CARDSTREAM_ADMIN_LISTEN="${CARDSTREAM_ADMIN_LISTEN:-127.0.0.1:9090}"
export CARDSTREAM_POLICY_BLOCKED_CATEGORIES="${CARDSTREAM_POLICY_BLOCKED_CATEGORIES:-betting_casino_gambling}"
export CARDSTREAM_POLICY_MAX_AMOUNT="${CARDSTREAM_POLICY_MAX_AMOUNT:-usd=150000,eur=150000,gbp=120000,jpy=200000}"
export CARDSTREAM_POLICY_DAILY_LIMIT="${CARDSTREAM_POLICY_DAILY_LIMIT:-usd=300000,eur=300000,gbp=250000,jpy=400000}"
export CARDSTREAM_DATABASE_URL="${CARDSTREAM_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/cardstream_dev}"

if (exec 3<>"/dev/tcp/${CARDSTREAM_KAFKA_BROKERS/:/\/}") 2>/dev/null; then
  echo "port ${CARDSTREAM_KAFKA_BROKERS##*:} is taken (another broker?); set BROKER_PORT" >&2
  exit 1
fi
(cd "$state" && exec "$TOOLS/bin/tansu" broker --listener-url "tcp://$CARDSTREAM_KAFKA_BROKERS" \
  --advertised-listener-url "tcp://$CARDSTREAM_KAFKA_BROKERS" --storage-engine memory://tansu/ \
  >"$state/broker.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/${CARDSTREAM_KAFKA_BROKERS/:/\/}") 2>/dev/null && break; sleep 0.1; done

"$bin" topics --partitions 4
"$bin" migrate --create-database
"$bin" gateway &
pids+=($!)
CARDSTREAM_ADMIN_LISTEN="${AGGREGATOR_ADMIN_LISTEN:-127.0.0.1:9091}" "$bin" aggregator &
pids+=($!)
for _ in $(seq 100); do curl -sf "http://$CARDSTREAM_ADMIN_LISTEN/readyz" >/dev/null && break; sleep 0.2; done

cat <<MSG

cardstream is running
  webhooks       http://$CARDSTREAM_LISTEN/webhooks/stripe
  authorizations http://$CARDSTREAM_LISTEN/webhooks/stripe/authorization
  metrics        http://$CARDSTREAM_ADMIN_LISTEN/metrics (gateway), http://${AGGREGATOR_ADMIN_LISTEN:-127.0.0.1:9091}/metrics (aggregator)
  database       $CARDSTREAM_DATABASE_URL
  broker         $CARDSTREAM_KAFKA_BROKERS (topic stripe.events)
  simulator      ${RATE:-20} deliveries/s; Ctrl-C stops everything

MSG
"$bin" simulate --target "http://$CARDSTREAM_LISTEN" --rate "${RATE:-20}" --cards 50 --progress 10s &
pids+=($!)
wait -n "${pids[@]}"
