#!/usr/bin/env python3
"""Tests of the Helm chart charts/cardstream, offline, with Helm 4's own Go code.

Run `scripts/chart-test.sh` (installs the tools into .venv first), or
`.venv/bin/python charts/tests/test_chart.py`. Exits non-zero, naming what failed, when any
check fails; the last line is "chart: N passed, N failed".

What it checks:
  - `helm lint` (helm-python-sdk: Helm's linter) passes, warnings included, with the default
    values and with every toggle on;
  - the chart renders (helm-python-sdk: Helm's template engine, as `helm template`) with the
    defaults, with every toggle on, and with every toggle off;
  - every rendered object validates: Kubernetes kinds against the Kubernetes OpenAPI schemas
    (kubernetes-validate, strict: unknown fields fail) of the oldest Kubernetes the chart
    supports and the newest the schemas know; the CardStream against the CRD's own
    openAPIV3Schema (k8s/crd.yaml), unknown fields failing as under `kubectl apply`'s strict
    field validation; ServiceMonitor and PrometheusRule (no schema in kubernetes-validate)
    against minimal schemas embedded here, with every alert's PromQL parsed;
  - the operator's objects are equivalent to k8s/operator.yaml, in the release namespace;
  - crds/ is a byte-for-byte copy of k8s/crd.yaml;
  - values.schema.json rejects misspelled keys and out-of-range values;
  - the Grafana dashboard is valid JSON whose queries parse and read only cardstream's metrics.
"""

from __future__ import annotations

import collections
import copy
import json
import re
import sys
import time
import traceback
from pathlib import Path

try:
    import helm_python as helm
    import jsonschema
    import kubernetes_validate
    import promql_parser
    import yaml
except ImportError as missing:
    sys.exit(f"chart: {missing}: run scripts/chart-test.sh (it installs the tools into .venv first)")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "cardstream"
CRD_SOURCE = ROOT / "k8s" / "crd.yaml"
CRD_COPY = CHART / "crds" / "cardstream.dev_cardstreams.yaml"
OPERATOR_MANIFEST = ROOT / "k8s" / "operator.yaml"
DASHBOARD = CHART / "dashboards" / "cardstream.json"

RELEASE = "cardstream"
NAMESPACE = "payments"
# Kubernetes versions the objects are validated for: the oldest the chart supports (Chart.yaml's
# kubeVersion) and the newest kubernetes-validate has schemas for. Helm lints for the newest.
KUBE_VERSIONS = ("1.25.0", "1.37.0")

# What the dashboard must show. Whether the components export each series the dashboard and the
# alerts read is checked against their real /metrics, scraped from running processes, by the
# `dev` test (crates/cardstream/tests/dev.rs), not against a list kept here.
DASHBOARD_METRICS = {
    "cardstream_events_accepted_total",
    "cardstream_webhook_rejections_total",
    "cardstream_signature_failures_total",
    "cardstream_authorization_decisions_total",
    "cardstream_http_requests_total",
    "cardstream_http_request_duration_seconds_bucket",
    "cardstream_produce_duration_seconds_bucket",
    "cardstream_consumer_lag_records",
    "cardstream_records_total",
    "cardstream_batch_duration_seconds_bucket",
    "cardstream_dead_letters_total",
    "cardstream_freshness_seconds_bucket",
    "cardstream_graphql_requests_total",
    "cardstream_graphql_request_duration_seconds_bucket",
    "cardstream_kafka_queue_messages",
    "cardstream_kafka_broker_rtt_p99_seconds",
    "cardstream_database_pool_connections",
    "cardstream_database_pool_acquire_seconds_bucket",
}
ALERTS = {
    "CardStreamConsumerLagHigh": "cardstream_consumer_lag_records",
    "CardStreamDeadLettersGrowing": "cardstream_dead_letters_total",
    "CardStreamWebhook5xxHigh": "cardstream_http_requests_total",
    "CardStreamSignatureFailuresSpike": "cardstream_signature_failures_total",
    "CardStreamAuthorizationLatencyHigh": "cardstream_http_request_duration_seconds_bucket",
    "CardStreamAggregatorPaused": "cardstream_consumer_paused",
    "CardStreamOperatorNoLeader": "cardstream_leader",
    "CardStreamReconcileFailing": "cardstream_reconcile_failures_total",
    "CardStreamFreshnessHigh": "cardstream_freshness_seconds_bucket",
    "CardStreamTargetDown": "up",
    "CardStreamWebhooksMissed": "cardstream_catch_up_events_recovered_total",
    "CardStreamCatchUpFailing": "cardstream_catch_up_runs_total",
}

ALL_ON = {
    "metrics": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {
            "enabled": True,
            "labels": {"release": "kube-prometheus-stack"},
            "alerts": {"consumerLagHigh": {"threshold": 250000}},
        },
    },
    "grafana": {"dashboard": {"enabled": True, "annotations": {"grafana_folder": "Payments"}}},
    "secrets": {
        "create": True,
        "databaseUrl": "postgres://cardstream:secret@postgres:5432/cardstream",
        "webhookSecrets": "whsec_old\nwhsec_new",
        "token": "0123456789abcdef0123456789abcdef",
        "recordKeys": "fedcba9876543210fedcba9876543210\n0123456789abcdef0123456789abcdef",
    },
    "imagePullSecrets": [{"name": "registry"}],
    "ingress": {"enabled": True, "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
                "tls": [{"secretName": "cardstream-tls", "hosts": ["webhooks.cardstream.example.com", "cardstream.example.com"]}]},
    "serviceAccount": {"annotations": {"example.com/role": "operator"}},
    "operator": {
        "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
        "podAnnotations": {"example.com/team": "payments"},
        "podLabels": {"example.com/team": "payments"},
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "payments", "effect": "NoSchedule"}],
        "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{
            "weight": 100,
            "podAffinityTerm": {
                "topologyKey": "kubernetes.io/hostname",
                "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "cardstream-operator"}},
            },
        }]}},
        "topologySpreadConstraints": [{
            "maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "cardstream-operator"}},
        }],
        "priorityClassName": "system-cluster-critical",
        "service": {"annotations": {"example.com/scrape": "true"}},
    },
    "cardstream": {
        "kafka": {"properties": ["security.protocol=SASL_SSL", "sasl.mechanism=SCRAM-SHA-512"]},
        "gateway": {
            "resources": {"requests": {"cpu": "250m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
            "nodeSelector": {"kubernetes.io/os": "linux"},
            "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "edge", "effect": "NoSchedule"}],
            "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                                    "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "gateway"}}}}]}},
            "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}],
            "podAnnotations": {"vault.hashicorp.com/agent-inject": "true"},
            "podLabels": {"example.com/team": "payments"},
            "extraEnv": [{"name": "RUST_LOG", "value": "info"}],
            "priorityClassName": "payments-critical",
        },
        "api": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
        "aggregator": {
            "resources": {"requests": {"cpu": 1, "memory": "256Mi"}},
            "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 8},
        },
        "policy": {"inline": 'blocked_categories = ["betting_casino_gambling"]\n[daily_limit]\nusd = 300000\n'},
    },
}
ALL_OFF = {
    "operator": {"podDisruptionBudget": {"enabled": False}},
    "serviceAccount": {"create": False},
    "rbac": {"create": False},
    "cardstream": {"create": False},
}
SCENARIOS = {"defaults": None, "all toggles on": ALL_ON, "all toggles off": ALL_OFF}

