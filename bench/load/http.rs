//! The load generator's HTTP client: plain HTTP/1.1 keep-alive connections (hyper's
//! connection API), kept in one pool that every task of a run shares. A request takes an idle
//! connection or opens one, so N tasks in flight use N connections, as wrk does.
//!
//! Why not reqwest: on this 2-core machine, where client and server share the cores, reqwest
//! (URL parsing, its pool and timers per request) answered `/healthz` at 16,600 req/s with 64
//! in flight where wrk got 34,500; the generator, not the server, was measured. These bare
//! connections do about the same work per request as wrk.

use std::{
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU8, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request,
    client::conn::http1::{self, SendRequest},
    header,
};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// A request body: JSON text.
pub type Body = Option<String>;

/// For [`Http::call`]: any 2xx status is a success.
pub const ANY_2XX: u16 = 0;

const TIMEOUT: Duration = Duration::from_secs(30);

type Connection = SendRequest<Full<Bytes>>;

/// One HTTP client for every task of a run (cheap to clone).
#[derive(Clone)]
pub struct Http {
    /// `host:port`.
    authority: Arc<str>,
    /// A path prefix of the target URL, if any.
    prefix: Arc<str>,
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Http {
    /// A client for `http://host:port[/prefix]`.
    pub fn new(base: &str) -> Http {
        let rest = base
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("only http:// URLs are supported, not {base:?}"));
        let (authority, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            format!("/{}", prefix.trim_end_matches('/'))
        };
        Http {
            authority: authority.into(),
            prefix: prefix.into(),
            idle: Arc::default(),
        }
    }

    async fn connect(&self) -> Result<Connection, String> {
        let stream = connect_tcp(&self.authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        Ok(sender)
    }

    /// An idle connection that is still open, or a new one.
    async fn connection(&self) -> Result<Connection, String> {
        loop {
            let Some(mut connection) = self.idle.lock().unwrap().pop() else {
                return self.connect().await;
            };
            if connection.ready().await.is_ok() {
                return Ok(connection);
            }
        }
    }

    /// Sends a request and reads the whole answer; an error unless the status is `expect`
    /// (or any 2xx for [`ANY_2XX`]).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        expect: u16,
    ) -> Result<Bytes, String> {
        let route = route_of(path);
        let exchange = async {
            let mut connection = self.connection().await?;
            let mut request = Request::builder()
                .method(method.clone())
                .uri(format!("{}{path}", self.prefix))
                .header(header::HOST, &*self.authority);
            if let Some(token) = token {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            if body.is_some() {
                request = request.header(header::CONTENT_TYPE, "application/json");
            }
            let request = request
                .body(Full::new(Bytes::from(body.unwrap_or_default())))
                .map_err(|e| e.to_string())?;
            let response = connection
                .send_request(request)
                .await
                .map_err(|e| e.to_string())?;
            let status = response.status().as_u16();
            let keep = !response
                .headers()
                .get(header::CONNECTION)
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("reading the body: {e}"))?
                .to_bytes();
            if keep {
                self.idle.lock().unwrap().push(connection);
            }
            Ok::<_, String>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(TIMEOUT, exchange)
            .await
            .map_err(|_| format!("{method} {route}: no answer within {TIMEOUT:?}"))?
            .map_err(|e| format!("{method} {route}: {e}"))?;
        let success = status == expect || (expect == ANY_2XX && (200..300).contains(&status));
        if !success {
            let text: String = String::from_utf8_lossy(&bytes).chars().take(160).collect();
            return Err(format!("{method} {route}: {status} {text}"));
        }
        Ok(bytes)
    }

    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        expect: u16,
    ) -> Result<serde_json::Value, String> {
        let bytes = self.call(method, path, token, body, expect).await?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{path}: not JSON: {e}"))
    }
}

/// Source addresses for connections to this machine: 127.0.0.2 and the next 15.
const SOURCES: u8 = 16;

/// A TCP connection to `authority`, without Nagle's delay. Connections to the loopback
/// interface come from 16 source addresses in turn: from one address, Linux hands out the even
/// half of the ephemeral ports first, and once ~14,000 connections to one server use them up
/// every further `connect()` scans the rest, taking ~2 ms of this process's only thread
/// (measured here: 40 µs per connect up to 14,000 connections, 1.7–2.7 ms beyond).
pub async fn connect_tcp(authority: &str) -> std::io::Result<TcpStream> {
    static NEXT: AtomicU8 = AtomicU8::new(0);
    let address: SocketAddr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{authority} has no address")))?;
    let stream = match address {
        SocketAddr::V4(v4) if v4.ip().is_loopback() => {
            let source = 2 + NEXT.fetch_add(1, Ordering::Relaxed) % SOURCES;
            let socket = TcpSocket::new_v4()?;
            socket.bind(SocketAddr::from(([127, 0, 0, source], 0)))?;
            socket.connect(address).await?
        }
        _ => TcpStream::connect(address).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A path with its numbers replaced, so that error samples group by endpoint.
fn route_of(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    path.split('/')
        .map(|part| {
            if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                "N"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}
