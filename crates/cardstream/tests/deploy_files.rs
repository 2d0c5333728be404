//! The Docker Compose stack, checked where no Docker engine runs: the services the README
//! lists exist, run the right subcommand, start in the right order, publish the documented
//! ports, and Prometheus scrapes every component.

#![allow(clippy::unwrap_used)]

use serde_yaml::{Mapping, Value};

fn repo_file(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

/// A service with YAML merge keys (`<<: *anchor`) applied, as Compose applies them.
fn merged(value: &Value) -> Mapping {
    let mut out = Mapping::new();
    if let Some(map) = value.as_mapping() {
        if let Some(base) = map.get("<<") {
            out = merged(base);
        }
        for (k, v) in map {
            if k.as_str() == Some("<<") {
                continue;
            }
            let v = if v.as_mapping().is_some_and(|m| m.contains_key("<<")) {
                Value::Mapping(merged(v))
            } else {
                v.clone()
            };
            out.insert(k.clone(), v);
        }
    }
    out
}

fn services() -> Mapping {
    let compose: Value = serde_yaml::from_str(&repo_file("docker-compose.yml")).unwrap();
    compose["services"].as_mapping().unwrap().clone()
}

fn service(name: &str) -> Mapping {
    merged(
        services()
            .get(name)
            .unwrap_or_else(|| panic!("no service {name}")),
    )
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_sequence)
        .map(|s| {
            s.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_service_the_readme_lists_exists() {
    let readme = repo_file("README.md");
    let section = readme
        .split("## Docker and Compose")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap();
    let listed: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next())
        .collect();
    assert_eq!(listed.len(), 10, "{listed:?}");
    let services = services();
    for name in &listed {
        assert!(
            services.contains_key(*name),
            "README lists {name}; compose has no such service"
        );
    }
    assert_eq!(
        services.len(),
        listed.len(),
        "compose has services the README does not list"
    );
}

#[test]
fn cardstream_services_run_their_subcommand_in_order_with_their_secrets() {
    for (name, command, after) in [
        ("migrate", "migrate", vec!["postgres"]),
        ("admin-user", "users", vec!["migrate"]),
        ("topics", "topics", vec!["kafka"]),
        ("gateway", "gateway", vec!["migrate", "topics"]),
        ("aggregator", "aggregator", vec!["migrate", "topics"]),
        ("api", "api", vec!["migrate"]),
    ] {
        let s = service(name);
        assert_eq!(
            strings(s.get("command")).first().map(String::as_str),
            Some(command),
            "{name}"
        );
        assert_eq!(
            s.get("image").and_then(Value::as_str),
            Some("cardstream:local"),
            "{name}"
        );
        let depends = s.get("depends_on").and_then(Value::as_mapping).unwrap();
        for dependency in after {
            let condition = depends[dependency]["condition"].as_str().unwrap();
            let expected = if ["postgres", "kafka"].contains(&dependency) {
                "service_healthy"
            } else {
                "service_completed_successfully"
            };
            assert_eq!(condition, expected, "{name} after {dependency}");
        }
        let env = s.get("environment").map(merged).unwrap();
        for key in [
            "CARDSTREAM_KAFKA_BROKERS",
            "CARDSTREAM_DATABASE_URL",
            "CARDSTREAM_ADMIN_LISTEN",
        ] {
            assert!(env.contains_key(key), "{name} lacks {key}");
        }
    }
    assert!(
        service("gateway")["environment"]
            .as_mapping()
            .unwrap()
            .contains_key("CARDSTREAM_WEBHOOK_SECRETS")
    );
    assert!(
        service("api")["environment"]
            .as_mapping()
            .unwrap()
            .contains_key("CARDSTREAM_TOKEN_SECRET")
    );
}

#[test]
fn ports_and_scrape_targets_match_the_readme() {
    let on_localhost = |port: &str| format!("${{CARDSTREAM_BIND_ADDRESS:-127.0.0.1}}:{port}");
    assert_eq!(
        strings(service("api").get("ports")),
        vec![on_localhost("8080:8080")]
    );
    assert_eq!(
        strings(service("gateway").get("ports")),
        vec![on_localhost("8081:8080")]
    );
    assert_eq!(
        strings(service("prometheus").get("ports")),
        vec![on_localhost("9099:9090")]
    );
    let prometheus: Value = serde_yaml::from_str(&repo_file("deploy/prometheus.yml")).unwrap();
    // One job per component: the job label is what tells their series apart.
    let jobs: Vec<(String, Vec<String>)> = prometheus["scrape_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|job| {
            let targets = job["static_configs"]
                .as_sequence()
                .unwrap()
                .iter()
                .flat_map(|c| strings(c.get("targets")))
                .collect();
            (job["job_name"].as_str().unwrap().to_owned(), targets)
        })
        .collect();
    let expected: Vec<(String, Vec<String>)> = ["gateway", "aggregator", "api"]
        .iter()
        .map(|c| (c.to_string(), vec![format!("{c}:9090")]))
        .collect();
    assert_eq!(jobs, expected);
    let kafka = service("kafka");
    let env = kafka["environment"].as_mapping().unwrap();
    assert_eq!(
        env["KAFKA_PROCESS_ROLES"].as_str(),
        Some("broker,controller"),
        "KRaft"
    );
}

/// The secrets every deployment must choose for itself.
const SECRETS: [&str; 4] = [
    "POSTGRES_PASSWORD",
    "CARDSTREAM_WEBHOOK_SECRETS",
    "CARDSTREAM_TOKEN_SECRET",
    "CARDSTREAM_RECORD_KEYS",
];

/// Compose's interpolation of `text` with an environment in which none of `unset` is set:
/// `${VAR:-default}` and `${VAR-default}` give the default, `${VAR:?message}` and
/// `${VAR?message}` refuse with the message. The refusals, in order.
fn refusals(text: &str, unset: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let inner = &rest[start + 2..];
        let end = inner.find('}').unwrap();
        let expression = &inner[..end];
        let name_end = expression
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(expression.len());
        let (name, operator) = expression.split_at(name_end);
        if unset.contains(&name) && (operator.starts_with(":?") || operator.starts_with('?')) {
            out.push(format!(
                "{name}: {}",
                operator.trim_start_matches([':', '?'])
            ));
        }
        rest = &inner[end + 1..];
    }
    out
}

