//! A Kafka-protocol broker on this machine, for `cardstream dev` and the tests.
//!
//! Apache Kafka cannot be installed from the registries this project reaches; tansu (a
//! Kafka-protocol broker in Rust) can, and `scripts/install-tools.sh` builds it once into the
//! tool cache. This crate finds that binary and runs it as a child process on a port and in a
//! directory of its own.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// Errors starting or running the local broker.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no Kafka-protocol broker: tansu was not found in CARDSTREAM_TANSU_BIN, the tool cache \
         (~/.cache/cardstream/tools) or PATH; scripts/install-tools.sh installs it"
    )]
    NotInstalled,
    #[error("cannot prepare the broker's directory or port: {0}")]
    Io(#[from] std::io::Error),
    #[error("the broker exited at start ({status}); its log:\n{log}")]
    Exited {
        status: std::process::ExitStatus,
        log: String,
    },
    #[error("the broker did not accept connections on {0} within 20 s")]
    NotListening(SocketAddr),
}

/// The broker's storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Fast, gone on restart. Two defects: the latest offset it reports is too low after
    /// multi-record batches, and a fetch starting inside such a batch skips records (a
    /// consumer resuming from a committed offset can miss some).
    Memory,
    /// SQLite in the broker's directory: survives restarts, correct offsets, slower.
    Sqlite,
}

/// Where the tansu binary is: `CARDSTREAM_TANSU_BIN`, else the project's tool cache
/// (`$CARDSTREAM_TOOLS`, `$XDG_CACHE_HOME/cardstream/tools` or `~/.cache/cardstream/tools`,
/// then `bin/tansu`), else `PATH`.
pub fn tansu_binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os("CARDSTREAM_TANSU_BIN") {
        return Ok(PathBuf::from(path));
    }
    let tools = std::env::var_os("CARDSTREAM_TOOLS")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .map(|cache| cache.join("cardstream/tools"))
        });
    let candidates = tools.map(|t| t.join("bin/tansu")).into_iter().chain(
        std::env::var_os("PATH").into_iter().flat_map(|p| {
            std::env::split_paths(&p)
                .map(|dir| dir.join("tansu"))
                .collect::<Vec<_>>()
        }),
    );
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::NotInstalled)
}

/// A tansu broker child process. Killed when dropped.
#[derive(Debug)]
pub struct LocalBroker {
    addr: SocketAddr,
    storage: Storage,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

impl LocalBroker {
    /// Starts a broker on a free local port and waits until it accepts connections.
    pub async fn start(storage: Storage) -> Result<LocalBroker, Error> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], port)), storage).await
    }

    /// Starts a broker on `addr`.
    pub async fn start_on(addr: SocketAddr, storage: Storage) -> Result<LocalBroker, Error> {
        let mut broker = LocalBroker {
            addr,
            storage,
            dir: tempfile::Builder::new()
                .prefix("cardstream-broker")
                .tempdir()?,
            child: None,
            starts: 0,
        };
        broker.start_again().await?;
        Ok(broker)
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        self.addr.to_string()
    }

    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn directory(&self) -> &Path {
        self.dir.path()
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts the broker again on the same port and storage. With [`Storage::Sqlite`] the
    /// records and committed offsets are still there.
    pub async fn start_again(&mut self) -> Result<(), Error> {
        self.stop().await;
        self.starts += 1;
        let engine = match self.storage {
            Storage::Memory => "memory://tansu/",
            // Relative to the working directory: tansu mangles absolute sqlite paths.
            Storage::Sqlite => "sqlite://tansu.db",
        };
        let url = format!("tcp://{}", self.addr);
        let log_path = self.dir.path().join(format!("broker-{}.log", self.starts));
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(tansu_binary()?)
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", engine])
            // tansu reads a .env from its working directory: this one has none.
            .current_dir(self.dir.path())
            // A group of its own: Ctrl-C in a terminal signals the whole foreground group,
            // and the broker must outlive the components that flush and commit to it; its
            // owner stops it last.
            .process_group(0)
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait()?
            {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                return Err(Error::Exited { status, log });
            }
            if Instant::now() > deadline {
                return Err(Error::NotListening(self.addr));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}
