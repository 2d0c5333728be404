#!/usr/bin/env bash
# Installs the Python tools the Helm chart's tests use (scripts/requirements-chart.txt: Helm 4's
# SDK for render and lint, the Kubernetes OpenAPI schemas, jsonschema) into .venv at the
# repository root, creating it with `python3 -m venv` when missing. Idempotent: a stamp in .venv
# holds the hash of the requirements and the interpreter, and a second run that finds it
# unchanged installs nothing (well under a second).
#
# Needs python3 >= 3.10 (helm-python-sdk's floor), on linux (x86_64, aarch64) or macOS arm64,
# where helm-python-sdk has wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

REQUIREMENTS=scripts/requirements-chart.txt
VENV=.venv
STAMP="$VENV/.requirements-chart.stamp"

if ! python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' 2>/dev/null; then
  echo "python-tools: python3 >= 3.10 is needed; found: $(python3 --version 2>&1 || echo none)" >&2
  exit 1
fi

mkdir -p "$VENV"
# One installer at a time: two test runs may start together.
exec 9>"$VENV/.install.lock"
flock 9

# A venv whose interpreter is gone (python upgraded or removed) is made anew.
if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c '' 2>/dev/null; then
  echo "python-tools: $VENV's interpreter no longer runs; recreating $VENV"
  find "$VENV" -mindepth 1 -maxdepth 1 ! -name .install.lock -exec rm -rf {} +
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "python-tools: creating $VENV ($(python3 --version 2>&1))"
  python3 -m venv "$VENV"
fi

want="$({ sha256sum "$REQUIREMENTS"; "$VENV/bin/python" --version 2>&1; } | sha256sum | cut -d' ' -f1)"
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "python-tools: $VENV up to date with $REQUIREMENTS (stamp ${want:0:12})"
  exit 0
fi

echo "python-tools: installing $REQUIREMENTS into $VENV"
rm -f "$STAMP"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input -r "$REQUIREMENTS"
"$VENV/bin/python" -m pip check --disable-pip-version-check
echo "$want" >"$STAMP"
echo "python-tools: installed: $(grep -E '^[A-Za-z]' "$REQUIREMENTS" | tr '\n' ' ')"