#[test]
fn compose_carries_no_secret_and_refuses_to_start_without_one() {
    let text = repo_file("docker-compose.yml");
    for name in SECRETS {
        assert!(
            !text.contains(&format!("${{{name}:-")) && !text.contains(&format!("${{{name}-")),
            "docker-compose.yml gives {name} a default: anyone who reads the repository knows it"
        );
    }
    // With none of them set, `docker compose up` refuses, naming each one to set.
    let refused = refusals(&text, &SECRETS);
    for name in SECRETS {
        assert!(
            refused
                .iter()
                .any(|r| r.starts_with(&format!("{name}: set "))),
            "nothing refuses to start without {name}: {refused:?}"
        );
    }
    // No secret-looking value is written out in any service.
    for (service, value) in services() {
        let env = merged(&value)
            .get("environment")
            .map(merged)
            .unwrap_or_default();
        for (key, value) in env {
            let key = key.as_str().unwrap_or_default();
            let value = value.as_str().unwrap_or_default();
            if key.contains("SECRET") || key.contains("PASSWORD") || key.contains("KEYS") {
                assert!(
                    value.starts_with("${") && value.contains(":?"),
                    "{service:?} sets {key} to a value of its own: {value}"
                );
            }
        }
    }
}

#[test]
fn compose_publishes_its_ports_on_localhost_unless_told_otherwise() {
    for name in ["api", "gateway", "prometheus"] {
        for port in strings(service(name).get("ports")) {
            assert!(
                port.starts_with("${CARDSTREAM_BIND_ADDRESS:-127.0.0.1}:"),
                "{name} publishes {port} on every interface"
            );
        }
    }
}

