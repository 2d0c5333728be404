#!/usr/bin/env bash
# Tests the Helm chart charts/cardstream offline, with Helm 4's own template engine and linter
# (helm-python-sdk; no helm binary, no cluster): lint, render with the defaults and with every
# toggle on and off, validate every object against the Kubernetes OpenAPI schemas and the
# CardStream against its CRD, and check the alerts and the Grafana dashboard. Installs its
# Python tools into .venv first (scripts/python-tools.sh). Takes a few seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/python-tools.sh
echo "== chart tests (charts/tests/test_chart.py)"
.venv/bin/python charts/tests/test_chart.py "$@"
