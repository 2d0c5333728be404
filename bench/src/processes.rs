//! The processes a benchmark drives: the real `cardstream` binary and the bare baseline server,
//! each in its own process so the load generator does not share their runtime.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use tokio::process::{Child, Command};

pub(crate) fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// A binary next to this one in the target directory.
pub(crate) fn sibling_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::current_exe()?.with_file_name(name);
    anyhow::ensure!(
        path.is_file(),
        "{} is missing; build it in the same profile (scripts/bench.sh does)",
        path.display()
    );
    Ok(path)
}

/// Spawns a process and waits until `addr` accepts connections.
pub(crate) async fn spawn_listening(
    mut command: Command,
    addr: SocketAddr,
) -> anyhow::Result<Child> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start a benchmark process")?;
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the process exited at start: {status}");
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "nothing listening on {addr} after 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(child)
}

pub(crate) async fn bare_server(listen: SocketAddr) -> anyhow::Result<()> {
    let app = Router::new().route(
        "/webhooks/stripe",
        post(|body: Bytes| async move {
            std::hint::black_box(body);
            (
                [(http::header::CONTENT_TYPE, "application/json")],
                r#"{"received":true}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(listen).await?;
    axum::serve(listener, app).await?;
    Ok(())
}

/// A process's peak resident memory (`VmHWM`), in MiB; `None` where /proc has no such process.
pub(crate) fn peak_rss_mib(pid: Option<u32>) -> Option<f64> {
    status_mib(pid?, "VmHWM:")
}

/// A process's resident memory now (`VmRSS`), in MiB.
pub(crate) fn rss_mib(pid: Option<u32>) -> Option<f64> {
    status_mib(pid?, "VmRSS:")
}

/// A process's anonymous resident memory (`RssAnon`: heap, stacks, anonymous maps; not the
/// binary's mapped pages), in MiB.
pub(crate) fn rss_anon_mib(pid: Option<u32>) -> Option<f64> {
    status_mib(pid?, "RssAnon:")
}

/// The text of a component's /metrics page, read from its admin endpoint.
pub(crate) async fn scrape(admin: SocketAddr) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(admin)
        .await
        .with_context(|| format!("cannot reach the admin endpoint {admin}"))?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

/// The sum of a metric's series whose name starts with `name` and whose labels contain `label`
/// (e.g. `outcome="duplicate"`; empty for any).
pub(crate) fn metric_sum(text: &str, name: &str, label: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A `kB` field of /proc/<pid>/status, in MiB.
fn status_mib(pid: u32, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// `12.3 MiB`, or `n/a`.
pub(crate) fn mib(value: Option<f64>) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.1} MiB"))
}

/// The benchmark's own connection to its database, with no statement, lock or idle timeout:
/// what it does there (loading a million rows, exporting them for COPY, recomputing every
/// rollup) runs longer than a component's statements may.
pub(crate) async fn bench_store(
    url: &str,
    connections: u32,
) -> anyhow::Result<cardstream_store::Store> {
    let none = cardstream_store::Timeouts {
        statement: Duration::ZERO,
        lock: Duration::ZERO,
        idle_in_transaction: Duration::ZERO,
    };
    Ok(cardstream_store::Store::connect_with(url, connections, none).await?)
}