#[test]
fn a_first_start_waits_for_what_it_needs_and_reports_health() {
    // Postgres is healthy once it answers over TCP, as the others reach it; `migrate` still
    // retries for a while, should it be slower than that.
    let postgres = strings(service("postgres")["healthcheck"].get("test")).join(" ");
    assert!(postgres.contains("pg_isready -h 127.0.0.1"), "{postgres}");
    let migrate = strings(service("migrate").get("command"));
    assert!(
        migrate
            .windows(2)
            .any(|w| w[0] == "--wait-for-database" && w[1] == "60s"),
        "{migrate:?}"
    );
    // The three components are healthy when ready, asked with the image's own probe.
    for name in ["gateway", "aggregator", "api"] {
        assert_eq!(
            strings(service(name)["healthcheck"].get("test")),
            [
                "CMD",
                "/usr/local/bin/cardstream",
                "probe",
                "http://127.0.0.1:9090/readyz"
            ],
            "{name}"
        );
    }
    // One-shot commands serve nothing to probe.
    for name in ["migrate", "topics", "admin-user", "simulate"] {
        assert_eq!(
            service(name)["healthcheck"]["disable"].as_bool(),
            Some(true),
            "{name}"
        );
    }
    // The first admin, once, after the schema exists.
    let admin = service("admin-user");
    assert_eq!(strings(admin.get("command")), ["users", "init-admin"]);
    assert!(
        admin["environment"]["CARDSTREAM_ADMIN_EMAIL"]
            .as_str()
            .unwrap()
            .contains(":-admin@localhost")
    );
    // Simulated traffic only when asked for, to a gateway that is ready.
    let simulate = service("simulate");
    assert_eq!(strings(simulate.get("profiles")), ["simulate"]);
    let command = strings(simulate.get("command"));
    assert_eq!(
        command[..3],
        ["simulate", "--target", "http://gateway:8080"]
    );
    assert_eq!(
        simulate["depends_on"]["gateway"]["condition"].as_str(),
        Some("service_healthy")
    );
    for (name, value) in services() {
        let profiles = strings(merged(&value).get("profiles"));
        assert!(
            profiles.is_empty() || name.as_str() == Some("simulate"),
            "{name:?} runs only in profiles {profiles:?}"
        );
    }
}

/// A tag like `17.5`, `3.9.1` or `v3.1.0` (or a digest), not `latest` or a major version that
/// moves.
fn pinned(image: &str) -> bool {
    if image.contains("@sha256:") {
        return true;
    }
    let Some((_, tag)) = image.rsplit_once(':') else {
        return false;
    };
    let version = tag.trim_start_matches('v');
    let numbers: Vec<&str> = version
        .split(['-', '.'])
        .take_while(|p| p.chars().all(|c| c.is_ascii_digit()) && !p.is_empty())
        .collect();
    numbers.len() >= 2
}

#[test]
fn every_image_is_pinned_and_the_dockerfile_caches_dependencies() {
    for (name, value) in services() {
        let service = merged(&value);
        let image = service.get("image").and_then(Value::as_str).unwrap();
        if image == "cardstream:local" {
            continue;
        }
        assert!(pinned(image), "{name:?} runs {image}, which moves");
    }
    let dockerfile = repo_file("Dockerfile");
    for line in dockerfile.lines().filter(|l| l.starts_with("FROM ")) {
        let image = line.split_whitespace().nth(1).unwrap();
        assert!(pinned(image), "{line}");
    }
    for cache in [
        "--mount=type=cache,target=/usr/local/cargo/registry",
        "--mount=type=cache,target=/src/target",
    ] {
        assert!(dockerfile.contains(cache), "the Dockerfile lacks {cache}");
    }
    assert!(!pinned("postgres:17") && !pinned("postgres:latest") && !pinned("postgres"));
    assert!(
        pinned("postgres:17.5")
            && pinned("prom/prometheus:v3.1.0")
            && pinned("node:22.16.0-bookworm-slim")
    );
}
