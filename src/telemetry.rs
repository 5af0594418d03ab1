//! Prometheus metrics, on their own listener (`serve --metrics-bind`, off by default), so the
//! numbers never share a port with the public API.
//!
//! Counters and histograms are recorded where things happen, with the `metrics` crate's macros
//! (no-ops until [`install`] sets the recorder): requests by route template and status here,
//! events appended in the store, write batches on the SQLite writer, pool waits on PostgreSQL,
//! throttled logins in `auth`. Gauges that describe "now" (open WebSockets, users online, queue
//! depths, pool use) are read when Prometheus scrapes, in [`scrape`]. The names are listed in
//! `docs/OPERATIONS.md`.

use std::{
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Instant,
};

use axum::{
    Router,
    extract::{MatchedPath, Request, State},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
    routing::get,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::AppState;

/// Upper bounds of the latency histograms' buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the SQLite write batch size histogram's buckets (transactions per commit).
const BATCH_BUCKETS: [f64; 9] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Installs the process-wide recorder (once; later calls return the same handle).
pub fn install() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &LATENCY_BUCKETS)
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("simple_chat_sqlite_write_batch_size".into()),
                    &BATCH_BUCKETS,
                )
            })
            .expect("the bucket lists are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        ENABLED.store(true, Ordering::SeqCst);
        handle
    })
}

/// Whether metrics are being recorded (the request layer skips its work otherwise).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "simple_chat_http_requests_total",
        "HTTP requests answered, by method, route template and status"
    );
    describe_histogram!(
        "simple_chat_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the upgrade for WebSockets), by method and route"
    );
    describe_gauge!(
        "simple_chat_websockets_open",
        "WebSockets open on this instance"
    );
    describe_gauge!(
        "simple_chat_users_online",
        "Users with at least one WebSocket open on this instance"
    );
    describe_counter!(
        "simple_chat_events_appended_total",
        "Events appended to users' logs (committed or not)"
    );
    describe_gauge!(
        "simple_chat_password_checks",
        "Password checks running or waiting for a hashing thread"
    );
    describe_counter!(
        "simple_chat_login_throttled_total",
        "Login attempts refused by the throttle (429)"
    );
    describe_gauge!(
        "simple_chat_sqlite_write_queue",
        "SQLite: write transactions waiting for the writer"
    );
    describe_gauge!(
        "simple_chat_sqlite_read_queue",
        "SQLite: reads waiting for a reader connection"
    );
    describe_counter!(
        "simple_chat_thread_list_cache_total",
        "SQLite: thread lists answered from memory (outcome=hit) or read (outcome=miss)"
    );
    describe_counter!(
        "simple_chat_thread_pair_cache_total",
        "SQLite: existing threads answered to create-or-get from memory (outcome=hit) or read (outcome=miss)"
    );
    describe_counter!(
        "simple_chat_message_page_cache_total",
        "SQLite: latest message pages answered from memory (outcome=hit) or read (outcome=miss)"
    );
    describe_counter!(
        "simple_chat_thread_members_cache_total",
        "SQLite: threads' members checked from memory (outcome=hit) or read (outcome=miss)"
    );
    describe_counter!(
        "simple_chat_unread_cache_total",
        "SQLite: users' unread totals answered from memory (outcome=hit) or read (outcome=miss)"
    );
    describe_counter!(
        "simple_chat_verified_token_cache_total",
        "Access tokens found verified in memory (outcome=hit) or checked in full (outcome=miss)"
    );
    describe_histogram!(
        "simple_chat_sqlite_write_batch_size",
        "SQLite: transactions committed together (group commit)"
    );
    describe_gauge!(
        "simple_chat_db_pool_connections",
        "PostgreSQL: pooled connections, by state (idle, in_use)"
    );
    describe_gauge!(
        "simple_chat_db_pool_waiting",
        "PostgreSQL: requests waiting for a pooled connection"
    );
    describe_histogram!(
        "simple_chat_db_pool_wait_seconds",
        Unit::Seconds,
        "PostgreSQL: time to get a pooled connection"
    );
    describe_gauge!(
        "simple_chat_build_info",
        "Always 1; the labels say the version and the newest migration this binary knows"
    );
}

/// A layer for the routes (added with `route_layer`, so the route template is known): counts
/// each answer by route template (`/thread/{id}/message`, never a raw path) and status, and
/// times it.
pub async fn track(request: Request, next: Next) -> Response {
    if !enabled() {
        return next.run(request).await;
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "simple_chat_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone(),
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "simple_chat_http_requests_total",
        "method" => method,
        "route" => route,
        "status" => status,
    )
    .increment(1);
    response
}

/// The metrics listener's routes: `GET /metrics`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(state)
}

/// Reads the gauges of "now", then renders everything in Prometheus' text format.
async fn scrape(State(state): State<AppState>) -> Response {
    let handle = install();
    let (sockets, users) = state.hub.open_sockets();
    metrics::gauge!("simple_chat_websockets_open").set(sockets as f64);
    metrics::gauge!("simple_chat_users_online").set(users as f64);
    metrics::gauge!("simple_chat_password_checks").set(state.checks.in_use() as f64);
    metrics::gauge!(
        "simple_chat_build_info",
        "version" => env!("CARGO_PKG_VERSION"),
        "schema" => crate::store::SCHEMA,
    )
    .set(1.0);
    state.store.record_gauges();
    handle.run_upkeep();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}
