use rdkafka::ClientConfig;

/// Connection settings every component that talks to Kafka shares. Its `Debug` shows the
/// extra properties' names but not their values, any of which may be a credential
/// (`sasl.password`, `ssl.key.pem`, `sasl.oauthbearer.client.secret`, ...).
#[derive(clap::Args, Clone)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma-separated `host:port`.
    #[arg(
        long = "kafka-brokers",
        env = "CARDSTREAM_KAFKA_BROKERS",
        default_value = "127.0.0.1:9092"
    )]
    pub brokers: String,

    /// The topic Stripe events are written to and read from. Its dead-letter topic is this
    /// name with `.dlq` appended.
    #[arg(
        long = "kafka-topic",
        env = "CARDSTREAM_KAFKA_TOPIC",
        default_value = "stripe.events"
    )]
    pub topic: String,

    /// Extra librdkafka properties as `key=value` (e.g. `security.protocol=SASL_SSL`).
    /// Repeat the flag, or give a comma-separated list in the environment variable.
    /// Credentials do not belong here: see --kafka-credentials.
    #[arg(
        long = "kafka-property",
        env = "CARDSTREAM_KAFKA_PROPERTIES",
        hide_env_values = true,
        value_delimiter = ',',
        value_parser = Quiet(parse_property)
    )]
    pub properties: Vec<(String, String)>,

    /// librdkafka properties that are credentials (`sasl.username`, `sasl.password`,
    /// `ssl.key.password`, ...), one `key=value` per line, applied last. From the environment only
    /// (on Kubernetes, a Secret key the CardStream names in spec.kafka.credentialsSecret).
    #[arg(
        long = "kafka-credentials",
        env = "CARDSTREAM_KAFKA_CREDENTIALS",
        hide_env_values = true,
        value_parser = Quiet(Credentials::parse)
    )]
    pub credentials: Option<Credentials>,
}

/// librdkafka properties that are secrets. Their `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Credentials(pub Vec<(String, String)>);

impl Credentials {
    /// `key=value` lines; blank lines and `#` comments are skipped. An error names the line,
    /// never its value.
    pub fn parse(text: &str) -> Result<Credentials, String> {
        text.lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
            .map(|(number, line)| {
                parse_property(line)
                    .map_err(|_| format!("line {number} of the Kafka credentials is not key=value"))
            })
            .collect::<Result<_, _>>()
            .map(Credentials)
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(key, _)| format!("{key}=<redacted>")))
            .finish()
    }
}

/// Whether a librdkafka property holds a secret (a password, a private key, a token or a
/// JAAS/OAuth configuration that embeds one), so must come from a Secret, not a plain value.
pub fn is_credential(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key.ends_with(".pem")
        || key == "sasl.jaas.config"
        || key == "sasl.oauthbearer.config"
        || key == "sasl.username"
}

impl std::fmt::Debug for KafkaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Redacted<'a>(&'a [(String, String)]);
        impl std::fmt::Debug for Redacted<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_map()
                    .entries(self.0.iter().map(|(key, _)| (key, "<redacted>")))
                    .finish()
            }
        }
        f.debug_struct("KafkaArgs")
            .field("brokers", &self.brokers)
            .field("topic", &self.topic)
            .field("properties", &Redacted(&self.properties))
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl KafkaArgs {
    /// Settings for `brokers` with nothing else; handy in tests.
    pub fn new(brokers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaArgs {
            brokers: brokers.into(),
            topic: topic.into(),
            properties: Vec::new(),
            credentials: None,
        }
    }

    /// A librdkafka configuration with the brokers and the extra properties applied last, so
    /// an operator can override any default cardstream sets.
    pub fn client_config(&self, defaults: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (key, value) in defaults {
            config.set(*key, *value);
        }
        for (key, value) in &self.properties {
            config.set(key, value);
        }
        for (key, value) in self.credentials.iter().flat_map(|c| &c.0) {
            config.set(key, value);
        }
        // OpenSSL is built in (vendored), so its default certificate directory is its own
        // build prefix, not the system's: without this, every public broker certificate
        // fails verification. `probe` searches the usual system paths.
        let tls = config
            .get("security.protocol")
            .is_some_and(|p| p.eq_ignore_ascii_case("ssl") || p.eq_ignore_ascii_case("sasl_ssl"));
        if tls && config.get("ssl.ca.location").is_none() {
            config.set("ssl.ca.location", "probe");
        }
        config
    }
}

