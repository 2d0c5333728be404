//! No settings type shows a secret in its `Debug` output (`{:?}` and `{:#?}`), whether the
//! secret came from a flag or from the environment: settings get logged, and end up in panic
//! messages and error reports. Each case also checks that a harmless field does show, so that
//! an empty `Debug` cannot pass.
//!
//! The environment is read by clap as the binary would; this process's own cannot be changed
//! safely (`set_var` is unsafe and the crate forbids unsafe code), so each environment case
//! runs this test binary again, with the variables set, as `env_child`.
//!
//! `cardstream dev`'s settings (private to the binary) are checked in `src/dev.rs`.

#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::process::Command;

use clap::{Args, FromArgMatches};

const DB_PASSWORD: &str = "db-pa55word-7f3a";
const TOKEN_SECRET: &str = "token-secret-of-at-least-32-bytes-5e1c";
const WEBHOOK_SECRET: &str = "whsec_debug_test_9b2d";
const SASL_PASSWORD: &str = "sasl-pa55word-c41e";
const RECORD_KEY: &str = "record-key-of-at-least-32-bytes-a7d0e3";
const SASL_CREDENTIAL: &str = "sasl-credential-in-a-secret-0d9b";

fn database_url() -> String {
    format!("postgres://app:{DB_PASSWORD}@db.internal:5432/cardstream")
}