# Values values.schema.json must refuse (rendering and linting fail).
BAD_VALUES = {
    "misspelled top-level key": {"metric": {"serviceMonitor": {"enabled": True}}},
    "misspelled nested key": {"operator": {"replicaz": 3}},
    "misspelled CardStream key": {"cardstream": {"gateway": {"replica": 3}}},
    "negative replicas": {"cardstream": {"aggregator": {"replicas": -1}}},
    "replicas above the CRD's 100": {"cardstream": {"api": {"replicas": 101}}},
    "replicas as a string": {"cardstream": {"gateway": {"replicas": "2"}}},
    "partitions 0": {"cardstream": {"kafka": {"partitions": 0}}},
    "empty bootstrap servers": {"cardstream": {"kafka": {"bootstrapServers": ""}}},
    "secret ref without a name": {"cardstream": {"tokenSecret": {"name": ""}}},
    "secret ref with an unknown field": {"cardstream": {"tokenSecret": {"optional": True}}},
    "unknown pull policy": {"image": {"pullPolicy": "Sometimes"}},
    "a digest that is not sha256": {"image": {"digest": "latest"}},
    "bad alert duration": {"metrics": {"prometheusRule": {"alerts": {"webhook5xxHigh": {"for": "5 minutes"}}}}},
    "unknown alert": {"metrics": {"prometheusRule": {"alerts": {"diskFull": {"enabled": True}}}}},
    "secrets.create without values": {"secrets": {"create": True}},
    "kafka credentialsSecret without a key": {"cardstream": {"kafka": {"credentialsSecret": {"name": "kafka"}}}},
    "a watched namespace that is not a name": {"operator": {"watchNamespaces": ["Team B"]}},
    "token shorter than 32": {"secrets": {**ALL_ON["secrets"], "token": "short"}},
    "a record key shorter than 32": {"secrets": {**ALL_ON["secrets"], "recordKeys": "0123456789abcdef0123456789abcdef\nshort"}},
    "bad resource quantity": {"cardstream": {"gateway": {"resources": {"requests": {"cpu": "lots"}}}}},
    "CardStream name with capitals": {"cardstream": {"name": "CardStream"}},
    "a pod label the operator selects by": {"cardstream": {"api": {"podLabels": {"app.kubernetes.io/name": "x"}}}},
    "a pod annotation that is not a string": {"cardstream": {"gateway": {"podAnnotations": {"a": 1}}}},
    "a spread constraint without a topologyKey": {"cardstream": {"aggregator": {"topologySpreadConstraints": [{"maxSkew": 1, "whenUnsatisfiable": "DoNotSchedule"}]}}},
    "an extra variable without a name": {"cardstream": {"gateway": {"extraEnv": [{"value": "x"}]}}},
    "Connect webhook secrets ref without a key": {"cardstream": {"connectWebhookSecretsSecret": {"name": "stripe-connect"}}},
    "Connect webhook secrets that are no whsec_": {"secrets": {**ALL_ON["secrets"], "connectWebhookSecrets": "acct_123"}},
}
# Values the schema allows but the templates refuse, each with a clear message.
BAD_FOR_TEMPLATES = {
    "a Kafka password inline": (
        {"cardstream": {"kafka": {"properties": ["security.protocol=SASL_SSL", "sasl.password=hunter2"]}}},
        "holds sasl.password, a credential",
    ),
    "a Kafka private key inline": (
        {"cardstream": {"kafka": {"properties": ["SSL.KEY.PEM=-----BEGIN"]}}},
        "holds ssl.key.pem, a credential",
    ),
    "both inline and ConfigMap policy": (
        {"cardstream": {"policy": {"inline": "x = 1", "configMap": {"name": "policy", "key": "policy.toml"}}}},
        "set inline or configMap, not both",
    ),
    "watched namespaces without the release's": (
        {"operator": {"watchNamespaces": ["team-b"]}},
        "leaves out the release namespace payments",
    ),
    "autoscaling min above max": (
        {"cardstream": {"aggregator": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}}},
        "minReplicas is greater than maxReplicas",
    ),
    "two refs naming one Secret key": (
        {**ALL_ON, "cardstream": {"tokenSecret": {"name": "cardstream", "key": "database-url"}}},
        "name the same key",
    ),
    "a Connect secrets ref to create without its value": (
        {**ALL_ON, "cardstream": {"connectWebhookSecretsSecret": {"name": "cardstream", "key": "connect-webhook-secrets"}}},
        "secrets.connectWebhookSecrets (the Connect endpoint's whsec_...) is empty",
    ),
    "Connect secrets to create without a ref": (
        {**ALL_ON, "secrets": {**ALL_ON["secrets"], "connectWebhookSecrets": "whsec_connect"}},
        "names no Secret key to store it in",
    ),
    "the Connect secrets in the account endpoint's key": (
        {**ALL_ON, "secrets": {**ALL_ON["secrets"], "connectWebhookSecrets": "whsec_connect"},
         "cardstream": {"connectWebhookSecretsSecret": {"name": "cardstream", "key": "webhook-secrets"}}},
        "name the same key",
    ),
}

