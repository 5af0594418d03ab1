//! Scale: do the everyday reads stay as fast with 10 million messages in the database as
//! with 10 thousand? Two data sets are bulk-loaded, each into its own database, with the same
//! users and threads; the small one holds only the probe messages, the big one the same probe
//! messages (same texts, same order, same read flags) spread among millions of others (see
//! `data.rs`). A server is started on each in turn and the probe users' unread count, thread
//! list, latest message page and search are timed at a modest concurrency, with the same
//! random choices on both. The table shows p50/p99 of each and the big/small ratio (the
//! target is ≤ 1.5). The servers keep no answers in memory (`--kept-answers-mb 0`): a thread
//! list or latest page answered from memory would take as long on either, and the question
//! is whether the database's reads do.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use simple_chat::store::Store;

use crate::{
    data::{self, Plan, Probe},
    endpoints::{Target, measure},
    http::Http,
    report::{ScaleResult, ScaleRow},
    server::{Backend, Server},
    stats::{Tally, ms},
};

pub struct Options {
    pub users: u64,
    pub partners: u64,
    pub small_messages: u64,
    pub big_messages: u64,
    pub concurrency: usize,
    pub seconds: f64,
}

/// Users whose threads hold the probe messages.
const PROBE_USERS: u64 = 100;
const ENDPOINTS: [&str; 4] = ["unread count", "thread list", "message page", "search"];

/// Builds one data set in a fresh database; its URL, the set and the time it took.
pub async fn build(
    backend: &Backend,
    name: &str,
    plan: &Plan,
    password_hash: &str,
) -> (String, data::DataSet, Duration) {
    let started = Instant::now();
    let url = backend.fresh_database(name).await;
    let (store, _) = Store::open(&url).await.expect("open the database");
    let set = data::build(&store, plan, password_hash, name).await;
    drop(store);
    (url, set, started.elapsed())
}

pub fn plan(options: &Options, messages: u64) -> Plan {
    let probe_users = PROBE_USERS.min(options.users / 2);
    Plan {
        users: options.users,
        partners: options.partners,
        messages,
        probe: Some(Probe {
            users: probe_users,
            messages: options.small_messages,
        }),
        keep_messages: false,
    }
}

async fn measure_all(
    url: &str,
    set: data::DataSet,
    backend: &Backend,
    secret: &str,
    tokens: &Arc<Vec<String>>,
    options: &Options,
    label: &str,
) -> Vec<Tally> {
    let server = Server::start_with(
        url,
        secret,
        backend.log_path(label),
        &[("SIMPLE_CHAT_KEPT_ANSWERS_MB", "0")],
    );
    let target = Arc::new(Target {
        http: Http::new(&server.base),
        ws_base: server.ws_base.clone(),
        pick_users: PROBE_USERS.min(set.users / 2),
        data: Arc::new(set),
        tokens: tokens.clone(),
        server_stat: format!("/proc/{}/stat", server.pid()),
    });
    let duration = Duration::from_secs_f64(options.seconds);
    // Warm the caches the same way on both.
    for name in ENDPOINTS {
        measure(name, &target, options.concurrency, duration / 4, 50).await;
    }
    let mut tallies = Vec::new();
    for (i, name) in ENDPOINTS.iter().enumerate() {
        let tally = measure(name, &target, options.concurrency, duration, 60 + i as u64).await;
        eprintln!(
            "  [{label}] {name}: p50 {:.2} ms, p99 {:.2} ms, {} requests, {} errors",
            ms(tally.latency.percentile(0.5)),
            ms(tally.latency.percentile(0.99)),
            tally.latency.count(),
            tally.errors
        );
        tallies.push(tally);
    }
    tallies
}

/// Builds both data sets, measures both; the result, the problems, and the small set's URL
/// (the footprint runs on it).
pub async fn run(
    backend: &Backend,
    password_hash: &str,
    secret: &str,
    tokens: &Arc<Vec<String>>,
    options: &Options,
) -> (ScaleResult, Vec<String>, String) {
    eprintln!(
        "scale: building the small data set ({} messages)",
        options.small_messages
    );
    let (small_url, small, _) = build(
        backend,
        "scale_small",
        &plan(options, options.small_messages),
        password_hash,
    )
    .await;
    eprintln!(
        "scale: building the big data set ({} messages)",
        options.big_messages
    );
    let (big_url, big, took) = build(
        backend,
        "scale_big",
        &plan(options, options.big_messages),
        password_hash,
    )
    .await;
    let small = measure_all(&small_url, small, backend, secret, tokens, options, "small").await;
    let big = measure_all(&big_url, big, backend, secret, tokens, options, "big").await;
    let mut problems = Vec::new();
    let rows = ENDPOINTS
        .iter()
        .zip(small.iter().zip(&big))
        .map(|(name, (s, b))| {
            for tally in [s, b] {
                if tally.errors > 0 {
                    problems.push(format!(
                        "scale {name}: {} errors, e.g. {:?}",
                        tally.errors, tally.samples
                    ));
                }
            }
            let p = |t: &Tally, q| ms(t.latency.percentile(q));
            ScaleRow {
                endpoint: name.to_string(),
                small_p50_ms: p(s, 0.5),
                small_p99_ms: p(s, 0.99),
                big_p50_ms: p(b, 0.5),
                big_p99_ms: p(b, 0.99),
                ratio_p50: p(b, 0.5) / p(s, 0.5).max(0.001),
                ratio_p99: p(b, 0.99) / p(s, 0.99).max(0.001),
                errors: s.errors + b.errors,
            }
        })
        .collect();
    let result = ScaleResult {
        small_messages: options.small_messages,
        big_messages: options.big_messages,
        big_load_seconds: took.as_secs_f64(),
        rows,
    };
    (result, problems, small_url)
}
