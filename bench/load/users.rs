//! Scenario B: simulated users, after Mattermost's load-test-ng. Each simulated user holds a
//! WebSocket on `/ws` and acts after a think time drawn from an exponential distribution with
//! mean `--think-seconds` (default 20 s, the "mean 20 s"), clamped to [mean/20, 3 ×
//! mean] (so [1 s, 60 s] by default, which brings the mean to about 19 s), choosing by
//! weight:
//!
//! | weight | action |
//! |---|---|
//! | 6.5 | open a conversation: its latest page of 20, then mark what it received read |
//! | 2 | scroll back one page (`before=` the oldest message shown) |
//! | 1 | post a message (a typing frame on the socket first) |
//! | 1 | check the unread count |
//! | 1 | open a conversation with someone new (create-or-get a thread with a random user) |
//! | 0.14 | reconnect its WebSocket (`since=` the last `seq` it saw, so nothing is missed) |
//!
//! Users do not log in here: each gets an access token the harness mints with the servers'
//! signing key (valid for a day, token version 0 as loaded). Logins are measured in scenario
//! A; 15,000 argon2id hashes at start would measure the password hash and nothing else.
//!
//! Users are added `--step` at a time, started evenly over each `--step-seconds` window, up
//! to `--max-users` (capped by the open-file limit: each costs a socket here and one in the
//! server). A step is healthy when, over its window, the mean request time is ≤ 100 ms, p99 ≤
//! 2 s, errors ≤ 0.025 %, and every message posted to a simulated, connected user reached that
//! user's socket within 2 s (each text carries a unique marker; the recipient's reader matches
//! it). Adding stops after the first unhealthy step; the largest healthy count is reported.
//! HTTP requests share one client whose connections are capped at `--http-connections`;
//! waiting for one counts in the request's time.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{Semaphore, watch};

use crate::{
    data::DataSet,
    http::Http,
    report::{StepRow, UsersResult},
    server::{Server, cpu_seconds},
    simulated::simulate,
    stats::ms,
    tracking::{Phase, Shared, StepStats},
};

pub struct Options {
    pub max_users: u64,
    pub step: u64,
    pub step_seconds: f64,
    pub think_mean: f64,
    pub http_connections: usize,
}

/// Time left after a window for its last messages to arrive before it is judged.
const GRACE: Duration = Duration::from_millis(2_500);

/// A step's row, once its window (and the grace after it) is over.
fn judge(shared: &Shared, step: usize, users: u64, usage: (f64, f64, f64)) -> StepRow {
    shared.expire(step);
    let steps = shared.steps.lock().unwrap();
    let s = &steps[step];
    let requests = s.tally.latency.count();
    let error_percent = 100.0 * s.tally.errors as f64 / requests.max(1) as f64;
    let mean = s.tally.latency.mean();
    let p99 = s.tally.latency.percentile(0.99);
    let healthy = mean <= Duration::from_millis(100)
        && p99 <= Duration::from_secs(2)
        && error_percent <= 0.025
        && s.late == 0;
    StepRow {
        users,
        connected: shared
            .connected
            .iter()
            .filter(|c| c.load(Ordering::SeqCst))
            .count() as u64,
        requests,
        mean_ms: ms(mean),
        p99_ms: ms(p99),
        errors: s.tally.errors,
        error_percent,
        posts_tracked: s.tracked,
        delivered_in_time: s.in_time.count(),
        late_or_missing: s.late,
        delivery_p99_ms: ms(s.in_time.percentile(0.99)),
        server_cpu_percent: usage.0,
        harness_cpu_percent: usage.1,
        server_rss_mib: usage.2,
        healthy,
        p99_ms_by_kind: s
            .kinds
            .iter()
            .map(|(kind, h)| (kind.to_string(), ms(h.percentile(0.99))))
            .collect(),
        error_samples: s.tally.samples.clone(),
    }
}

