//! Scenario A: every endpoint of the contract on its own, `--concurrency` tasks for
//! `--duration` seconds each, against a server on the loaded data set. Each request picks a
//! random user (and one of that user's threads, or a partner, or messages it received), so
//! the load is spread over the data as real traffic is, not one hot row. `/healthz` is the
//! baseline: every endpoint is also reported as a ratio of its requests/s to it, measured in
//! the same run on the same machine. Beside it, the server's CPU time per request: here the
//! load generator shares the server's cores, and a build whose threads take a larger share of
//! them answers more requests without costing less (see the README).

use std::{sync::Arc, time::Duration};

use hyper::Method;
use serde_json::json;

use crate::{
    client::{drive, ws_close, ws_connect},
    data::{DataSet, PASSWORD, Random, client_id, sentence, username, word},
    http::Http,
    report::EndpointRow,
    server::cpu_seconds,
    stats::Tally,
};

/// Every endpoint measured, in order.
pub const NAMES: [&str; 11] = [
    "healthz",
    "token",
    "create-or-get thread",
    "thread list",
    "message page",
    "post 1",
    "post batch of 10",
    "mark read",
    "unread count",
    "search",
    "ws connect",
];

/// The newest message page: the 20 messages before any id.
pub const LATEST_PAGE: &str = "before=9007199254740991&limit=20";

pub struct Target {
    pub http: Http,
    pub ws_base: String,
    pub data: Arc<DataSet>,
    pub tokens: Arc<Vec<String>>,
    /// Requests come from users `1..=pick_users`.
    pub pick_users: u64,
    /// The server's `/proc/<pid>/stat`: its CPU time per request is reported beside the rate.
    pub server_stat: String,
}

impl Target {
    fn user(&self, random: &mut Random) -> (i64, String) {
        let user = 1 + random.below(self.pick_users) as i64;
        (user, self.tokens[user as usize - 1].clone())
    }

    /// A random user, one of its threads, and its token.
    fn user_in_thread(&self, random: &mut Random) -> (i64, i64, String) {
        loop {
            let (user, token) = self.user(random);
            let threads = self.data.threads_of(user);
            if !threads.is_empty() {
                let thread = threads[random.below(threads.len() as u64) as usize] as i64;
                return (user, thread, token);
            }
        }
    }
}