/// One settings type: how to parse it, the flags and variables that carry its secrets, and a
/// harmless flag whose value must show.
struct Case {
    name: &'static str,
    parse: fn(&[String]) -> (String, String),
    secret_flags: Vec<(&'static str, String)>,
    secret_env: Vec<(&'static str, String)>,
    secrets: &'static [&'static str],
    visible_flag: (&'static str, &'static str),
}

/// `{:?}` and `{:#?}` of `T` parsed from `argv`, clap reading the environment as it does in
/// the binary.
fn debug_of<T: Args + FromArgMatches + Debug>(argv: &[String]) -> (String, String) {
    let command = T::augment_args(clap::Command::new("cardstream").no_binary_name(true));
    let matches = command.try_get_matches_from(argv).unwrap();
    let args = T::from_arg_matches(&matches).unwrap();
    (format!("{args:?}"), format!("{args:#?}"))
}

fn cases() -> Vec<Case> {
    let db = database_url();
    let webhook = format!("whsec_older_one,{WEBHOOK_SECRET}");
    let kafka = format!("security.protocol=SASL_SSL,sasl.password={SASL_PASSWORD}");
    vec![
        Case {
            name: "api",
            parse: debug_of::<cardstream_api::ApiArgs>,
            secret_flags: vec![
                ("--database-url", db.clone()),
                ("--token-secret", TOKEN_SECRET.to_owned()),
            ],
            secret_env: vec![
                ("CARDSTREAM_DATABASE_URL", db.clone()),
                ("CARDSTREAM_TOKEN_SECRET", TOKEN_SECRET.to_owned()),
            ],
            secrets: &[DB_PASSWORD, TOKEN_SECRET],
            visible_flag: ("--listen", "127.0.0.1:18080"),
        },
        Case {
            name: "gateway",
            parse: debug_of::<cardstream_gateway::GatewayArgs>,
            secret_flags: vec![
                ("--webhook-secrets", webhook.clone()),
                ("--database-url", db.clone()),
                ("--kafka-property", format!("sasl.password={SASL_PASSWORD}")),
                ("--record-keys", RECORD_KEY.to_owned()),
            ],
            secret_env: vec![
                ("CARDSTREAM_WEBHOOK_SECRETS", webhook.clone()),
                ("CARDSTREAM_DATABASE_URL", db.clone()),
                ("CARDSTREAM_KAFKA_PROPERTIES", kafka.clone()),
                ("CARDSTREAM_RECORD_KEYS", RECORD_KEY.to_owned()),
            ],
            secrets: &[WEBHOOK_SECRET, DB_PASSWORD, SASL_PASSWORD, RECORD_KEY],
            visible_flag: ("--kafka-topic", "debug-test-topic"),
        },
        Case {
            name: "aggregator",
            parse: debug_of::<cardstream_aggregator::AggregatorArgs>,
            secret_flags: vec![
                ("--database-url", db.clone()),
                ("--kafka-property", format!("sasl.password={SASL_PASSWORD}")),
                ("--record-keys", RECORD_KEY.to_owned()),
            ],
            secret_env: vec![
                ("CARDSTREAM_DATABASE_URL", db.clone()),
                ("CARDSTREAM_KAFKA_PROPERTIES", kafka.clone()),
                ("CARDSTREAM_RECORD_KEYS", RECORD_KEY.to_owned()),
            ],
            secrets: &[DB_PASSWORD, SASL_PASSWORD, RECORD_KEY],
            visible_flag: ("--consumer-group", "debug-test-group"),
        },
        Case {
            name: "simulate",
            parse: debug_of::<cardstream_simulator::SimulateArgs>,
            secret_flags: vec![("--webhook-secrets", webhook.clone())],
            secret_env: vec![("CARDSTREAM_WEBHOOK_SECRETS", webhook.clone())],
            secrets: &[WEBHOOK_SECRET],
            visible_flag: ("--target", "http://gateway.test:8080"),
        },
        Case {
            name: "topics",
            parse: debug_of::<cardstream_kafka::TopicArgs>,
            secret_flags: vec![
                ("--kafka-property", format!("sasl.password={SASL_PASSWORD}")),
                (
                    "--kafka-credentials",
                    format!("sasl.username=app\nsasl.password={SASL_CREDENTIAL}"),
                ),
            ],
            secret_env: vec![
                ("CARDSTREAM_KAFKA_PROPERTIES", kafka.clone()),
                (
                    "CARDSTREAM_KAFKA_CREDENTIALS",
                    format!("sasl.username=app\nsasl.password={SASL_CREDENTIAL}"),
                ),
            ],
            secrets: &[SASL_PASSWORD, SASL_CREDENTIAL],
            visible_flag: ("--kafka-brokers", "kafka.test:9093"),
        },
        Case {
            // migrate, replay, verify and users flatten these.
            name: "database",
            parse: debug_of::<cardstream_store::DatabaseArgs>,
            secret_flags: vec![("--database-url", db.clone())],
            secret_env: vec![("CARDSTREAM_DATABASE_URL", db)],
            secrets: &[DB_PASSWORD],
            visible_flag: ("", ""),
        },
    ]
}

fn visible_argv(case: &Case) -> Vec<String> {
    match case.visible_flag {
        ("", _) => Vec::new(),
        (flag, value) => vec![flag.to_owned(), value.to_owned()],
    }
}

/// What is wrong with `case`'s `Debug` when parsed from `argv`: one line per secret shown, or
/// a line when the harmless value does not show.
fn problems(case: &Case, argv: &[String], source: &str) -> Vec<String> {
    let (plain, pretty) = (case.parse)(argv);
    let visible = match case.visible_flag {
        (_, "") => "DatabaseArgs",
        (_, value) => value,
    };
    let mut problems = Vec::new();
    for (format, debug) in [("{:?}", &plain), ("{:#?}", &pretty)] {
        for secret in case.secrets {
            if debug.contains(secret) {
                problems.push(format!(
                    "{} settings from {source}: {format} shows the secret {secret:?}",
                    case.name
                ));
            }
        }
        if !debug.contains(visible) {
            problems.push(format!(
                "{} settings from {source}: {format} does not show {visible:?}, so it shows \
                 nothing this test can trust",
                case.name
            ));
        }
    }
    if !problems.is_empty() {
        problems.push(format!("  {plain}"));
    }
    problems
}

#[test]
fn settings_from_flags_do_not_show_secrets() {
    let mut all = Vec::new();
    for case in cases() {
        let mut argv = visible_argv(&case);
        for (flag, value) in &case.secret_flags {
            argv.push((*flag).to_owned());
            argv.push(value.clone());
        }
        all.extend(problems(&case, &argv, "flags"));
    }
    assert!(all.is_empty(), "\n{}", all.join("\n"));
}

#[test]
fn settings_from_the_environment_do_not_show_secrets() {
    let mut all = Vec::new();
    for case in cases() {
        let mut child = Command::new(std::env::current_exe().unwrap());
        child
            .args(["--exact", "env_child", "--nocapture", "--test-threads=1"])
            // Nothing of this process's own settings: only the case's.
            .env_clear()
            .env("SECRETS_DEBUG_CASE", case.name);
        for (name, value) in &case.secret_env {
            child.env(name, value);
        }
        let output = child.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let found: Vec<&str> = stderr
            .lines()
            .filter_map(|line| line.strip_prefix("secrets_debug: "))
            .collect();
        assert!(
            output.status.success() && found.first() == Some(&"checked"),
            "the {} case did not run:\n{}\n{stderr}",
            case.name,
            String::from_utf8_lossy(&output.stdout)
        );
        all.extend(found[1..].iter().map(|s| (*s).to_owned()));
    }
    assert!(all.is_empty(), "\n{}", all.join("\n"));
}

/// The environment half of the test above, in a child process; does nothing on its own. It
/// reports on stderr, and the parent fails.
#[test]
fn env_child() {
    let Ok(name) = std::env::var("SECRETS_DEBUG_CASE") else {
        return;
    };
    let case = cases().into_iter().find(|c| c.name == name).unwrap();
    eprintln!("secrets_debug: checked");
    for problem in problems(&case, &visible_argv(&case), "the environment") {
        eprintln!("secrets_debug: {problem}");
    }
}

/// `--help` prints each setting's environment variable, and clap would print its value too:
/// with a Kafka password, a database URL or a key in the environment (as in every pod), anyone
/// who runs `cardstream <command> --help` in a container, or reads a CI log, would see it.
#[test]
fn help_does_not_print_secrets_from_the_environment() {
    let secrets = [
        ("CARDSTREAM_DATABASE_URL", database_url()),
        ("CARDSTREAM_TOKEN_SECRET", TOKEN_SECRET.to_owned()),
        ("CARDSTREAM_WEBHOOK_SECRETS", WEBHOOK_SECRET.to_owned()),
        (
            "CARDSTREAM_KAFKA_PROPERTIES",
            format!("security.protocol=SASL_SSL,sasl.password={SASL_PASSWORD}"),
        ),
        (
            "CARDSTREAM_KAFKA_CREDENTIALS",
            format!("sasl.username=app\nsasl.password={SASL_CREDENTIAL}"),
        ),
        ("CARDSTREAM_RECORD_KEYS", RECORD_KEY.to_owned()),
    ];
    let mut leaks = Vec::new();
    for command in [
        "gateway",
        "aggregator",
        "api",
        "topics",
        "migrate",
        "replay",
        "operator",
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
            .args([command, "--help"])
            .envs(secrets.iter().map(|(name, value)| (*name, value.as_str())))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            output.status.success() && text.contains("CARDSTREAM_"),
            "cardstream {command} --help: {text}"
        );
        for secret in [
            DB_PASSWORD,
            TOKEN_SECRET,
            WEBHOOK_SECRET,
            SASL_PASSWORD,
            SASL_CREDENTIAL,
            RECORD_KEY,
        ] {
            if text.contains(secret) {
                leaks.push(format!("cardstream {command} --help prints {secret}"));
            }
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// A setting that holds credentials and does not parse stops the process, as it should; clap's
/// own error would quote the value, and that message goes to the pod's log.
#[test]
fn a_malformed_secret_setting_is_refused_without_repeating_it() {
    for (variable, value) in [
        (
            "CARDSTREAM_KAFKA_CREDENTIALS",
            format!("sasl.username=app\nsasl.password {SASL_CREDENTIAL}"),
        ),
        (
            "CARDSTREAM_KAFKA_PROPERTIES",
            format!("security.protocol=SASL_SSL,sasl.password:{SASL_PASSWORD}"),
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
            .arg("topics")
            .env(variable, &value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        for secret in [SASL_CREDENTIAL, SASL_PASSWORD] {
            assert!(
                !stderr.contains(secret),
                "{variable}: the error repeats the secret: {stderr}"
            );
        }
    }
}
