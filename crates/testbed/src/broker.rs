use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

/// The broker's storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// Fast; gone on restart; its reported high watermark is too low after multi-record
    /// batches, so do not measure lag on it.
    Memory,
    /// SQLite in the broker's directory: survives restarts, reports offsets correctly.
    Sqlite,
}

/// A tansu broker owned by one test, on its own port and directory. Killed on drop.
#[derive(Debug)]
pub struct Broker {
    addr: SocketAddr,
    storage: Storage,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: u32,
}

/// Where the tansu binary is: `CARDSTREAM_TANSU_BIN`, else the project's tool cache
/// (`$XDG_CACHE_HOME` or `~/.cache`, then `cardstream/tools/bin/tansu`), else `PATH`.
pub fn tansu_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("CARDSTREAM_TANSU_BIN") {
        return PathBuf::from(path);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(candidate) = cache.map(|c| c.join("cardstream/tools/bin/tansu"))
        && candidate.is_file()
    {
        return candidate;
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("tansu");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Kafka-protocol broker for the tests: tansu was not found in CARDSTREAM_TANSU_BIN, \
         the tool cache or PATH. Run scripts/install-tools.sh (or the README's test command), \
         which installs it."
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free local port")
}

impl Broker {
    /// Starts a broker and waits until it accepts connections.
    pub async fn start(storage: Storage) -> Broker {
        let dir = tempfile::tempdir().expect("temporary directory for the broker");
        let mut broker = Broker {
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            storage,
            dir,
            child: None,
            starts: 0,
        };
        broker.start_again().await;
        broker
    }

    /// `host:port` for `bootstrap.servers`.
    pub fn brokers(&self) -> String {
        self.addr.to_string()
    }

    /// The broker's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    pub fn storage(&self) -> Storage {
        self.storage
    }

    /// Kills the broker at once (SIGKILL), as a crash or a lost node would.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
            let _ = child.wait().await;
        }
    }

    /// Starts the broker again on the same port and storage. With [`Storage::Sqlite`] the
    /// records and committed offsets are still there.
    pub async fn start_again(&mut self) {
        self.stop().await;
        self.starts += 1;
        let engine = match self.storage {
            Storage::Memory => "memory://tansu/".to_owned(),
            // Relative to the broker's working directory: tansu mangles absolute sqlite paths.
            Storage::Sqlite => "sqlite://tansu.db".to_owned(),
        };
        let url = format!("tcp://{}", self.addr);
        let log_path = self.dir.path().join(format!("broker-{}.log", self.starts));
        let log = std::fs::File::create(&log_path).expect("broker log file");
        let child = Command::new(tansu_binary())
            .arg("broker")
            .args(["--listener-url", &url, "--advertised-listener-url", &url])
            .args(["--storage-engine", &engine])
            .current_dir(self.dir.path())
            // tansu reads a .env from its working directory; make sure it sees none of ours.
            .env_remove("STORAGE_ENGINE")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("broker log file"))
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tansu_binary().display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(self.addr).await.is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                let log = std::fs::read_to_string(&log_path).unwrap_or_default();
                panic!("the broker exited at start ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the broker did not accept connections on {} within 20 s",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
