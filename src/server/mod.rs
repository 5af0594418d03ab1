//! The HTTP server: accepting connections (at most `--max-connections` at once; more wait in
//! the listen queue), serving each over HTTP/1.1 with WebSocket upgrades, cutting off slow and
//! idle clients ([`connection`]), and shutting down gracefully. The layers every route shares
//! are in [`layers`].

mod connection;
mod layers;

use std::{future::Future, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    extract::{ConnectInfo, Request},
    response::Response,
};
use hyper::body::Incoming;
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{net::TcpListener, sync::Semaphore};
use tower::Service;

pub use layers::{BodyLimits, with_shared_layers};

use crate::AppState;
use connection::{Activity, Expired, Watched, watch_body};

/// Limits on connections, from the configuration.
#[derive(Clone, Copy, Debug)]
pub struct ConnectionLimits {
    /// A request whose headers have not all arrived within this is cut off.
    pub header_timeout: Duration,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(75),
            max_connections: 10_000,
        }
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish.
pub async fn serve(
    state: AppState,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let hub = state.hub.clone();
    let limits = state.config.connections;
    let router = crate::router(state);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let (socket, address) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a moment rather than spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = socket.set_nodelay(true);
        let router = router.clone();
        let stopping = stopping.clone();
        tokio::spawn(serve_connection(
            (socket, address, permit),
            router,
            limits,
            stopping,
        ));
    }
    drop(stopping);
    // Long polls answer at once and sockets close with 1001; connections finish their request.
    hub.shut_down();
    let _ = stop.send(true);
    stop.closed().await;
    hub.drained(Duration::from_secs(5)).await;
    Ok(())
}

/// A connection: its socket, the client's address, and its place among the connections.
type Accepted = (
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
);

async fn serve_connection(
    (socket, address, place): Accepted,
    router: axum::Router,
    limits: ConnectionLimits,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched::new(socket, activity.clone(), place));
    let watched = activity.clone();
    let service = tower::service_fn(move |mut request: Request<Incoming>| {
        let mut router = router.clone();
        let activity = watched.clone();
        activity.request_started();
        request.extensions_mut().insert(ConnectInfo(address));
        let request = layers::trim_trailing_slash(request.map(axum::body::Body::new));
        async move {
            let response: Response = match router.call(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            Ok::<_, std::convert::Infallible>(response.map(|body| watch_body(body, activity)))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, TowerToHyperService::new(service))
        .with_upgrades();
    let mut connection = std::pin::pin!(connection);
    let mut watchdog = std::pin::pin!(activity.watch(limits.header_timeout, limits.idle_timeout));
    let mut stopped = *stopping.borrow();
    if stopped {
        connection.as_mut().graceful_shutdown();
    }
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            expired = &mut watchdog => match expired {
                // A client dribbling its headers gets nothing more.
                Expired::Headers => {
                    tracing::debug!(%address, "request headers too slow: closing");
                    return;
                }
                Expired::Idle => {
                    connection.as_mut().graceful_shutdown();
                    watchdog.set(activity.watch(limits.header_timeout, limits.idle_timeout));
                }
            },
            changed = stopping.changed(), if !stopped => {
                if changed.is_err() || *stopping.borrow() {
                    stopped = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}