/// Runs one endpoint; its tally.
pub async fn measure(
    name: &str,
    target: &Arc<Target>,
    concurrency: usize,
    duration: Duration,
    seed: u64,
) -> Tally {
    let t = target.clone();
    let ok = |r: Result<bytes::Bytes, String>| r.map(|_| ());
    match name {
        "healthz" => {
            drive(concurrency, duration, seed, move |_| {
                let http = t.http.clone();
                async move { ok(http.call(Method::GET, "/healthz", None, None, 200).await) }
            })
            .await
        }
        "token" => {
            drive(concurrency, duration, seed, move |random| {
                let (user, _) = t.user(random);
                let body = json!({"username": username(user), "password": PASSWORD}).to_string();
                let http = t.http.clone();
                async move {
                    ok(http
                        .call(Method::POST, "/api/token/", None, Some(body), 200)
                        .await)
                }
            })
            .await
        }
        "create-or-get thread" => {
            drive(concurrency, duration, seed, move |random| {
                let (user, thread, token) = t.user_in_thread(random);
                let other = t.data.partner(thread, user);
                let body = json!({"user1": username(user), "user2": username(other)}).to_string();
                let http = t.http.clone();
                async move {
                    let path = "/chat/thread/";
                    ok(http
                        .call(Method::POST, path, Some(&token), Some(body), 200)
                        .await)
                }
            })
            .await
        }
        "thread list" => {
            drive(concurrency, duration, seed, move |random| {
                let (user, token) = t.user(random);
                let path = format!("/chat/user/{user}/thread/");
                let http = t.http.clone();
                async move { ok(http.call(Method::GET, &path, Some(&token), None, 200).await) }
            })
            .await
        }
        "message page" => {
            drive(concurrency, duration, seed, move |random| {
                let (_, thread, token) = t.user_in_thread(random);
                let path = format!("/thread/{thread}/message/?{LATEST_PAGE}");
                let http = t.http.clone();
                async move { ok(http.call(Method::GET, &path, Some(&token), None, 200).await) }
            })
            .await
        }
        "post 1" | "post batch of 10" => {
            let count = if name == "post 1" { 1 } else { 10 };
            drive(concurrency, duration, seed, move |random| {
                let (_, thread, token) = t.user_in_thread(random);
                let messages: Vec<_> = (0..count)
                    .map(|_| json!({"text": sentence(random), "client_id": client_id(random)}))
                    .collect();
                let body = json!({ "messages": messages }).to_string();
                let path = format!("/thread/{thread}/message/");
                let http = t.http.clone();
                async move {
                    ok(http
                        .call(Method::POST, &path, Some(&token), Some(body), 201)
                        .await)
                }
            })
            .await
        }
        "mark read" => {
            drive(concurrency, duration, seed, move |random| {
                let (user, thread, token) = t.user_in_thread(random);
                let mut ids = t.data.received(thread, user, 20);
                if ids.is_empty() {
                    ids.push(1); // not the user's: ignored, still a valid request
                }
                let body = json!({ "messages_ids": ids }).to_string();
                let http = t.http.clone();
                async move {
                    ok(http
                        .call(Method::POST, "/message/", Some(&token), Some(body), 200)
                        .await)
                }
            })
            .await
        }
        "unread count" => {
            drive(concurrency, duration, seed, move |random| {
                let (user, token) = t.user(random);
                let path = format!("/user/{user}/message/");
                let http = t.http.clone();
                async move { ok(http.call(Method::GET, &path, Some(&token), None, 200).await) }
            })
            .await
        }
        "search" => {
            drive(concurrency, duration, seed, move |random| {
                let (_, token) = t.user(random);
                let path = format!("/api/search/?q={}&limit=20", search_words(random));
                let http = t.http.clone();
                async move { ok(http.call(Method::GET, &path, Some(&token), None, 200).await) }
            })
            .await
        }
        "ws connect" => {
            drive(concurrency, duration, seed, move |random| {
                let (_, token) = t.user(random);
                let ws_base = t.ws_base.clone();
                async move {
                    let (socket, _) = ws_connect(&ws_base, &token, None).await?;
                    ws_close(socket).await;
                    Ok(())
                }
            })
            .await
        }
        other => panic!("unknown endpoint {other:?}"),
    }
}

/// What people search for: one common or rare word, two words, or a prefix.
pub fn search_words(random: &mut Random) -> String {
    match random.below(4) {
        0 => word(random.below(20)),
        1 => word(500 + random.below(4_500)),
        2 => format!("{}+{}", word(random.below(50)), word(random.below(500))),
        _ => word(random.below(200))[..4].to_owned(),
    }
}

/// Scenario A against our server: every endpoint in `only` (all when empty), one after the
/// other.
pub async fn run(
    target: Arc<Target>,
    only: &[String],
    concurrency: usize,
    duration: Duration,
) -> Vec<EndpointRow> {
    // Each endpoint is warmed up (connections, the database's pages, the thread lists kept in
    // memory) without recording, so the table shows a server that has been running: the
    // cost of a first read is measured apart (see the README).
    let warm = Duration::from_secs_f64((duration.as_secs_f64() / 5.0).min(2.0));
    let mut rows = Vec::new();
    for (i, name) in NAMES.iter().enumerate() {
        if !only.is_empty() && *name != "healthz" && !only.iter().any(|o| o == name) {
            continue;
        }
        measure(name, &target, concurrency, warm, 100 + i as u64).await;
        let cpu_before = cpu_seconds(&target.server_stat);
        let tally = measure(name, &target, concurrency, duration, i as u64 + 1).await;
        let cpu = cpu_seconds(&target.server_stat) - cpu_before;
        rows.push(EndpointRow::new(name, &tally, duration).with_server_cpu(cpu));
        EndpointRow::relate_to_healthz(&mut rows);
        eprintln!("  {}", rows[rows.len() - 1].line(None));
        // Let closed connections and the database settle before the next endpoint.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    rows
}
