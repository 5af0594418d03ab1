//! The load generator's client side besides plain HTTP (in `http.rs`): WebSocket connections
//! with small buffers (thousands are held at once), the access tokens the harness mints
//! itself, and [`drive`]: one kind of request at fixed concurrency for a fixed time, recorded
//! into a [`Tally`]. All of it runs in this one tokio process.

use std::{
    future::Future,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{SinkExt, StreamExt};
use simple_chat::auth::jwt::{TokenKeys, TokenType};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{Message, protocol::WebSocketConfig},
};

use crate::{data::Random, stats::Tally};

pub type Socket = WebSocketStream<TcpStream>;

/// Access tokens for users `1..=users`, signed with the servers' key and valid for a day
/// (loaded users are at token version 0).
pub fn mint_tokens(secret: &str, users: u64) -> Arc<Vec<String>> {
    let day = Duration::from_secs(86_400);
    let keys = TokenKeys::new(secret.as_bytes(), day, day);
    Arc::new(
        (1..=users as i64)
            .map(|id| keys.issue(TokenType::Access, id, 0))
            .collect(),
    )
}

/// Small buffers: an idle client socket then costs a few KB, not the default 256 KiB.
fn socket_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Opens `/ws` (from `since` when given) and reads the hello frame; the socket and the `seq`
/// the hello states.
pub async fn ws_connect(
    ws_base: &str,
    token: &str,
    since: Option<i64>,
) -> Result<(Socket, i64), String> {
    let mut url = format!("{ws_base}/ws?token={token}");
    if let Some(since) = since {
        url.push_str(&format!("&since={since}"));
    }
    let authority = ws_base.trim_start_matches("ws://");
    let stream = crate::http::connect_tcp(authority)
        .await
        .map_err(|e| format!("GET /ws: connect: {e}"))?;
    let (mut socket, _) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(socket_config()))
            .await
            .map_err(|e| format!("GET /ws: {e}"))?;
    let hello = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .map_err(|_| "GET /ws: no hello within 10 s".to_owned())?;
    match hello {
        Some(Ok(Message::Text(text))) => {
            let frame: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| format!("GET /ws: hello: {e}"))?;
            if frame["type"] != "hello" {
                return Err(format!("GET /ws: first frame is not hello: {text}"));
            }
            Ok((socket, frame["seq"].as_i64().unwrap_or(0)))
        }
        other => Err(format!("GET /ws: no hello: {other:?}")),
    }
}

/// Closes a socket politely: a close frame, then reads until the server's close.
pub async fn ws_close(mut socket: Socket) {
    let _ = socket.send(Message::Close(None)).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
}

/// Runs `request` from `concurrency` tasks for `duration`, each task with its own random
/// stream; every completed request is recorded. `request` draws what it needs from the
/// generator and returns the request itself as a future.
pub async fn drive<F, Fut>(concurrency: usize, duration: Duration, seed: u64, request: F) -> Tally
where
    F: Fn(&mut Random) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let request = Arc::new(request);
    let deadline = Instant::now() + duration;
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let request = request.clone();
            tokio::spawn(async move {
                let mut random = Random::new(seed * 1_000 + worker as u64);
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let call = request(&mut random);
                    let started = Instant::now();
                    let outcome = call.await;
                    tally.record(started.elapsed(), outcome);
                }
                tally
            })
        })
        .collect();
    let mut total = Tally::default();
    for task in tasks {
        total.merge(&task.await.expect("a load task"));
    }
    total
}
