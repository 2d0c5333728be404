//! `cardstream probe`, the HTTP check the chart's `helm test` hook runs (the image has no
//! curl): against servers that answer 200, answer 503, or are not there.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers every request with `status` and `body`; its address.
async fn answering(status: &'static str, body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut request = vec![0; 4096];
                let _ = socket.read(&mut request).await;
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{address}")
}

/// Runs `cardstream probe` (on a blocking thread: the test's servers run on this runtime).
async fn probe(urls: Vec<String>) -> (Option<i32>, String) {
    tokio::task::spawn_blocking(move || {
        let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
            .arg("probe")
            .args(&urls)
            .args(["--timeout", "2s"])
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn probe_exits_by_the_worst_answer() {
    let ok = answering("200 OK", "ok").await;
    let unready = answering("503 Service Unavailable", "not ready: database").await;
    // A port nobody listens on: bound, then closed.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };

    let (code, said) = probe(vec![format!("{ok}/readyz"), format!("{ok}/")]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("200 OK ok"), "{said}");

    let (code, said) = probe(vec![format!("{ok}/"), format!("{unready}/readyz")]).await;
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("503 Service Unavailable not ready: database"),
        "{said}"
    );

    let (code, said) = probe(vec![
        format!("{unready}/readyz"),
        format!("{closed}/readyz"),
    ])
    .await;
    assert_eq!(code, Some(3), "{said}");
    assert!(said.contains("cannot connect"), "{said}");
}
