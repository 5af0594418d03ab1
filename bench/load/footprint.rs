//! Footprint, on the small data set: the server's resident memory once started and idle, its
//! growth per idle WebSocket (N sockets spread over N users, each with its hello read; as in
//! `bench/ws_memory.rs`, one warm-up socket first so one-time allocations are not counted),
//! the size of the binary, and the cold start: spawn to the first 200 from `/healthz` on an
//! existing database, the median of five.

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};

use crate::{
    client::{ws_close, ws_connect},
    report::FootprintRow,
    server::{Backend, Server, binary, spawn, wait_healthy},
};

fn row(what: &str, value: f64, unit: &str, target: &str) -> FootprintRow {
    FootprintRow {
        what: what.to_owned(),
        value,
        unit: unit.to_owned(),
        target: target.to_owned(),
    }
}

/// The footprint rows and any problems (sockets that would not open, a server that would not
/// start).
pub async fn run(
    backend: &Backend,
    url: &str,
    secret: &str,
    tokens: &Arc<Vec<String>>,
    sockets: usize,
) -> (Vec<FootprintRow>, Vec<String>) {
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let server = Server::start(url, secret, backend.log_path("footprint"));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.rss_kib();
    rows.push(row(
        "idle RSS after start",
        idle as f64 / 1024.0,
        "MiB",
        "<= 20 MiB",
    ));

    let (warm, _) = ws_connect(&server.ws_base, &tokens[0], None)
        .await
        .expect("a first WebSocket");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib();
    let users = tokens.len();
    let opened: Vec<_> = stream::iter(0..sockets)
        .map(|i| {
            let token = tokens[(i + 1) % users].clone();
            let ws_base = server.ws_base.clone();
            async move { ws_connect(&ws_base, &token, None).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let mut open = Vec::new();
    let mut failed = Vec::new();
    for result in opened {
        match result {
            Ok((socket, _)) => open.push(socket),
            Err(error) => failed.push(error),
        }
    }
    if !failed.is_empty() {
        problems.push(format!(
            "footprint: {} of {sockets} sockets did not open, e.g. {}",
            failed.len(),
            failed[0]
        ));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    let per_socket = after.saturating_sub(before) as f64 / open.len().max(1) as f64;
    rows.push(row(
        &format!("RSS with {} idle WebSockets", open.len()),
        after as f64 / 1024.0,
        "MiB",
        "-",
    ));
    rows.push(row(
        "RSS per idle WebSocket",
        per_socket,
        "KiB",
        "<= 10 KiB",
    ));
    for socket in open {
        drop(socket);
    }
    ws_close(warm).await;
    drop(server);

    let size = std::fs::metadata(binary()).map_or(0, |m| m.len());
    rows.push(row(
        "binary size (as shipped, scripts/dist.sh)",
        size as f64 / (1024.0 * 1024.0),
        "MiB",
        "<= 15 MiB",
    ));

    let mut starts = Vec::new();
    for run in 0..5 {
        let log = backend.log_path(&format!("cold-start-{run}"));
        let (mut child, port) = spawn(url, secret, &log);
        let took = tokio::task::spawn_blocking(move || wait_healthy(port, Duration::from_secs(60)))
            .await
            .expect("the cold start probe");
        let _ = child.kill();
        let _ = child.wait();
        match took {
            Some(took) => starts.push(took),
            None => problems.push(format!("footprint: cold start {run} never answered")),
        }
    }
    starts.sort();
    if let Some(median) = starts.get(starts.len() / 2) {
        rows.push(row(
            "cold start to first /healthz 200 (median of 5)",
            median.as_secs_f64() * 1000.0,
            "ms",
            "-",
        ));
    }
    (rows, problems)
}
