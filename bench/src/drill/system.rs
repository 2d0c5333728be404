//! The system under drill: a tansu broker with SQLite storage (the memory engine loses
//! everything on restart and skips records when a consumer resumes), a fresh database, and the
//! real `cardstream gateway` and `cardstream aggregator` processes, each a child that can be
//! sent SIGTERM or SIGKILL. Every process logs to a file of its own in the drill's directory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use cardstream_kafka::{KafkaArgs, TopicArgs};
use cardstream_store::Store;
use cardstream_testbed::{Broker, PrivatePostgres, Storage, TestDatabase};
use tokio::process::{Child, Command};

use crate::processes::{free_addr, metric_sum, scrape, sibling_binary};

pub(crate) const SECRET: &str = "whsec_cardstream_drill";
pub(crate) const TOPIC: &str = "stripe.events";
pub(crate) const GROUP: &str = "cardstream-aggregator";
pub(crate) const PARTITIONS: i32 = 4;
/// A SIGKILLed member is noticed within seconds instead of librdkafka's default 45 s (the
/// integration tests use the same settings).
const CONSUMER_PROPERTIES: &str = "session.timeout.ms=6000,heartbeat.interval.ms=500";

/// Which Postgres server the drill's database lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Server {
    /// The shared local server.
    Shared,
    /// A server of the drill's own, so it can be stopped without disturbing anyone else.
    Private,
}

/// One `cardstream` child process.
#[derive(Debug)]
pub(crate) struct Component {
    pub(crate) name: String,
    child: Child,
    admin: SocketAddr,
}

impl Component {
    /// The sum of a metric's series whose labels contain `label` (e.g. `outcome="duplicate"`),
    /// read from the component's admin endpoint.
    pub(crate) async fn metric(&self, name: &str, label: &str) -> anyhow::Result<f64> {
        let text = scrape(self.admin)
            .await
            .with_context(|| format!("cannot read {}'s metrics", self.name))?;
        Ok(metric_sum(&text, name, label))
    }

    /// Whether the component's log contains `text`.
    pub(crate) fn logged(&self, logs: &Path, text: &str) -> bool {
        std::fs::read_to_string(logs.join(format!("{}.log", self.name)))
            .is_ok_and(|log| log.contains(text))
    }

    fn pid(&self) -> anyhow::Result<u32> {
        self.child
            .id()
            .with_context(|| format!("{} has already exited", self.name))
    }

    /// SIGTERM, then waits for the exit (SIGKILL after 30 s). Returns the status and how long
    /// the shutdown took.
    pub(crate) async fn terminate(mut self) -> anyhow::Result<(ExitStatus, Duration)> {
        let pid = self.pid()?.to_string();
        let sent = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .context("cannot run kill")?;
        anyhow::ensure!(status.success(), "kill -TERM {pid} failed");
        match tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await {
            Ok(status) => Ok((status?, sent.elapsed())),
            Err(_) => {
                self.child.kill().await?;
                anyhow::bail!("{} did not stop within 30 s of SIGTERM", self.name)
            }
        }
    }

    /// SIGKILL: no shutdown, no final commit, as a crash or an OOM kill.
    pub(crate) async fn kill(mut self) -> anyhow::Result<()> {
        self.child
            .kill()
            .await
            .with_context(|| format!("cannot kill {}", self.name))
    }
}

#[derive(Debug)]
pub(crate) struct System {
    pub(crate) started: Instant,
    pub(crate) store: Store,
    pub(crate) kafka: KafkaArgs,
    pub(crate) gateway_addr: SocketAddr,
    pub(crate) gateway: Option<Component>,
    pub(crate) aggregators: Vec<Component>,
    pub(crate) broker: Broker,
    /// The broker's working directory, where it writes a log per start.
    broker_dir: Option<PathBuf>,
    /// Broker panics a drill has seen and worked around: reported as notes, not problems.
    accepted_panics: Vec<String>,
    pub(crate) logs: PathBuf,
    binary: PathBuf,
    spawned: usize,
    // Dropped in this order: the database before the server it lives on.
    database: TestDatabase,
    pub(crate) server: Option<PrivatePostgres>,
}

