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
    #[arg(
        long = "kafka-property",
        env = "CARDSTREAM_KAFKA_PROPERTIES",
        value_delimiter = ',',
        value_parser = parse_property
    )]
    pub properties: Vec<(String, String)>,
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
        config
    }
}

/// Parses `key=value`.
pub fn parse_property(raw: &str) -> Result<(String, String), String> {
    match raw.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected key=value, got {raw:?}")),
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