DURATION = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 253},
        "namespace": {"type": "string"},
        "labels": LABELS,
        "annotations": LABELS,
    },
}
# Minimal schemas of prometheus-operator's kinds (kubernetes-validate has only Kubernetes' own):
# the fields this chart sets, unknown fields failing.
SERVICE_MONITOR = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": LABELS, "matchExpressions": {"type": "array"}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"any": {"type": "boolean"}, "matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string", "minLength": 1},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": {"type": "string", "pattern": DURATION},
                            "scrapeTimeout": {"type": "string", "pattern": DURATION},
                        },
                    },
                },
            },
        },
    },
}
PROMETHEUS_RULE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "PrometheusRule"},
        "metadata": METADATA,
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["groups"],
            "properties": {
                "groups": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["name", "rules"],
                        "properties": {
                            "name": {"type": "string", "minLength": 1},
                            "interval": {"type": "string", "pattern": DURATION},
                            "rules": {
                                "type": "array",
                                "minItems": 1,
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["alert", "expr", "labels", "annotations"],
                                    "properties": {
                                        "alert": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                                        "expr": {"type": "string", "minLength": 1},
                                        "for": {"type": "string", "pattern": DURATION},
                                        "labels": {
                                            "type": "object",
                                            "required": ["severity"],
                                            "additionalProperties": {"type": "string"},
                                            "properties": {"severity": {"enum": ["critical", "warning", "info"]}},
                                        },
                                        "annotations": {
                                            "type": "object",
                                            "required": ["summary", "description"],
                                            "additionalProperties": {"type": "string"},
                                            "properties": {
                                                "summary": {"type": "string", "minLength": 10},
                                                "description": {"type": "string", "minLength": 80},
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}


class CheckFailed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def load_chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def render(values: dict | None) -> tuple[dict[str, str], list[dict]]:
    """Renders as `helm template --include-crds`: the manifests and the objects, CRDs first."""
    with load_chart() as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        crds = chart.crds
    objects = []
    for crd in crds:
        objects.extend(d for d in yaml.safe_load_all(crd["data"]) if d)
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for document in yaml.safe_load_all(text):
            if document is not None:
                check(isinstance(document, dict), f"{path}: a document that is not an object")
                document.setdefault("__source__", path)
                objects.append(document)
    return manifests, objects


def render_notes(values: dict | None) -> str:
    with load_chart() as chart:
        return chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)["cardstream/templates/NOTES.txt"]


def source(obj: dict) -> str:
    return f"{obj.get('__source__', 'crds/')}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def strip(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k != "__source__"}


# --- the CRD's openAPIV3Schema as JSON Schema ---------------------------------------------------


def crd_json_schema() -> dict:
    crd = yaml.safe_load(CRD_SOURCE.read_text())
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1")
    schema = openapi_to_json_schema(copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    group = crd["spec"]["group"]
    schema["properties"]["apiVersion"] = {"const": f"{group}/v1alpha1"}
    schema["properties"]["kind"] = {"const": crd["spec"]["names"]["kind"]}
    schema["properties"]["metadata"] = METADATA
    schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind", "metadata"})
    return schema


def openapi_to_json_schema(node: dict) -> dict:
    """The API server's reading of a structural schema, as JSON Schema: nullable admits null,
    x-kubernetes-int-or-string admits both, and an object with properties admits no other field
    (the server's strict field validation rejects unknown fields)."""
    for key in ("properties",):
        if key in node:
            node[key] = {k: openapi_to_json_schema(v) for k, v in node[key].items()}
    if isinstance(node.get("items"), dict):
        node["items"] = openapi_to_json_schema(node["items"])
    if isinstance(node.get("additionalProperties"), dict):
        node["additionalProperties"] = openapi_to_json_schema(node["additionalProperties"])
    if node.pop("x-kubernetes-int-or-string", False):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
        if not node.get("x-kubernetes-preserve-unknown-fields"):
            node["additionalProperties"] = False
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    fmt = node.pop("format", None)
    if fmt == "int32":
        node.setdefault("minimum", -(2**31))
        node.setdefault("maximum", 2**31 - 1)
    return node


# --- PromQL ---------------------------------------------------------------------------------------


def promql_metrics(expr: str, where: str) -> set[str]:
    """Parses a PromQL expression (Prometheus's grammar); returns the metric names it reads."""
    # Grafana's variables, replaced by values of their kind.
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".*", expr)
    try:
        tree = promql_parser.parse(expr)
    except ValueError as error:
        raise CheckFailed(f"{where}: PromQL does not parse: {error}: {expr}") from None
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            check(bool(node.name), f"{where}: a selector without a metric name: {expr}")
            names.add(node.name)

    promql_parser.walk(tree, visit)
    return names


# --- the checks -----------------------------------------------------------------------------------

# (name, function) in the order they run; a check raises CheckFailed with what to fix.
TESTS: list = []
COUNTS: dict[str, collections.Counter] = {}


def case(name: str):
    def register(fn):
        TESTS.append((name, fn))
        return fn

    return register


@case("crds/ is a byte-for-byte copy of k8s/crd.yaml")
def test_crd_copy():
    check(CRD_COPY.exists(), f"{CRD_COPY.relative_to(ROOT)} is missing: run `cp k8s/crd.yaml {CRD_COPY.relative_to(ROOT)}`")
    check(
        CRD_COPY.read_bytes() == CRD_SOURCE.read_bytes(),
        f"{CRD_COPY.relative_to(ROOT)} differs from k8s/crd.yaml (the CRD the code generates): "
        f"run `cp k8s/crd.yaml {CRD_COPY.relative_to(ROOT)}`",
    )


def lint(values: dict | None, label: str):
    report = helm.lint(CHART, values, strict=True, namespace=NAMESPACE, kube_version=f"v{KUBE_VERSIONS[-1]}")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    for m in report["messages"]:
        if m["severity"] < 2:
            print(f"    lint ({label}) info: {m['path']}: {m['error'].strip()}")
    check(report["total_charts_linted"] == 1, f"lint ({label}): linted {report['total_charts_linted']} charts")
    check(
        not problems and not report["errors"],
        f"helm lint ({label}):\n" + "\n".join(f"  [{'?IWE'[m['severity']]}] {m['path']}: {m['error'].strip()}" for m in problems)
        + "".join(f"\n  {e.strip()}" for e in report["errors"]),
    )


@case("helm lint --strict passes with the default values")
def test_lint_defaults():
    lint(None, "defaults")


@case("helm lint --strict passes with every toggle on")
def test_lint_all_on():
    lint(ALL_ON, "all toggles on")


def validate_object(obj: dict, crd_schema: dict) -> str:
    """Validates one object; returns what it was validated against."""
    kind, api = obj.get("kind"), obj.get("apiVersion", "")
    body = strip(obj)
    if kind == "CardStream":
        errors = sorted(jsonschema.Draft7Validator(crd_schema).iter_errors(body), key=lambda e: list(e.path))
        check(not errors, f"{source(obj)} does not match the CRD's schema:\n" + "\n".join(
            f"  at {'/'.join(map(str, e.path)) or '/'}: {e.message}" for e in errors))
        return "the CRD's openAPIV3Schema"
    if api == "monitoring.coreos.com/v1":
        schema = {"ServiceMonitor": SERVICE_MONITOR, "PrometheusRule": PROMETHEUS_RULE}.get(kind)
        check(schema is not None, f"{source(obj)}: no schema for {api} {kind} in this test")
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(body))
        check(not errors, f"{source(obj)}:\n" + "\n".join(f"  at {'/'.join(map(str, e.path))}: {e.message}" for e in errors))
        return "a minimal embedded schema (kubernetes-validate has no prometheus-operator schemas)"
    for version in KUBE_VERSIONS:
        try:
            kubernetes_validate.validate(body, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(map(str, error.path)) or "/"
            raise CheckFailed(f"{source(obj)} is not a valid {kind} for Kubernetes {version}: at {path}: {error.message}") from None
        except kubernetes_validate.SchemaNotFoundError as error:
            raise CheckFailed(f"{source(obj)}: {error.message}") from None
    return f"Kubernetes {' and '.join(KUBE_VERSIONS)} OpenAPI (strict)"


def scenario_test(label: str, values: dict | None):
    def run():
        manifests, objects = render(values)
        crd_schema = crd_json_schema()
        counts: collections.Counter = collections.Counter()
        against: dict[str, str] = {}
        for obj in objects:
            check("kind" in obj and "apiVersion" in obj and "metadata" in obj, f"{source(obj)}: no kind, apiVersion or metadata")
            against[obj["kind"]] = validate_object(obj, crd_schema)
            counts[obj["kind"]] += 1
            ns = obj["metadata"].get("namespace")
            if obj["kind"] in CLUSTER_SCOPED:
                check(ns is None, f"{source(obj)} is cluster-scoped but has namespace {ns}")
            else:
                check(ns == NAMESPACE, f"{source(obj)} is in namespace {ns!r}, not the release's {NAMESPACE!r}")
        names = collections.Counter((o["kind"], o["metadata"]["name"]) for o in objects)
        check(all(n == 1 for n in names.values()), f"duplicate objects: {[k for k, n in names.items() if n > 1]}")
        COUNTS[label] = counts
        print(f"    {label}: {sum(counts.values())} objects rendered and validated")
        for kind in sorted(counts):
            print(f"      {counts[kind]:2d} {kind:<26} against {against[kind]}")
        notes = manifests.get("cardstream/templates/NOTES.txt", "")
        check("kubectl" in notes and "get cardstreams" in notes, f"{label}: NOTES.txt does not say how to watch CardStreams")
        SCENARIO_OBJECTS[label] = objects
        SCENARIO_NOTES[label] = notes

    return run


SCENARIO_OBJECTS: dict[str, list[dict]] = {}
SCENARIO_NOTES: dict[str, str] = {}
for _label, _values in SCENARIOS.items():
    TESTS.append((f"renders and every object validates: {_label}", scenario_test(_label, _values)))


def only(objects: list[dict], kind: str, label: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    check(len(found) == 1, f"{label}: {len(found)} {kind} objects, expected 1")
    return found[0]


def objects_of(label: str) -> list[dict]:
    if label not in SCENARIO_OBJECTS:
        SCENARIO_OBJECTS[label] = render(SCENARIOS[label])[1]
    return SCENARIO_OBJECTS[label]


@case("the operator's objects are equivalent to k8s/operator.yaml")
def test_operator_equivalent():
    docs = [d for d in yaml.safe_load_all(OPERATOR_MANIFEST.read_text()) if d]
    reference = {d["kind"]: d for d in docs}
    objects = objects_of("defaults")
    sa = only(objects, "ServiceAccount", "defaults")["metadata"]["name"]
    check(not any(o["kind"].startswith("Cluster") and o["kind"] != "CustomResourceDefinition" for o in objects + docs),
          "a ClusterRole or ClusterRoleBinding by default: the operator is namespaced unless rbac.clusterWide")

    def by_role(items: list[dict], kind: str) -> dict[str, dict]:
        return {("leader" if o["metadata"]["name"].endswith("-leader") else "reconciler"): o for o in items if o["kind"] == kind}

    chart_roles, k8s_roles = by_role(objects, "Role"), by_role(docs, "Role")
    check(sorted(chart_roles) == sorted(k8s_roles) == ["leader", "reconciler"], f"Roles: chart {sorted(chart_roles)}, k8s {sorted(k8s_roles)}")
    for which, role in chart_roles.items():
        got, want = role["rules"], k8s_roles[which]["rules"]
        check(got == want, f"{which} Role rules differ from k8s/operator.yaml:\n  chart: {got}\n  k8s:   {want}")
        check(role["metadata"]["namespace"] == NAMESPACE, f"{which} Role in {role['metadata']['namespace']}")
    for which, binding in by_role(objects, "RoleBinding").items():
        check(binding["subjects"] == [{"kind": "ServiceAccount", "name": sa, "namespace": NAMESPACE}], f"{which} RoleBinding subjects: {binding['subjects']}")
        role = chart_roles[which]["metadata"]["name"]
        check(binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role}, f"{which} RoleBinding roleRef: {binding['roleRef']}")
    secrets = [r for r in chart_roles["reconciler"]["rules"] if "secrets" in r["resources"]]
    check(secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["cardstream"]}],
          f"Secret access is not `get` on the CardStream's own Secret only: {secrets}")

    deployment = only(objects, "Deployment", "defaults")
    want_pod = reference["Deployment"]["spec"]["template"]["spec"]
    pod = deployment["spec"]["template"]["spec"]
    check(deployment["spec"]["replicas"] == reference["Deployment"]["spec"]["replicas"], "operator replicas differ")
    check(pod["serviceAccountName"] == sa, f"serviceAccountName {pod['serviceAccountName']} is not the chart's ServiceAccount {sa}")
    for key, value in want_pod["securityContext"].items():
        check(pod["securityContext"].get(key) == value, f"pod securityContext.{key}: {pod['securityContext'].get(key)!r}, k8s/operator.yaml has {value!r}")
    (container,) = pod["containers"]
    (want,) = want_pod["containers"]
    check(container["image"] == "ghcr.io/cardstream/cardstream:0.1.0", f"image {container['image']}: the tag must default to appVersion")
    # The manifests watch their own namespace (cardstream-system); the chart its release's.
    env = [e if e["name"] != "CARDSTREAM_WATCH_NAMESPACES" else {**e, "value": "cardstream-system"} for e in container["env"]]
    check({"name": "CARDSTREAM_WATCH_NAMESPACES", "value": NAMESPACE} in container["env"], f"the operator does not watch {NAMESPACE} only: {container['env']}")
    check({"name": "CARDSTREAM_ALLOWED_IMAGES", "value": "ghcr.io/cardstream/cardstream"} in container["env"], f"the operator allows other images than the chart's: {container['env']}")
    check(env == want["env"], f"container env differs from k8s/operator.yaml:\n  chart: {env}\n  k8s:   {want['env']}")
    for key in ("args", "livenessProbe", "readinessProbe", "resources", "securityContext"):
        check(container.get(key) == want.get(key), f"container {key} differs from k8s/operator.yaml:\n  chart: {container.get(key)}\n  k8s:   {want.get(key)}")
    check([(p["name"], p["containerPort"]) for p in container["ports"]] == [("admin", 9090)], f"ports {container['ports']}")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    for key, value in reference["Deployment"]["spec"]["template"]["metadata"]["annotations"].items():
        check(annotations.get(key) == value, f"pod annotation {key}: {annotations.get(key)!r}")
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    check(selector.items() <= pod_labels.items(), f"selector {selector} does not select the pod labels {pod_labels}")
    check(selector.get("app.kubernetes.io/name") != "cardstream", "the operator's selector would overlap the components' (name=cardstream)")

    service = only(objects, "Service", "defaults")
    check(service["spec"]["selector"] == selector, f"the operator Service selects {service['spec']['selector']}, not the operator's pods {selector}")
    check([(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [("admin", 9090, "admin")], f"Service ports {service['spec']['ports']}")


@case("Chart.yaml: home, sources, maintainers, icon, kubeVersion and Artifact Hub annotations that parse")
def test_chart_metadata():
    meta = yaml.safe_load((CHART / "Chart.yaml").read_text())
    for key in ("home", "sources", "maintainers", "icon", "kubeVersion"):
        check(meta.get(key), f"Chart.yaml has no {key}")
    check(all(m.get("name") and (m.get("email") or m.get("url")) for m in meta["maintainers"]), f"maintainers {meta['maintainers']}")
    icon = meta["icon"].rsplit("/main/", 1)[-1]
    check((ROOT / icon).is_file(), f"the icon {meta['icon']} is not a file of the repository ({icon})")
    annotations = meta["annotations"]
    for key in ("license", "category", "operator", "images", "crds", "crdsExamples", "links", "changes"):
        check(f"artifacthub.io/{key}" in annotations, f"no artifacthub.io/{key}")
    images = yaml.safe_load(annotations["artifacthub.io/images"])
    check(images == [{"name": "cardstream", "image": f"ghcr.io/cardstream/cardstream:{meta['appVersion']}"}], f"artifacthub.io/images {images} is not the appVersion image")
    crds = yaml.safe_load(annotations["artifacthub.io/crds"])
    crd = yaml.safe_load((ROOT / "k8s" / "crd.yaml").read_text())
    check([(c["kind"], c["version"], c["name"]) for c in crds] == [(crd["spec"]["names"]["kind"], crd["spec"]["versions"][0]["name"], crd["metadata"]["name"])], f"artifacthub.io/crds {crds}")
    schema = crd_json_schema()
    for example in yaml.safe_load(annotations["artifacthub.io/crdsExamples"]):
        errors = list(jsonschema.Draft7Validator(schema).iter_errors(strip(example)))
        check(not errors, f"the Artifact Hub CardStream example does not validate: {[e.message for e in errors]}")
    for change in yaml.safe_load(annotations["artifacthub.io/changes"]):
        check(change["kind"] in ("added", "changed", "deprecated", "removed", "fixed", "security"), f"change kind {change['kind']}")


@case("the operator's PodDisruptionBudget keeps a standby through drains (none with one replica)")
def test_operator_disruption_budget():
    objects = objects_of("defaults")
    budget = only(objects, "PodDisruptionBudget", "defaults")
    deployment = only(objects, "Deployment", "defaults")
    check(budget["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": deployment["spec"]["selector"]["matchLabels"]}}, f"PDB spec {budget['spec']}")
    reference = [d for d in yaml.safe_load_all(OPERATOR_MANIFEST.read_text()) if d and d["kind"] == "PodDisruptionBudget"]
    check(len(reference) == 1 and reference[0]["spec"]["maxUnavailable"] == 1, f"k8s/operator.yaml's PodDisruptionBudget: {reference}")
    single = render({"operator": {"replicas": 1}})[1]
    check(not any(o["kind"] == "PodDisruptionBudget" for o in single), "a PDB for one replica would block every drain")


@case("ingress: webhooks to the gateway, the dashboard to the API, TLS; NOTES gives Stripe the URLs")
def test_ingress():
    tls = [{"secretName": "cardstream-tls", "hosts": ["hooks.example.com", "cards.example.com"]}]
    split = {"ingress": {"enabled": True, "className": "nginx", "webhooks": {"host": "hooks.example.com"}, "dashboard": {"host": "cards.example.com"}, "tls": tls}}
    objects = render(split)[1]
    crd_schema = crd_json_schema()
    ingress = only(objects, "Ingress", "ingress")
    validate_object(ingress, crd_schema)
    routes = {(r["host"], p["path"], p["pathType"], p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
              for r in ingress["spec"]["rules"] for p in r["http"]["paths"]}
    check(routes == {("hooks.example.com", "/webhooks/stripe", "Prefix", "cardstream-gateway", "http"),
                     ("cards.example.com", "/", "Prefix", "cardstream-api", "http")}, f"routes {routes}")
    check(ingress["spec"]["tls"] == tls and ingress["spec"]["ingressClassName"] == "nginx", f"tls/class {ingress['spec']}")
    notes = render_notes(split)
    for url in ("https://hooks.example.com/webhooks/stripe\n", "https://hooks.example.com/webhooks/stripe/authorization", "https://cards.example.com/"):
        check(url in notes, f"NOTES.txt does not give {url!r}:\n{notes}")
    one = {"ingress": {"enabled": True, "webhooks": {"host": "cards.example.com"}, "dashboard": {"host": "cards.example.com"}}}
    ingress = only(render(one)[1], "Ingress", "one host")
    check([[p["path"] for p in r["http"]["paths"]] for r in ingress["spec"]["rules"]] == [["/webhooks/stripe", "/"]], f"one host: {ingress['spec']['rules']}")
    notes = render_notes(one)
    check("http://cards.example.com/webhooks/stripe" in notes and "Stripe only posts to https" in notes, f"NOTES without TLS:\n{notes}")
    check(not any(o["kind"] == "Ingress" for o in objects_of("defaults")), "an Ingress by default")


@case("helm test: a hook Pod probes the API (dashboard and readiness) and the gateway with the image's own probe")
def test_helm_test_hook():
    objects = objects_of("defaults")
    pod = only(objects, "Pod", "defaults")
    annotations = pod["metadata"]["annotations"]
    check(annotations.get("helm.sh/hook") == "test", f"annotations {annotations}")
    check("hook-succeeded" in annotations.get("helm.sh/hook-delete-policy", ""), "the test Pod is left behind after success")
    (container,) = pod["spec"]["containers"]
    cs = only(objects, "CardStream", "defaults")
    check(container["image"] == cs["spec"]["image"], f"the test runs {container['image']}, not the CardStream's image")
    check(container["args"] == ["probe", f"http://cardstream-api.{NAMESPACE}.svc/", f"http://cardstream-api.{NAMESPACE}.svc:9090/readyz",
                                f"http://cardstream-gateway.{NAMESPACE}.svc:9090/readyz"], f"args {container['args']}")
    check(pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["securityContext"]["runAsNonRoot"], f"pod spec {pod['spec']}")
    check(container["securityContext"]["readOnlyRootFilesystem"], "the test container's root filesystem is writable")
    check(not any(o["kind"] == "Pod" for o in objects_of("all toggles off")), "a test Pod without a CardStream")


@case("image.digest pins the operator and the CardStream by digest")
def test_image_digest():
    digest = "sha256:" + "ab" * 32
    objects = render({"image": {"digest": digest}})[1]
    image = f"ghcr.io/cardstream/cardstream:0.1.0@{digest}"
    container = only(objects, "Deployment", "digest")["spec"]["template"]["spec"]["containers"][0]
    check(container["image"] == image, f"operator image {container['image']}")
    check(only(objects, "CardStream", "digest")["spec"]["image"] == image, "the CardStream does not run the pinned image")


@case("the default CardStream: appVersion image, secret refs, components")
def test_cardstream_defaults():
    cs = only(objects_of("defaults"), "CardStream", "defaults")
    spec = cs["spec"]
    check(cs["metadata"]["name"] == "cardstream", f"CardStream name {cs['metadata']['name']}")
    check(spec["image"] == "ghcr.io/cardstream/cardstream:0.1.0", f"CardStream image {spec['image']}")
    check(spec["kafka"] == {"bootstrapServers": "kafka:9092", "topic": "stripe.events", "partitions": 8, "replicationFactor": 3}, f"kafka {spec['kafka']}")
    for ref, key in (("databaseUrlSecret", "database-url"), ("webhookSecretsSecret", "webhook-secrets"), ("tokenSecret", "token-secret"), ("recordKeysSecret", "record-keys")):
        check(spec[ref] == {"name": "cardstream", "key": key}, f"{ref}: {spec[ref]}")
    for component in ("gateway", "api", "aggregator"):
        check(spec[component] == {"replicas": 2}, f"{component}: {spec[component]}")
    check("policy" not in spec, "a policy with none configured")
    check(not any(o["kind"] == "Secret" for o in objects_of("defaults")), "the chart creates a Secret by default")
    notes = SCENARIO_NOTES.get("defaults") or render_notes(None)
    for text in (f"kubectl -n {NAMESPACE} create secret generic cardstream", "--from-literal=database-url=",
                 "--from-literal=webhook-secrets='whsec_", "--from-literal=token-secret=", "--from-literal=record-keys=", f"kubectl -n {NAMESPACE} get cardstreams",
                 "port 9090, path\n/metrics"):
        check(text in notes, f"NOTES.txt does not say {text!r}:\n{notes}")


@case("secrets.create without a token or record keys: generated, 64 random characters, new for each install")
def test_generated_secrets():
    values = {"secrets": {"create": True, "databaseUrl": ALL_ON["secrets"]["databaseUrl"], "webhookSecrets": "whsec_x"}}
    first, second = (only(render(values)[1], "Secret", "generated")["stringData"] for _ in range(2))
    for key in ("token-secret", "record-keys"):
        value = first[key]
        check(len(value) == 64 and value.isalnum(), f"{key}: {len(value)} characters, not 64 random ones")
        check(value != second[key], f"{key}: the same value in two installs")
        check(value not in (CHART / "values.yaml").read_text(), f"{key} comes from values.yaml")
    check(first["token-secret"] != first["record-keys"], "the token secret and the record key are the same")


@case("a Stripe Connect endpoint's webhook secrets: an optional second Secret key, given to the CardStream, created with secrets.create")
def test_connect_webhook_secrets():
    check("connectWebhookSecretsSecret" not in only(objects_of("defaults"), "CardStream", "defaults")["spec"],
          "a Connect endpoint's secrets by default")
    check("Connect" not in (SCENARIO_NOTES.get("defaults") or render_notes(None)), "NOTES.txt speaks of Connect by default")
    ref = {"name": "stripe-connect", "key": "whsec"}
    manifests, objects = render({"cardstream": {"connectWebhookSecretsSecret": ref}, "ingress": {"enabled": True}})
    cs = only(objects, "CardStream", "Connect")
    validate_object(cs, crd_json_schema())
    check(cs["spec"]["connectWebhookSecretsSecret"] == ref, f"connectWebhookSecretsSecret: {cs['spec'].get('connectWebhookSecretsSecret')}")
    check(cs["spec"]["webhookSecretsSecret"] == {"name": "cardstream", "key": "webhook-secrets"}, "the account endpoint's secrets changed")
    notes = manifests["cardstream/templates/NOTES.txt"]
    for text in (f"kubectl -n {NAMESPACE} create secret generic stripe-connect --from-literal=whsec='whsec_...'",
                 "goes in Secret stripe-connect, key whsec"):
        check(text in notes, f"NOTES.txt does not say {text!r}:\n{notes}")
    # In the Secret the others are in: a key added to it, not a second `create` that would fail.
    notes = render_notes({"cardstream": {"connectWebhookSecretsSecret": {"name": "cardstream", "key": "connect-webhook-secrets"}}})
    check(f"kubectl -n {NAMESPACE} patch secret cardstream --type merge -p '{{\"stringData\":{{\"connect-webhook-secrets\":\"whsec_...\"}}}}'" in notes,
          f"NOTES.txt does not add the key to the existing Secret:\n{notes}")
    values = {**ALL_ON, "secrets": {**ALL_ON["secrets"], "connectWebhookSecrets": "whsec_connect_a\nwhsec_connect_b"},
              "cardstream": {"connectWebhookSecretsSecret": {"name": "cardstream", "key": "connect-webhook-secrets"}}}
    secret = only(render(values)[1], "Secret", "Connect created")
    check(secret["stringData"].get("connect-webhook-secrets") == "whsec_connect_a\nwhsec_connect_b",
          f"Secret stringData keys {sorted(secret['stringData'])}")
    check(secret["stringData"]["webhook-secrets"] == ALL_ON["secrets"]["webhookSecrets"], "the account endpoint's secrets changed")


@case("every toggle on: the CardStream, Secret, ServiceMonitor, alerts, dashboard")
def test_all_on():
    objects = objects_of("all toggles on")
    spec = only(objects, "CardStream", "all toggles on")["spec"]
    check(spec["aggregator"]["autoscaling"] == {"minReplicas": 1, "maxReplicas": 8, "targetLagPerReplica": 20000, "stabilizationWindowSeconds": 300}, f"autoscaling {spec['aggregator']}")
    check(spec["policy"] == {"inline": ALL_ON["cardstream"]["policy"]["inline"]}, f"policy {spec.get('policy')}: not the TOML given")
    check(spec["kafka"]["properties"] == ALL_ON["cardstream"]["kafka"]["properties"], f"kafka {spec['kafka']}")
    check(spec["imagePullSecrets"] == ALL_ON["imagePullSecrets"], f"imagePullSecrets {spec.get('imagePullSecrets')}: the components would not pull the image")
    check(spec["gateway"]["resources"] == ALL_ON["cardstream"]["gateway"]["resources"], f"gateway {spec['gateway']}: the resources given are not passed on")
    for field in ("nodeSelector", "tolerations", "affinity", "topologySpreadConstraints", "podAnnotations", "podLabels", "extraEnv", "priorityClassName"):
        check(spec["gateway"].get(field) == ALL_ON["cardstream"]["gateway"][field], f"gateway.{field}: {spec['gateway'].get(field)!r}, not the value given")
        check(field not in spec["api"], f"api.{field} set though only the gateway's was given")

    secret = only(objects, "Secret", "all toggles on")
    check("data" not in secret and secret["metadata"]["name"] == "cardstream", f"Secret {secret['metadata']['name']} with data")
    check(secret["stringData"] == {
        "database-url": ALL_ON["secrets"]["databaseUrl"],
        "webhook-secrets": ALL_ON["secrets"]["webhookSecrets"],
        "token-secret": ALL_ON["secrets"]["token"],
        "record-keys": ALL_ON["secrets"]["recordKeys"],
    }, f"Secret stringData keys {sorted(secret['stringData'])}")

    monitor = only(objects, "ServiceMonitor", "all toggles on")
    service = only(objects, "Service", "all toggles on")
    wanted = monitor["spec"]["selector"]["matchLabels"]
    check(wanted.items() <= service["metadata"]["labels"].items(), f"the ServiceMonitor selects {wanted}, the operator Service has {service['metadata']['labels']}")
    check(monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}, f"namespaceSelector {monitor['spec']['namespaceSelector']}")
    ports = {p["name"] for p in service["spec"]["ports"]}
    check(all(e["port"] in ports for e in monitor["spec"]["endpoints"]), f"endpoints {monitor['spec']['endpoints']} name no port of {ports}")
    check(monitor["metadata"]["labels"].get("release") == "kube-prometheus-stack", "metrics.serviceMonitor.labels not applied")

    rule = only(objects, "PrometheusRule", "all toggles on")
    alerts = {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}
    check(set(alerts) == set(ALERTS), f"alerts {sorted(alerts)}, expected {sorted(ALERTS)}")
    for name, rule_ in alerts.items():
        names = promql_metrics(rule_["expr"], f"alert {name}")
        check(all(n.startswith("cardstream_") or n == "up" for n in names), f"alert {name} reads metrics that are not cardstream's: {sorted(names)}")
        check(ALERTS[name] in names, f"alert {name} does not read {ALERTS[name]}: {rule_['expr']}")
        check(f'namespace="{NAMESPACE}"' in rule_["expr"], f"alert {name} is not scoped to the release namespace: {rule_['expr']}")
        check("Check" in rule_["annotations"]["description"], f"alert {name}: the description does not say what to check")
    check("> 250000" in alerts["CardStreamConsumerLagHigh"]["expr"], f"the lag threshold from values is not used: {alerts['CardStreamConsumerLagHigh']['expr']}")
    check(alerts["CardStreamConsumerLagHigh"]["for"] == "10m", "the lag alert's for is not 10m")
    check('route="/webhooks/stripe/authorization"' in alerts["CardStreamAuthorizationLatencyHigh"]["expr"], "the latency alert is not on the authorization route")
    check('status=~"5.."' in alerts["CardStreamWebhook5xxHigh"]["expr"], "the 5xx alert does not select 5xx")

    dashboard = only(objects, "ConfigMap", "all toggles on")
    check(dashboard["metadata"]["labels"].get("grafana_dashboard") == "1", "the dashboard ConfigMap lacks grafana_dashboard: \"1\"")
    check(json.loads(dashboard["data"]["cardstream.json"]) == json.loads(DASHBOARD.read_text()), "the ConfigMap's dashboard is not dashboards/cardstream.json")

    deployment = only(objects, "Deployment", "all toggles on")
    pod = deployment["spec"]["template"]
    check(pod["metadata"]["labels"]["example.com/team"] == "payments", "operator.podLabels not applied")
    check(deployment["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items(), "podLabels broke the selector")
    check({"name": "RUST_LOG", "value": "info"} in pod["spec"]["containers"][0]["env"], "operator.extraEnv not applied")


def operator_env(objects: list[dict]) -> dict[str, str]:
    deployment = only([o for o in objects if o["metadata"]["name"].endswith("-operator")], "Deployment", "operator")
    return {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


@case("watchNamespaces: a Role and RoleBinding in each, and the operator told to watch exactly those")
def test_watch_namespaces():
    objects = render({"operator": {"watchNamespaces": ["payments", "team-b"]}})[1]
    roles = sorted((o["kind"], o["metadata"]["namespace"]) for o in objects if o["kind"] in ("Role", "RoleBinding") and not o["metadata"]["name"].endswith("-leader"))
    check(roles == [("Role", "payments"), ("Role", "team-b"), ("RoleBinding", "payments"), ("RoleBinding", "team-b")], f"roles {roles}")
    check(not any(o["kind"] in ("ClusterRole", "ClusterRoleBinding") for o in objects), "a ClusterRole in namespaced mode")
    env = operator_env(objects)
    check(env.get("CARDSTREAM_WATCH_NAMESPACES") == "payments,team-b", f"CARDSTREAM_WATCH_NAMESPACES {env.get('CARDSTREAM_WATCH_NAMESPACES')!r}")


@case("rbac.clusterWide: a ClusterRole, every namespace watched, Secrets by any name")
def test_cluster_wide():
    objects = render({"rbac": {"create": True, "clusterWide": True}})[1]
    role = only(objects, "ClusterRole", "cluster-wide")
    binding = only(objects, "ClusterRoleBinding", "cluster-wide")
    check(binding["roleRef"]["name"] == role["metadata"]["name"], f"roleRef {binding['roleRef']}")
    check([o["metadata"]["name"] for o in objects if o["kind"] == "Role"] == [role["metadata"]["name"] + "-leader"], "a namespaced reconciler Role besides the ClusterRole")
    secrets = [r for r in role["rules"] if "secrets" in r["resources"]]
    check(secrets == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}], f"secrets rule {secrets}")
    check("CARDSTREAM_WATCH_NAMESPACES" not in operator_env(objects), "a namespace list in cluster-wide mode")


@case("allowedImages and kafka.credentialsSecret reach the operator and the CardStream")
def test_images_and_kafka_credentials():
    values = {
        "operator": {"allowedImages": ["ghcr.io/cardstream/cardstream", "registry.example.com/"]},
        "cardstream": {"kafka": {"credentialsSecret": {"name": "kafka-client", "key": "properties"}}},
    }
    objects = render(values)[1]
    env = operator_env(objects)
    check(env.get("CARDSTREAM_ALLOWED_IMAGES") == "ghcr.io/cardstream/cardstream,registry.example.com/", f"CARDSTREAM_ALLOWED_IMAGES {env.get('CARDSTREAM_ALLOWED_IMAGES')!r}")
    spec = only(objects, "CardStream", "credentials")["spec"]
    check(spec["kafka"]["credentialsSecret"] == {"name": "kafka-client", "key": "properties"}, f"kafka {spec['kafka']}")
    role = [o for o in objects if o["kind"] == "Role" and not o["metadata"]["name"].endswith("-leader")][0]
    names = [r.get("resourceNames") for r in role["rules"] if "secrets" in r["resources"]]
    check(names == [["cardstream", "kafka-client"]], f"the operator may not read the Kafka credentials Secret: {names}")
    split = {"cardstream": {"databaseUrlSecret": {"name": "db", "key": "url"}, "webhookSecretsSecret": {"name": "stripe", "key": "whsec"},
                            "tokenSecret": {"name": "api", "key": "token"}, "recordKeysSecret": {"name": "records", "key": "keys"}}}
    role = [o for o in render(split)[1] if o["kind"] == "Role" and not o["metadata"]["name"].endswith("-leader")][0]
    names = [r.get("resourceNames") for r in role["rules"] if "secrets" in r["resources"]]
    check(names == [["db", "api", "records"]], f"Secrets the operator may read, with one Secret per concern: {names} (never the webhook secrets, which it does not read)")
    cluster = render({"rbac": {"create": True, "clusterWide": True}, "operator": {"secretNames": ["cardstream"]}})[1]
    names = [r.get("resourceNames") for r in only(cluster, "ClusterRole", "cluster-wide")["rules"] if "secrets" in r["resources"]]
    check(names == [["cardstream"]], f"operator.secretNames does not restrict a ClusterRole: {names}")


def alert(name: str, **labels: str) -> dict:
    return {"exp_labels": {"namespace": NAMESPACE, **labels}}


def series(name: str, values: str, **labels: str) -> dict:
    matchers = ",".join(f'{k}="{v}"' for k, v in {"namespace": NAMESPACE, **labels}.items())
    return {"series": f"{name}{{{matchers}}}", "values": values}


def histogram(name: str, buckets: dict[str, str], **labels: str) -> list[dict]:
    return [series(f"{name}_bucket", values, le=le, **labels) for le, values in buckets.items()]


# Each alert on series that must fire it (and, where a threshold matters, on series that must
# not): the expressions, `for` durations and labels, as Prometheus evaluates them.
AUTH = "/webhooks/stripe/authorization"
RULE_TESTS = [
    ("CardStreamConsumerLagHigh", [series("cardstream_consumer_lag_records", "300000x20", partition="0")],
     "15m", [alert("", severity="warning")]),
    ("CardStreamConsumerLagHigh", [series("cardstream_consumer_lag_records", "200000x20", partition="0")],
     "15m", []),
    ("CardStreamDeadLettersGrowing", [series("cardstream_dead_letters_total", "0 0 0 1 1 1 1 1", reason="not_json")],
     "5m", [alert("", reason="not_json", severity="warning")]),
    ("CardStreamWebhook5xxHigh", [series("cardstream_http_requests_total", "0+10x20", route="/webhooks/stripe", status="503"),
                                  series("cardstream_http_requests_total", "0+100x20", route="/webhooks/stripe", status="200")],
     "12m", [alert("", severity="critical")]),
    # The API's answers share the metric (the job label tells them apart): its 5xx are not the gateway's.
    ("CardStreamWebhook5xxHigh", [series("cardstream_http_requests_total", "0+50x20", route="/graphql", status="503"),
                                  series("cardstream_http_requests_total", "0+100x20", route="/webhooks/stripe", status="200")],
     "12m", []),
    ("CardStreamSignatureFailuresSpike", [series("cardstream_signature_failures_total", "0+120x20", reason="signature_mismatch")],
     "12m", [alert("", severity="warning")]),
    ("CardStreamAuthorizationLatencyHigh",
     histogram("cardstream_http_request_duration_seconds", {"0.5": "0x20", "1": "0x20", "2.5": "0+10x20", "+Inf": "0+10x20"}, route=AUTH),
     "12m", [alert("", severity="critical")]),
    ("CardStreamAggregatorPaused", [series("cardstream_consumer_paused", "1x20", pod="aggregator-0")],
     "10m", [alert("", pod="aggregator-0", severity="critical")]),
    ("CardStreamAggregatorPaused", [series("cardstream_consumer_paused", "1 1 0x20", pod="aggregator-0")],
     "10m", []),
    ("CardStreamOperatorNoLeader", [series("cardstream_leader", "0x20", pod="operator-0"),
                                    series("cardstream_leader", "0x20", pod="operator-1")],
     "10m", [alert("", severity="warning")]),
    ("CardStreamOperatorNoLeader", [series("cardstream_leader", "0x20", pod="operator-0"),
                                    series("cardstream_leader", "1x20", pod="operator-1")],
     "10m", []),
    # No operator reports at all: absent() fires.
    ("CardStreamOperatorNoLeader", [series("cardstream_consumer_paused", "0x20", pod="aggregator-0")],
     "10m", [alert("", severity="warning")]),
    ("CardStreamReconcileFailing", [series("cardstream_reconcile_failures_total", "0+1x40", reason="kafka")],
     "30m", [alert("", reason="kafka", severity="warning")]),
    ("CardStreamFreshnessHigh",
     histogram("cardstream_freshness_seconds", {"1": "0x30", "10": "0+10x30", "+Inf": "0+10x30"}),
     "20m", [alert("", severity="warning")]),
    ("CardStreamFreshnessHigh",
     histogram("cardstream_freshness_seconds", {"0.1": "0+10x30", "1": "0+10x30", "+Inf": "0+10x30"}),
     "20m", []),
    ("CardStreamTargetDown", [series("up", "0x20", job=f"{RELEASE}-gateway"), series("up", "1x20", job=f"{RELEASE}-api")],
     "10m", [alert("", job=f"{RELEASE}-gateway", severity="critical")]),
    # Catch-up recovered 3 events at minute 3, on one of two gateway replicas.
    ("CardStreamWebhooksMissed", [series("cardstream_catch_up_events_recovered_total", "0 0 0 3x20", pod="gateway-0"),
                                  series("cardstream_catch_up_events_recovered_total", "0x23", pod="gateway-1")],
     "5m", [alert("", severity="warning")]),
    # Catch-up running and finding nothing missing.
    ("CardStreamWebhooksMissed", [series("cardstream_catch_up_events_recovered_total", "0x80", pod="gateway-0")],
     "70m", []),
    # A recovery more than an hour ago is over.
    ("CardStreamWebhooksMissed", [series("cardstream_catch_up_events_recovered_total", "0 0 3x80", pod="gateway-0")],
     "75m", []),
    # Every round failing (one a minute) and none finishing.
    ("CardStreamCatchUpFailing", [series("cardstream_catch_up_runs_total", "0+1x40", outcome="failed", pod="gateway-0"),
                                  series("cardstream_catch_up_runs_total", "0x200", outcome="ok", pod="gateway-0")],
     "30m", [alert("", severity="warning")]),
    # One replica cannot take the lock (failed) while another finishes its rounds: catch-up works.
    ("CardStreamCatchUpFailing", [series("cardstream_catch_up_runs_total", "0+1x40", outcome="failed", pod="gateway-0"),
                                  series("cardstream_catch_up_runs_total", "0+1x40", outcome="ok", pod="gateway-1")],
     "30m", []),
    # A round that failed once, then succeeded again.
    ("CardStreamCatchUpFailing", [series("cardstream_catch_up_runs_total", "0 1x40", outcome="failed", pod="gateway-0"),
                                  series("cardstream_catch_up_runs_total", "0 0 0+1x40", outcome="ok", pod="gateway-0")],
     "20m", []),
]


@case("promtool: the alert rules pass check rules, and test rules fires each alert on its series")
def test_promtool_rules():
    import subprocess
    import tempfile

    promtool = subprocess.run(["promtool", "--version"], capture_output=True, text=True)
    check(promtool.returncode == 0, "promtool is missing: scripts/install-tools.sh installs it")
    rule = only(objects_of("all toggles on"), "PrometheusRule", "all toggles on")
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "rules.yaml"
        rules.write_text(yaml.safe_dump(rule["spec"]))
        checked = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
        check(checked.returncode == 0, f"promtool check rules:\n{checked.stdout}{checked.stderr}")
        # The annotations' templates are checked above; the unit tests are about when each
        # alert fires and with which labels.
        bare = copy.deepcopy(rule["spec"])
        for group in bare["groups"]:
            for r in group["rules"]:
                r.pop("annotations", None)
        (Path(tmp) / "bare.yaml").write_text(yaml.safe_dump(bare))
        tests = []
        fired = set()
        for name, inputs, at, expected in RULE_TESTS:
            tests.append({"interval": "1m", "input_series": inputs,
                          "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": expected}]})
            if expected:
                fired.add(name)
        check(fired == set(ALERTS), f"alerts without a test that fires them: {sorted(set(ALERTS) - fired)}")
        spec = Path(tmp) / "tests.yaml"
        spec.write_text(yaml.safe_dump({"rule_files": ["bare.yaml"], "evaluation_interval": "1m", "tests": tests}))
        tested = subprocess.run(["promtool", "test", "rules", str(spec)], capture_output=True, text=True, cwd=tmp)
        check(tested.returncode == 0, f"promtool test rules:\n{tested.stdout}{tested.stderr}")
    print(f"    {len(RULE_TESTS)} rule tests over {len(fired)} alerts passed")


@case("every toggle off: only the operator's Deployment and Service")
def test_all_off():
    kinds = sorted(o["kind"] for o in objects_of("all toggles off"))
    check(kinds == ["CustomResourceDefinition", "Deployment", "Service"], f"kinds {kinds}")
    pod = only(objects_of("all toggles off"), "Deployment", "all toggles off")["spec"]["template"]["spec"]
    check(pod["serviceAccountName"] == "default", f"serviceAccountName {pod['serviceAccountName']} without serviceAccount.create")


@case("values.schema.json rejects bad values (render and lint fail)")
def test_bad_values():
    accepted = []
    with load_chart() as chart:
        for label, values in BAD_VALUES.items():
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                accepted.append(f"{label}: rendered {values}")
            except helm.HelmValuesError:
                pass
            report = helm.lint(CHART, values, namespace=NAMESPACE)
            if not any(m["severity"] == 3 and m["path"] == "values.yaml" for m in report["messages"]):
                accepted.append(f"{label}: lint found no values.yaml error for {values}")
        for label, (values, message) in BAD_FOR_TEMPLATES.items():
            try:
                chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
                accepted.append(f"{label}: rendered {values}")
            except helm.HelmRenderError as error:
                if message not in str(error):
                    accepted.append(f"{label}: failed without saying {message!r}: {error}")
    check(not accepted, "bad values were accepted:\n  " + "\n  ".join(accepted))
    print(f"    {len(BAD_VALUES)} bad values refused by the schema, {len(BAD_FOR_TEMPLATES)} by the templates")


@case("the Grafana dashboard: valid JSON, PromQL that parses, only cardstream's metrics")
def test_dashboard():
    try:
        dashboard = json.loads(DASHBOARD.read_text())
    except json.JSONDecodeError as error:
        raise CheckFailed(f"{DASHBOARD.relative_to(ROOT)} is not JSON: {error}") from None
    panels = [p for p in dashboard["panels"] if p.get("type") != "row"]
    ids = [p["id"] for p in dashboard["panels"]]
    check(len(ids) == len(set(ids)), f"duplicate panel ids {ids}")
    seen: set[str] = set()
    queries = 0
    for panel in panels:
        check(panel.get("targets"), f"panel {panel.get('title')!r} has no query")
        for target in panel["targets"]:
            names = promql_metrics(target["expr"], f"dashboard panel {panel['title']!r}")
            others = {n for n in names if not n.startswith("cardstream_")}
            check(not others, f"dashboard panel {panel['title']!r} reads metrics that are not cardstream's: {sorted(others)}")
            seen |= names
            queries += 1
    missing = DASHBOARD_METRICS - seen
    check(not missing, f"the dashboard shows none of {sorted(missing)}")
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            promql_metrics(re.sub(r"^label_values\((.*), *\w+\)$", r"\1", variable["definition"]), f"dashboard variable {variable['name']}")
    print(f"    {len(panels)} panels, {queries} queries, {len(seen)} metrics")


def main() -> int:
    started = time.monotonic()
    print(f"chart: helm-python-sdk {helm.__version__} (Helm {helm.helm_sdk_version()}), kubernetes-validate {kubernetes_validate.__version__}, "
          f"Kubernetes {', '.join(KUBE_VERSIONS)}")
    failed = 0
    for name, fn in TESTS:
        try:
            fn()
            print(f"ok   {name}")
        except CheckFailed as failure:
            failed += 1
            print(f"FAIL {name}\n    " + str(failure).replace("\n", "\n    "))
        except Exception as error:  # a helm error while rendering, a KeyError in a check
            failed += 1
            detail = "".join(traceback.format_exception_only(type(error), error)).strip()
            print(f"FAIL {name}\n    " + detail.replace("\n", "\n    "))
    for label in ("defaults", "all toggles on"):
        if label in COUNTS:
            counts = COUNTS[label]
            print(f"chart: {label}: {sum(counts.values())} objects rendered and validated: "
                  + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    print(f"chart: {time.monotonic() - started:.1f}s")
    print(f"chart: {len(TESTS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
