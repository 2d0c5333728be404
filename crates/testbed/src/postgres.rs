use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};

/// The server tests create their databases on: `CARDSTREAM_TEST_DATABASE_URL`, by default the
/// project's local Postgres.
pub fn admin_url() -> String {
    std::env::var("CARDSTREAM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

fn with_database(url: &str, database: &str) -> String {
    match url.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{database}"),
        None => format!("{url}/{database}"),
    }
}

/// A database of its own for one test, on a shared server; dropped with the value.
#[derive(Debug)]
pub struct TestDatabase {
    pub name: String,
    pub url: String,
    admin: String,
}

impl TestDatabase {
    /// Creates an empty database with a unique name. Fails loudly without Postgres.
    pub async fn create() -> TestDatabase {
        Self::create_on(&admin_url()).await
    }

    /// Creates it on the server at `admin` (a URL to any database there).
    pub async fn create_on(admin: &str) -> TestDatabase {
        let name = crate::unique_name("cardstream_test");
        let mut conn = PgConnection::connect(admin).await.unwrap_or_else(|e| {
            panic!(
                "the tests need Postgres at {admin} (set CARDSTREAM_TEST_DATABASE_URL to use another): {e}"
            )
        });
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create the test database");
        TestDatabase {
            url: with_database(admin, &name),
            name,
            admin: admin.to_owned(),
        }
    }

    /// Refuses new connections and cuts the existing ones, as a database restart would, until
    /// [`TestDatabase::reopen`].
    pub async fn close(&self) {
        let mut conn = PgConnection::connect(&self.admin)
            .await
            .expect("admin connection");
        sqlx::query(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS false",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("refuse connections");
        sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
            .bind(&self.name)
            .execute(&mut conn)
            .await
            .expect("terminate connections");
    }

    pub async fn reopen(&self) {
        let mut conn = PgConnection::connect(&self.admin)
            .await
            .expect("admin connection");
        sqlx::query(&format!(
            "ALTER DATABASE {} WITH ALLOW_CONNECTIONS true",
            self.name
        ))
        .execute(&mut conn)
        .await
        .expect("allow connections");
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop may run inside a runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(mut conn) = PgConnection::connect(&admin).await {
                    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .execute(&mut conn)
                        .await;
                }
            });
        })
        .join();
    }
}

/// A Postgres server of its own (initdb into a temporary directory), for tests that stop and
/// restart the server itself without disturbing the shared one.
#[derive(Debug)]
pub struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

fn as_postgres_user(program: &str) -> std::process::Command {
    // initdb and postgres refuse to run as root; run them as the postgres user then.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if root {
        let mut command = std::process::Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        std::process::Command::new(program)
    }
}

fn run(mut command: std::process::Command, what: &str) {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

impl PrivatePostgres {
    /// Creates and starts a server on a free port. Takes a few seconds.
    pub async fn start() -> PrivatePostgres {
        let dir = tempfile::Builder::new()
            .prefix("cardstream-pg")
            .tempdir()
            .expect("temporary directory");
        // The postgres user must own the directory when the tests run as root.
        let _ = std::process::Command::new("chown")
            .args(["-R", "postgres", &dir.path().to_string_lossy()])
            .status();
        let data = dir.path().join("data");
        let mut initdb = as_postgres_user("initdb");
        initdb.args([
            "-D",
            &data.to_string_lossy(),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        ]);
        run(initdb, "initdb");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let mut server = PrivatePostgres {
            dir,
            port,
            running: false,
        };
        server.start_again().await;
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A URL to `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server at once (immediate shutdown, as a crash).
    pub async fn stop(&mut self) {
        let mut ctl = as_postgres_user("pg_ctl");
        ctl.args([
            "-D",
            &self.data().to_string_lossy(),
            "-m",
            "immediate",
            "-w",
            "stop",
        ]);
        run(ctl, "pg_ctl stop");
        self.running = false;
    }

    /// Starts it (again) and waits until it accepts connections.
    pub async fn start_again(&mut self) {
        let log = self.dir.path().join("server.log");
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {} -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let mut ctl = as_postgres_user("pg_ctl");
        ctl.args([
            "-D",
            &self.data().to_string_lossy(),
            "-l",
            &log.to_string_lossy(),
            "-o",
            &options,
            "-w",
            "start",
        ]);
        run(ctl, "pg_ctl start");
        self.running = true;
        let deadline = Instant::now() + Duration::from_secs(30);
        while PgConnection::connect(&self.url("postgres")).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "private Postgres did not accept connections: {}",
                read(&log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if self.running {
            let mut ctl = as_postgres_user("pg_ctl");
            ctl.args([
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "stop",
            ]);
            let _ = ctl.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}
