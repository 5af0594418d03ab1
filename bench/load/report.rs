//! The results: one struct per table row, printed as readable tables on stdout and written
//! whole as JSON (`--out`, default `target/load/results.json`), with the machine and the
//! options they were measured with.

use std::{path::Path, time::Duration};

use serde::Serialize;

use crate::stats::{Tally, ms};

#[derive(Debug, Serialize)]
pub struct EndpointRow {
    pub endpoint: String,
    pub requests: u64,
    pub requests_per_second: f64,
    pub vs_healthz: Option<f64>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    /// The server's CPU time (user + system, all threads) per answered request, in µs. On
    /// one machine the server and the load generator share the cores, so the rate moves with
    /// how the scheduler splits them; this does not.
    pub server_cpu_us_per_request: Option<f64>,
}

impl EndpointRow {
    pub fn new(name: &str, tally: &Tally, duration: Duration) -> EndpointRow {
        EndpointRow {
            endpoint: name.to_owned(),
            requests: tally.latency.count(),
            requests_per_second: tally.latency.count() as f64 / duration.as_secs_f64(),
            vs_healthz: None,
            p50_ms: ms(tally.latency.percentile(0.5)),
            p99_ms: ms(tally.latency.percentile(0.99)),
            errors: tally.errors,
            error_samples: tally.samples.clone(),
            server_cpu_us_per_request: None,
        }
    }

    /// Records the server's CPU seconds over the measured requests.
    pub fn with_server_cpu(mut self, seconds: f64) -> EndpointRow {
        if self.requests > 0 {
            self.server_cpu_us_per_request = Some(seconds * 1e6 / self.requests as f64);
        }
        self
    }

    /// Fills `vs_healthz` when `/healthz` was measured and answered.
    pub fn relate_to_healthz(rows: &mut [EndpointRow]) {
        let base = rows
            .iter()
            .find(|r| r.endpoint == "healthz" && r.errors == 0)
            .map(|r| r.requests_per_second);
        if let Some(base) = base.filter(|b| *b > 0.0) {
            for row in rows {
                row.vs_healthz = Some(row.requests_per_second / base);
            }
        }
    }

    pub fn line(&self, width: Option<usize>) -> String {
        let ratio = self
            .vs_healthz
            .map_or("-".to_owned(), |r| format!("{r:.2}"));
        let cpu = self
            .server_cpu_us_per_request
            .map_or("-".to_owned(), |us| format!("{us:.0}"));
        format!(
            "{:<w$} {:>10.0} {:>10} {:>9.2} {:>9.2} {:>8} {:>10}",
            self.endpoint,
            self.requests_per_second,
            ratio,
            self.p50_ms,
            self.p99_ms,
            self.errors,
            cpu,
            w = width.unwrap_or(22)
        )
    }
}

#[derive(Debug, Default, Serialize)]
pub struct StepRow {
    pub users: u64,
    pub connected: u64,
    pub requests: u64,
    pub mean_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub error_percent: f64,
    pub posts_tracked: u64,
    pub delivered_in_time: u64,
    pub late_or_missing: u64,
    pub delivery_p99_ms: f64,
    pub server_cpu_percent: f64,
    pub harness_cpu_percent: f64,
    pub server_rss_mib: f64,
    pub healthy: bool,
    /// p99 by kind of request, in ms.
    pub p99_ms_by_kind: std::collections::BTreeMap<String, f64>,
    pub error_samples: Vec<String>,
}

impl StepRow {
    /// The kind of request with the highest p99, and that p99.
    pub fn slowest(&self) -> String {
        self.p99_ms_by_kind
            .iter()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(String::new(), |(kind, p99)| format!("{kind} {p99:.0} ms"))
    }

    /// A progress line.
    pub fn line(&self) -> String {
        format!(
            "{} users: {} requests, mean {:.1} ms, p99 {:.1} ms, {} errors, {}/{} delivered \
             in time, server CPU {:.0}%, generator CPU {:.0}%: {}",
            self.users,
            self.requests,
            self.mean_ms,
            self.p99_ms,
            self.errors,
            self.delivered_in_time,
            self.posts_tracked,
            self.server_cpu_percent,
            self.harness_cpu_percent,
            if self.healthy {
                "healthy"
            } else {
                "NOT healthy"
            }
        )
    }
}