/// Parses `key=value`. The error does not repeat the text: it may be a credential.
pub fn parse_property(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        Some(_) => Err("an entry with nothing before its `=`".to_owned()),
        None => Err("an entry without `=` (not shown: it may hold a secret)".to_owned()),
    }
}

/// A clap value parser whose errors never repeat the value given: clap's own errors quote it,
/// and these settings may hold credentials, which would then reach the logs.
#[derive(Clone, Copy, Debug)]
pub struct Quiet<T>(pub fn(&str) -> Result<T, String>);

impl<T: Clone + Send + Sync + 'static> clap::builder::TypedValueParser for Quiet<T> {
    type Value = T;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<T, clap::Error> {
        let setting = arg.map_or_else(String::new, |arg| {
            let flag = arg
                .get_long()
                .map_or_else(|| arg.get_id().to_string(), |long| format!("--{long}"));
            match arg.get_env() {
                Some(env) => format!("{flag} ({})", env.to_string_lossy()),
                None => flag,
            }
        });
        let refuse = |why: &str| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("invalid value for {setting}: {why}\n"),
            )
            .with_cmd(cmd)
        };
        let text = value.to_str().ok_or_else(|| refuse("not UTF-8"))?;
        (self.0)(text).map_err(|why| refuse(&why))
    }
}

/// `cardstream topics`: make sure the events topic and its dead-letter topic exist.
#[derive(clap::Args, Debug, Clone)]
pub struct TopicArgs {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Partitions of the events topic: the most aggregator replicas that can share the work.
    /// Existing topics are grown to this, never shrunk.
    #[arg(long, env = "CARDSTREAM_KAFKA_PARTITIONS", default_value_t = 8)]
    pub partitions: i32,

    /// Replication factor for new topics (3 on a production cluster).
    #[arg(long, env = "CARDSTREAM_KAFKA_REPLICATION", default_value_t = 1)]
    pub replication: i32,
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::BaseProducer;

    use super::*;

    fn with(credentials: &str, properties: &[&str]) -> KafkaArgs {
        KafkaArgs {
            properties: properties
                .iter()
                .map(|p| parse_property(p).unwrap())
                .collect(),
            credentials: Some(Credentials::parse(credentials).unwrap()),
            ..KafkaArgs::new("127.0.0.1:1", "t")
        }
    }

    /// Managed Kafka (MSK, Confluent Cloud, Aiven) speaks TLS, with SASL/SCRAM or PLAIN on
    /// top: credentials are no use without a librdkafka built with OpenSSL.
    #[test]
    fn tls_and_sasl_scram_are_built_in() {
        for (properties, credentials) in [
            (&["security.protocol=ssl"][..], ""),
            (
                &[
                    "security.protocol=sasl_ssl",
                    "sasl.mechanisms=SCRAM-SHA-512",
                ][..],
                "sasl.username=app\nsasl.password=secret",
            ),
            (
                &["security.protocol=sasl_ssl", "sasl.mechanisms=PLAIN"][..],
                "sasl.username=app\nsasl.password=secret",
            ),
        ] {
            let created: Result<BaseProducer, _> =
                with(credentials, properties).client_config(&[]).create();
            assert!(created.is_ok(), "{properties:?}: {:?}", created.err());
        }
    }

    #[test]
    fn tls_finds_the_systems_ca_certificates_unless_told_otherwise() {
        let tls = with("", &["security.protocol=SASL_SSL"]).client_config(&[]);
        assert_eq!(tls.get("ssl.ca.location"), Some("probe"));
        let own = with(
            "",
            &["security.protocol=ssl", "ssl.ca.location=/etc/kafka/ca.pem"],
        )
        .client_config(&[]);
        assert_eq!(own.get("ssl.ca.location"), Some("/etc/kafka/ca.pem"));
        let plain = KafkaArgs::new("127.0.0.1:1", "t").client_config(&[]);
        assert_eq!(plain.get("ssl.ca.location"), None);
    }

    #[test]
    fn credentials_are_lines_and_errors_name_the_line_not_the_value() {
        let parsed =
            Credentials::parse("# SCRAM\nsasl.username=app\n\n sasl.password = a=b \n").unwrap();
        assert_eq!(
            parsed.0,
            [
                ("sasl.username".to_owned(), "app".to_owned()),
                ("sasl.password".to_owned(), "a=b".to_owned())
            ]
        );
        let error = Credentials::parse("sasl.username=app\nhunter2").unwrap_err();
        assert_eq!(error, "line 2 of the Kafka credentials is not key=value");
        assert_eq!(
            format!("{parsed:?}"),
            r#"["sasl.username=<redacted>", "sasl.password=<redacted>"]"#
        );
    }
}