impl System {
    /// Starts the broker, creates the topics and a migrated database, then one gateway and one
    /// aggregator.
    pub(crate) async fn start(drill: &str, server: Server) -> anyhow::Result<System> {
        let binary = sibling_binary("cardstream")?;
        let logs =
            std::env::temp_dir().join(format!("cardstream-drill-{drill}-{}", std::process::id()));
        std::fs::create_dir_all(&logs)
            .with_context(|| format!("cannot create {}", logs.display()))?;
        let broker = Broker::start(Storage::Sqlite).await;
        let broker_dir = broker
            .pid()
            .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).ok());
        let kafka = KafkaArgs::new(broker.brokers(), TOPIC);
        cardstream_kafka::ensure_topics(&TopicArgs {
            kafka: kafka.clone(),
            partitions: PARTITIONS,
            replication: 1,
        })
        .await
        .context("cannot create the topics")?;
        let server = match server {
            Server::Shared => None,
            Server::Private => Some(PrivatePostgres::start().await),
        };
        let database = match &server {
            Some(server) => TestDatabase::create_on(&server.url("postgres")).await,
            None => TestDatabase::create().await,
        };
        let store = Store::connect(&database.url, 2)
            .await
            .context("cannot connect to the drill's database")?;
        store.migrate_up().await.context("cannot migrate")?;
        let mut system = System {
            started: Instant::now(),
            store,
            kafka,
            gateway_addr: free_addr()?,
            gateway: None,
            aggregators: Vec::new(),
            broker,
            broker_dir,
            accepted_panics: Vec::new(),
            logs,
            binary,
            spawned: 0,
            database,
            server,
        };
        system.start_gateway().await?;
        system.start_aggregator().await?;
        Ok(system)
    }

    pub(crate) fn binary(&self) -> &Path {
        &self.binary
    }

    fn command(&self, args: &[&str], log: &Path) -> anyhow::Result<Command> {
        let file = std::fs::File::create(log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut command = Command::new(&self.binary);
        command
            .args(args)
            .env("CARDSTREAM_KAFKA_BROKERS", self.broker.brokers())
            .env("CARDSTREAM_KAFKA_TOPIC", TOPIC)
            .env("CARDSTREAM_DATABASE_URL", &self.database.url)
            .env("CARDSTREAM_WEBHOOK_SECRETS", SECRET)
            .env("RUST_LOG", "info,librdkafka=warn,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file)
            .kill_on_drop(true);
        Ok(command)
    }

    /// Spawns `cardstream <args>` with its admin endpoint on `admin` and waits until `addr`
    /// accepts connections.
    async fn spawn(
        &mut self,
        kind: &str,
        args: &[&str],
        admin: SocketAddr,
        addr: SocketAddr,
    ) -> anyhow::Result<Component> {
        self.spawned += 1;
        let name = format!("{kind}-{}", self.spawned);
        let log = self.logs.join(format!("{name}.log"));
        let mut command = self.command(args, &log)?;
        command.env("CARDSTREAM_ADMIN_LISTEN", admin.to_string());
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(addr).await.is_err() {
            if let Some(status) = child.try_wait()? {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                anyhow::bail!("{name} exited at start ({status}):\n{log}");
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name}: nothing listening on {addr} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Component { name, child, admin })
    }

    /// Starts a gateway on the drill's fixed address (the simulator's target). A previous
    /// gateway may still hold the port for a moment after it stopped listening, so a start that
    /// fails on the address is retried for a few seconds.
    pub(crate) async fn start_gateway(&mut self) -> anyhow::Result<()> {
        let addr = self.gateway_addr;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listen = addr.to_string();
            let args = ["gateway", "--listen", &listen];
            match self.spawn("gateway", &args, free_addr()?, addr).await {
                Ok(gateway) => {
                    self.gateway = Some(gateway);
                    return Ok(());
                }
                Err(err) if Instant::now() < deadline => {
                    eprintln!("  gateway start retried: {}", first_line(&err));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(err) => return Err(err),
            }
        }
    }

    /// Starts one more aggregator in the drill's consumer group.
    pub(crate) async fn start_aggregator(&mut self) -> anyhow::Result<()> {
        let admin = free_addr()?;
        let args = ["aggregator", "--kafka-property", CONSUMER_PROPERTIES];
        let aggregator = self.spawn("aggregator", &args, admin, admin).await?;
        self.aggregators.push(aggregator);
        Ok(())
    }

    /// Copies the broker's logs (one per start) into the drill's directory, which outlives the
    /// broker's own, and returns their names and where the broker writes them.
    fn keep_broker_logs(&self) -> Vec<(String, PathBuf)> {
        let Some(dir) = &self.broker_dir else {
            return Vec::new();
        };
        let mut kept = Vec::new();
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("broker-") && name.ends_with(".log") {
                let _ = std::fs::copy(entry.path(), self.logs.join(&name));
                kept.push((name, entry.path()));
            }
        }
        kept
    }

    /// Copies the broker's logs into the drill's directory and returns the panics they report
    /// (a panic in tansu's storage task leaves a broker that fails every request).
    pub(crate) fn broker_panics(&self) -> Vec<String> {
        let mut panics = Vec::new();
        for (name, path) in self.keep_broker_logs() {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if line.contains("panicked at") {
                    let message = lines.get(i + 1).copied().unwrap_or_default();
                    let panic = format!("{name}: {} {message}", line.trim());
                    if !self.accepted_panics.contains(&panic) {
                        panics.push(panic);
                    }
                }
            }
        }
        panics
    }

    /// Marks broker panics as seen and worked around.
    pub(crate) fn accept_broker_panics(&mut self, panics: Vec<String>) {
        self.accepted_panics.extend(panics);
    }

    /// Records produced to the topic that the group has not committed yet.
    pub(crate) async fn lag(&self) -> anyhow::Result<i64> {
        cardstream_kafka::total_lag(&self.kafka, GROUP, TOPIC)
            .await
            .context("cannot read the consumer group's lag")
    }

    /// Stops every component with SIGTERM (they flush and commit); the broker and the database
    /// go when the value is dropped. Failures to stop cleanly are returned as notes.
    pub(crate) async fn shut_down(mut self) -> Vec<String> {
        let mut notes = Vec::new();
        let components = self
            .gateway
            .take()
            .into_iter()
            .chain(self.aggregators.drain(..));
        for component in components {
            let name = component.name.clone();
            match component.terminate().await {
                Ok((status, _)) if status.success() => {}
                Ok((status, _)) => notes.push(format!("{name} exited with {status} at the end")),
                Err(err) => notes.push(format!("{name}: {err:#}")),
            }
        }
        self.store.pool().close().await;
        notes
    }

    /// Removes the logs of a drill that passed; a failed drill keeps them for inspection.
    pub(crate) fn remove_logs(logs: &Path) {
        let _ = std::fs::remove_dir_all(logs);
    }
}

/// Whatever ends a drill, an error included, the broker's logs are kept beside the components'
/// (a drill that passed removes the whole directory afterwards).
impl Drop for System {
    fn drop(&mut self) {
        self.keep_broker_logs();
    }
}

fn first_line(err: &anyhow::Error) -> String {
    err.to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}