#[derive(Debug, Default, Serialize)]
pub struct UsersResult {
    pub steps: Vec<StepRow>,
    pub largest_healthy: u64,
    pub think_mean_seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct ScaleRow {
    pub endpoint: String,
    pub small_p50_ms: f64,
    pub small_p99_ms: f64,
    pub big_p50_ms: f64,
    pub big_p99_ms: f64,
    pub ratio_p50: f64,
    pub ratio_p99: f64,
    pub errors: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct ScaleResult {
    pub small_messages: u64,
    pub big_messages: u64,
    pub big_load_seconds: f64,
    pub rows: Vec<ScaleRow>,
}

#[derive(Debug, Serialize)]
pub struct FootprintRow {
    pub what: String,
    pub value: f64,
    pub unit: String,
    pub target: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Results {
    pub machine: String,
    pub backend: String,
    pub binary: String,
    pub target_url: Option<String>,
    pub data_set: String,
    pub concurrency: usize,
    pub duration_seconds: f64,
    pub endpoints: Vec<EndpointRow>,
    pub users: Option<UsersResult>,
    pub scale: Option<ScaleResult>,
    pub footprint: Vec<FootprintRow>,
    /// Correctness problems (non-2xx where success was expected, undelivered messages).
    pub problems: Vec<String>,
}

/// CPU model and count, memory, kernel: enough to compare runs.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} cores ({cpu}), {memory} memory, Linux {}",
        kernel.trim()
    )
}

impl Results {
    pub fn print(&self) {
        println!();
        println!(
            "Simple Chat load harness — {} — {}",
            self.backend, self.machine
        );
        println!("binary: {}", self.binary);
        if !self.data_set.is_empty() {
            println!("data set of scenarios A and B: {}", self.data_set);
        }
        if !self.endpoints.is_empty() {
            println!();
            println!(
                "Scenario A: endpoints ({} concurrent, {} s each{})",
                self.concurrency,
                self.duration_seconds,
                self.target_url
                    .as_ref()
                    .map_or(String::new(), |u| format!(", against {u}"))
            );
            println!(
                "{:<22} {:>10} {:>10} {:>9} {:>9} {:>8} {:>10}",
                "endpoint", "req/s", "vs healthz", "p50 ms", "p99 ms", "errors", "server µs"
            );
            for row in &self.endpoints {
                println!("{}", row.line(None));
            }
            println!("(server µs: the server's CPU time per request, all its threads)");
        }
        if let Some(users) = &self.users {
            println!();
            println!(
                "Scenario B: simulated users (think time mean {} s)",
                users.think_mean_seconds
            );
            println!(
                "{:>7} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>8} {:>9} {:>7} {:>7} {:>8} healthy  slowest p99",
                "users",
                "requests",
                "mean ms",
                "p99 ms",
                "errors",
                "posts",
                "delivered",
                "late",
                "deliv p99",
                "srv cpu",
                "gen cpu",
                "srv MiB"
            );
            for s in &users.steps {
                println!(
                    "{:>7} {:>8} {:>8.1} {:>8.1} {:>8} {:>7} {:>9} {:>8} {:>9.1} {:>6.0}% {:>6.0}% {:>8.0} {:<8} {}",
                    s.users,
                    s.requests,
                    s.mean_ms,
                    s.p99_ms,
                    s.errors,
                    s.posts_tracked,
                    s.delivered_in_time,
                    s.late_or_missing,
                    s.delivery_p99_ms,
                    s.server_cpu_percent,
                    s.harness_cpu_percent,
                    s.server_rss_mib,
                    if s.healthy { "yes" } else { "NO" },
                    s.slowest()
                );
            }
            println!(
                "largest healthy count: {} simulated users",
                users.largest_healthy
            );
        }
        if let Some(scale) = &self.scale {
            println!();
            println!(
                "Scale: {} vs {} messages (big/small, target <= 1.5)",
                scale.big_messages, scale.small_messages
            );
            println!(
                "{:<14} {:>9} {:>9} {:>9} {:>9} {:>8} {:>8} {:>7}",
                "endpoint",
                "small p50",
                "small p99",
                "big p50",
                "big p99",
                "x p50",
                "x p99",
                "errors"
            );
            for r in &scale.rows {
                println!(
                    "{:<14} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>8.2} {:>8.2} {:>7}",
                    r.endpoint,
                    r.small_p50_ms,
                    r.small_p99_ms,
                    r.big_p50_ms,
                    r.big_p99_ms,
                    r.ratio_p50,
                    r.ratio_p99,
                    r.errors
                );
            }
        }
        if !self.footprint.is_empty() {
            println!();
            println!("Footprint");
            for f in &self.footprint {
                println!(
                    "{:<44} {:>10.1} {:<6} (target {})",
                    f.what, f.value, f.unit, f.target
                );
            }
        }
        if !self.problems.is_empty() {
            println!();
            println!("Problems:");
            for problem in &self.problems {
                println!("  - {problem}");
            }
        }
    }

    pub fn write(&self, path: &Path) {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).expect("create the results directory");
        }
        let text = serde_json::to_string_pretty(self).expect("results as JSON");
        std::fs::write(path, text).expect("write the results");
        println!();
        println!("results written to {}", path.display());
    }
}
