#!/usr/bin/env bash
# Fuzzes the webhook signature header parser, the event parser and the GraphQL request path
# with cargo-fuzz (libFuzzer): `scripts/fuzz.sh [target|all] [runs]`.
#
#   targets  signature_header, event_parse, graphql_request (fuzz/fuzz_targets/); default: all
#   runs     cases per target (libFuzzer's -runs); default 100000
#
# Installs cargo-fuzz when missing (idempotent). cargo-fuzz needs nightly-only compiler flags
# (-Z sanitizer, sancov); on a stable toolchain RUSTC_BOOTSTRAP=1 lets stable rustc take them.
# Seeds are fuzz/seeds/<target>/ (committed) plus, for event_parse, the Stripe fixtures;
# fuzz/<target>.dict is the target's libFuzzer dictionary. What libFuzzer finds is kept in
# fuzz/corpus/<target>/, crashes in fuzz/artifacts/<target>/, logs in fuzz/logs/ (all ignored
# by git). Prints per target the runs executed, the time taken, the final
# coverage and whether it crashed; exits non-zero when any target crashed.
#
# Environment: FUZZ_SANITIZER (address, the default; or none, about twice as fast), FUZZ_JOBS
# (cargo build jobs), FUZZ_ARGS (extra libFuzzer flags, e.g. "-max_len=8192").
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION="0.13.2"
targets=(signature_header event_parse graphql_request)
which="${1:-all}"
runs="${2:-100000}"
sanitizer="${FUZZ_SANITIZER:-address}"

if [ "$which" != all ]; then
  case " ${targets[*]} " in
    *" $which "*) targets=("$which") ;;
    *) echo "fuzz: unknown target '$which' (one of: ${targets[*]}, all)" >&2; exit 2 ;;
  esac
fi
if ! [[ "$runs" =~ ^[0-9]+$ ]]; then
  echo "fuzz: runs must be a number, got '$runs'" >&2
  exit 2
fi

if cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: $(cargo fuzz --version) present"
else
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION (once; about 1-2 minutes)"
  start=$SECONDS
  cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --quiet
  echo "fuzz: cargo-fuzz installed in $((SECONDS - start)) s"
fi

# Stable rustc refuses -Z flags unless told it is bootstrapping the compiler.
if ! rustc --version | grep -q nightly; then
  export RUSTC_BOOTSTRAP=1
fi

build_args=(--sanitizer "$sanitizer")
if [ -n "${FUZZ_JOBS:-}" ]; then
  build_args+=(--jobs "$FUZZ_JOBS")
fi

start=$SECONDS
echo "fuzz: building ${targets[*]} (sanitizer: $sanitizer)"
for target in "${targets[@]}"; do
  (cd fuzz && cargo fuzz build "${build_args[@]}" "$target")
done
echo "fuzz: built in $((SECONDS - start)) s"

mkdir -p fuzz/logs
failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus" "fuzz/artifacts/$target"
  seeds=("seeds/$target")
  if [ "$target" = event_parse ]; then
    seeds+=("../crates/stripe/tests/fixtures")
  fi
  log="fuzz/logs/$target.log"
  stamp="fuzz/logs/.$target.start"
  touch "$stamp"
  # shellcheck disable=SC2206 # FUZZ_ARGS is a list of flags on purpose
  args=(-runs="$runs" -timeout=30 -print_final_stats=1)
  if [ -f "fuzz/$target.dict" ]; then
    args+=(-dict="$target.dict")
  fi
  args+=(${FUZZ_ARGS:-})
  echo "fuzz: $target: cargo fuzz run ${build_args[*]} $target corpus/$target ${seeds[*]} -- ${args[*]}"
  start=$SECONDS
  status=0
  (cd fuzz && cargo fuzz run "${build_args[@]}" "$target" "corpus/$target" "${seeds[@]}" -- "${args[@]}") \
    >"$log" 2>&1 || status=$?
  took=$((SECONDS - start))

  done_line=$(grep -E '^Done [0-9]+ runs in' "$log" | tail -n 1 || true)
  executed=$(grep -E '^stat::number_of_executed_units:' "$log" | tail -n 1 | awk '{print $2}' || true)
  final=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  if [ -z "$final" ]; then
    final=$(grep -E '^#[0-9]+[[:space:]]' "$log" | tail -n 1 || true)
  fi
  crashes=$(find "fuzz/artifacts/$target" -newer "$stamp" -type f 2>/dev/null | wc -l)
  echo "fuzz: $target: ${done_line:-no 'Done' line}"
  echo "fuzz: $target: ${executed:-?} runs executed in $took s; final: ${final:-?}"
  if [ "$status" -ne 0 ] || [ -z "$done_line" ]; then
    echo "fuzz: $target: CRASHED (exit $status); the log's end ($log):"
    grep -E 'panicked at|ERROR: |SUMMARY: |Test unit written to|artifact_prefix' "$log" | head -n 20 | sed 's/^/    /' || true
    tail -n 15 "$log" | sed 's/^/    /'
    failed+=("$target")
    summary+=("$target: CRASH after ${executed:-?} runs, $took s")
  else
    summary+=("$target: ${executed:-?} runs, $took s, no crash")
  fi
  if [ "$crashes" -gt 0 ]; then
    echo "fuzz: $target: new files in fuzz/artifacts/$target:"
    find "fuzz/artifacts/$target" -newer "$stamp" -type f | sed 's/^/    /'
  fi
done

echo "fuzz: summary"
printf '    %s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: crashed: ${failed[*]}" >&2
  exit 1
fi
