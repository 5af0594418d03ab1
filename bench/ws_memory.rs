//! Memory per idle WebSocket connection of a real `simple-chat serve` process.
//!
//! `cargo bench --bench ws_memory` (optionally `WS_CONNECTIONS=5000`): starts the release
//! binary on a temporary SQLite database, opens N WebSocket connections for one user (each gets
//! its hello frame), waits for the server to settle, and reports the growth of the server's
//! resident memory divided by N. The process may hold at most 20,000 files, and this process
//! holds the client ends, so N stays well below that.

use std::{
    net::TcpListener,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures_util::StreamExt;
use tokio_tungstenite::connect_async;

const PASSWORD: &str = "bench-password-1";

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() {
    let connections: usize = std::env::var("WS_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let binary = env!("CARGO_BIN_EXE_simple-chat");
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("bench.sqlite3").display());
    let status = Command::new(binary)
        .args(["createuser", "alice", "--noinput"])
        .env("DATABASE_URL", &url)
        .env("SIMPLE_CHAT_USER_PASSWORD", PASSWORD)
        .status()
        .expect("createuser");
    assert!(status.success());
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = Server(
        Command::new(binary)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &url)
            .env("RUST_LOG", "warn")
            // One user holds every socket here; the per-user cap is not what is measured.
            .env("SIMPLE_CHAT_MAX_WEBSOCKETS_PER_USER", "1000000")
            .stdin(Stdio::null())
            .spawn()
            .expect("start the server"),
    );
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let token: serde_json::Value = client
        .post(format!("{base}/api/token/"))
        .json(&serde_json::json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access"].as_str().unwrap().to_owned();
    let ws_url = format!("ws://127.0.0.1:{port}/ws?token={token}");

    // Warm up: one connection, so one-time allocations are not counted.
    let (mut warm, _) = connect_async(&ws_url).await.expect("connect");
    warm.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = server.0.id();
    let before = rss_kib(pid);

    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (mut socket, _) = connect_async(&ws_url).await.expect("connect");
        socket.next().await.unwrap().unwrap(); // hello
        sockets.push(socket);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(pid);
    let per_connection = (after.saturating_sub(before) * 1024) as f64 / connections as f64;
    println!(
        "ws_memory: {connections} idle WebSocket connections: server RSS {before} KiB -> {after} KiB, \
         {per_connection:.0} bytes per connection (budget 10240)"
    );
    drop(sockets);
    drop(warm);
}
