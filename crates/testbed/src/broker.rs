use cardstream_broker::LocalBroker;
pub use cardstream_broker::{Storage, tansu_binary};

/// A broker owned by one test, on its own port and directory; killed on drop. Fails the test
/// loudly, saying how to install it, when there is none.
#[derive(Debug)]
pub struct Broker(LocalBroker);

impl Broker {
    pub async fn start(storage: Storage) -> Broker {
        Broker(
            LocalBroker::start(storage)
                .await
                .unwrap_or_else(|e| panic!("{e}")),
        )
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        self.0.brokers()
    }

    pub fn pid(&self) -> Option<u32> {
        self.0.pid()
    }

    pub fn storage(&self) -> Storage {
        self.0.storage()
    }

    /// A new events topic with `partitions` partitions, and its dead-letter topic, under a
    /// name no other test uses.
    pub async fn events_topic(&self, partitions: i32) -> String {
        let topic = crate::unique_name("events");
        cardstream_kafka::ensure_topics(&cardstream_kafka::TopicArgs {
            kafka: cardstream_kafka::KafkaArgs::new(self.brokers(), &topic),
            partitions,
            replication: 1,
        })
        .await
        .unwrap_or_else(|e| panic!("create topic {topic}: {e}"));
        topic
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub async fn stop(&mut self) {
        self.0.stop().await;
    }

    /// Starts it again on the same port and storage.
    pub async fn start_again(&mut self) {
        self.0.start_again().await.unwrap_or_else(|e| panic!("{e}"));
    }
}
