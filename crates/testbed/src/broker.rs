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

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub async fn stop(&mut self) {
        self.0.stop().await;
    }

    /// Starts it again on the same port and storage.
    pub async fn start_again(&mut self) {
        self.0.start_again().await.unwrap_or_else(|e| panic!("{e}"));
    }
}