/// Scenario B; the rows and the problems (errors, messages never delivered).
pub async fn run(
    http: Http,
    ws_base: String,
    data: Arc<DataSet>,
    tokens: Arc<Vec<String>>,
    server: &Server,
    options: &Options,
) -> (UsersResult, Vec<String>) {
    let budget =
        crate::server::open_file_limit().saturating_sub(options.http_connections as u64 + 300);
    let max_users = options.max_users.min(data.users).min(budget);
    if max_users < options.max_users {
        eprintln!("  at most {max_users} simulated users (data set size, open-file limit)");
    }
    let steps = max_users.div_ceil(options.step.max(1)) as usize;
    let (set_phase, phase) = watch::channel(Phase::Acting);
    let shared = Arc::new(Shared {
        connected: (0..data.users).map(|_| AtomicBool::new(false)).collect(),
        http,
        ws_base,
        data,
        tokens,
        started: Instant::now(),
        step_len: Duration::from_secs_f64(options.step_seconds),
        think_mean: options.think_mean,
        steps: Mutex::new((0..steps.max(1)).map(|_| StepStats::default()).collect()),
        pending: Mutex::default(),
        next_marker: AtomicU64::new(1),
        connections: Semaphore::new(options.http_connections),
        phase,
    });
    let mut result = UsersResult {
        think_mean_seconds: options.think_mean,
        ..UsersResult::default()
    };
    let mut users = Vec::new();
    let mut usage = Vec::new();
    let mut cpu = (server.cpu_seconds(), cpu_seconds("/proc/self/stat"));
    let users_at = |step: usize| ((step as u64 + 1) * options.step).min(max_users);
    let mut judged = 0;
    for step in 0..steps {
        let window = shared.started + shared.step_len * step as u32;
        let first = users.len() as u64;
        let count = users_at(step) - first;
        for i in 0..count {
            let at = window + shared.step_len.mul_f64(i as f64 / count as f64);
            tokio::time::sleep_until(at.into()).await;
            users.push(tokio::spawn(simulate(
                shared.clone(),
                (first + i + 1) as i64,
            )));
        }
        tokio::time::sleep_until((window + shared.step_len).into()).await;
        let now = (server.cpu_seconds(), cpu_seconds("/proc/self/stat"));
        let seconds = shared.step_len.as_secs_f64();
        usage.push((
            100.0 * (now.0 - cpu.0) / seconds,
            100.0 * (now.1 - cpu.1) / seconds,
            server.rss_kib() as f64 / 1024.0,
        ));
        cpu = now;
        if step > 0 {
            // The previous window's grace is over: judge it.
            let row = judge(&shared, step - 1, users_at(step - 1), usage[step - 1]);
            eprintln!("  {}", row.line());
            let healthy = row.healthy;
            result.steps.push(row);
            judged = step;
            if !healthy {
                break;
            }
        }
    }
    let _ = set_phase.send(Phase::Quiet);
    tokio::time::sleep(GRACE).await;
    for (step, &usage) in usage.iter().enumerate().skip(judged) {
        let row = judge(&shared, step, users_at(step), usage);
        eprintln!("  {}", row.line());
        result.steps.push(row);
    }
    // Anything still undelivered now never was.
    tokio::time::sleep(GRACE).await;
    let missing = shared.pending.lock().unwrap().len();
    let _ = set_phase.send(Phase::Close);
    for user in users {
        let _ = tokio::time::timeout(Duration::from_secs(10), user).await;
    }
    result.largest_healthy = result
        .steps
        .iter()
        .take_while(|s| s.healthy)
        .last()
        .map_or(0, |s| s.users);
    let mut problems = Vec::new();
    let errors: u64 = result.steps.iter().map(|s| s.errors).sum();
    if errors > 0 {
        let samples: Vec<&String> = result
            .steps
            .iter()
            .flat_map(|s| &s.error_samples)
            .take(5)
            .collect();
        problems.push(format!(
            "scenario B: {errors} failed requests, e.g. {samples:?}"
        ));
    }
    if missing > 0 {
        problems.push(format!(
            "scenario B: {missing} posted messages never reached the recipient's socket"
        ));
    }
    if result.steps.iter().map(|s| s.posts_tracked).sum::<u64>() == 0 {
        problems.push("scenario B: no delivery was checked (no post to a connected user)".into());
    }
    (result, problems)
}
