//! The load harness (issue 13): `cargo bench --bench load [-- options]`.
//!
//! It starts the `simple-chat` binary cargo built for this bench on fresh databases (SQLite
//! files by default; `--postgres` starts a throwaway PostgreSQL as the test suite does),
//! bulk-loads realistic data sets, drives the server from this one tokio process, prints
//! tables and writes the same results as JSON (`--out`). Scenarios (`--scenario`, default
//! all):
//!
//! - `a`, endpoints ([`endpoints`]): each endpoint of the contract alone at fixed concurrency,
//!   requests/s, p50/p99, errors, and the ratio to `/healthz` in the same run;
//! - `b`, simulated users ([`users`]: the steps and their verdict; [`simulated`]: one user;
//!   [`tracking`]: what they share and what is measured): users with sockets acting at
//!   random, added in steps until the server is no longer healthy;
//! - `scale` ([`scale`]): the same reads on 10 thousand and 10 million messages;
//! - `footprint` ([`footprint`]): memory idle and per WebSocket, binary size, cold start.
//!
//! `--target-url` runs scenario A against a server already running, e.g. the original Django
//! app ([`original`]). `--smoke` shrinks everything to a few seconds for CI and fails only on
//! correctness problems (a failed request, a message never delivered), never on timing.
//!
//! The rest: [`data`] makes and loads the data sets, [`server`] runs databases and servers,
//! [`http`] and [`client`] are the load generator's HTTP and WebSocket side, [`stats`]
//! records latencies and [`report`] prints and writes the results.

mod client;
mod data;
mod endpoints;
mod footprint;
mod http;
#[path = "../made_up.rs"]
mod made_up;
mod original;
#[allow(dead_code)]
#[path = "../../tests/api/postgres.rs"]
mod postgres;
mod report;
mod scale;
mod server;
mod simulated;
mod stats;
mod tracking;
mod users;

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    sync::Arc,
    time::Duration,
};

use clap::{Parser, ValueEnum};
use simple_chat::auth::{jwt::generate_secret, password};

use crate::{
    client::mint_tokens,
    data::{PASSWORD, Plan},
    http::Http,
    report::Results,
    server::{Backend, Server},
};

const DEFAULT_OUT: &str = "target/load/results.json";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Scenario {
    A,
    B,
    Scale,
    Footprint,
    All,
}

/// The load harness of Simple Chat (see bench/load/main.rs).
#[derive(Debug, Parser)]
#[command(name = "load")]
struct Options {
    /// Which scenario to run.
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Run on a throwaway PostgreSQL instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Tiny sizes and a few seconds per part, for CI; fails only on correctness problems.
    #[arg(long)]
    smoke: bool,
    /// Where the JSON results go.
    #[arg(long, default_value = DEFAULT_OUT)]
    out: PathBuf,
    /// Users in the data set of scenarios A and B (and of the scale data sets).
    #[arg(long, default_value_t = 20_000)]
    users: u64,
    /// Threads each user starts (each takes part in about twice as many).
    #[arg(long, default_value_t = 5)]
    partners: u64,
    /// Messages in the data set of scenarios A and B.
    #[arg(long, default_value_t = 500_000)]
    messages: u64,
    /// Scenario A: seconds per endpoint.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Scenario A: requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Scenario A: only these endpoints (comma-separated names as printed; healthz always).
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
    /// Scenario B: the most simulated users.
    #[arg(long, default_value_t = 15_000)]
    max_users: u64,
    /// Scenario B: users added per step.
    #[arg(long, default_value_t = 1_000)]
    step: u64,
    /// Scenario B: seconds per step (users are started evenly over it).
    #[arg(long, default_value_t = 30.0)]
    step_seconds: f64,
    /// Scenario B: mean think time between a user's actions, in seconds.
    #[arg(long, default_value_t = 20.0)]
    think_seconds: f64,
    /// Scenario B: HTTP connections the simulated users share.
    #[arg(long, default_value_t = 1_000)]
    http_connections: usize,
    /// Scale: messages in the small data set.
    #[arg(long, default_value_t = 10_000)]
    small_messages: u64,
    /// Scale: messages in the big data set.
    #[arg(long, default_value_t = 10_000_000)]
    big_messages: u64,
    /// Scale: requests in flight.
    #[arg(long, default_value_t = 8)]
    scale_concurrency: usize,
    /// Scale: seconds per endpoint and data set.
    #[arg(long, default_value_t = 10.0)]
    scale_seconds: f64,
    /// Footprint: idle WebSockets opened.
    #[arg(long, default_value_t = 10_000)]
    sockets: usize,
    /// Run scenario A against this already running server instead (e.g. the original).
    #[arg(long, requires_all = ["username", "password", "other_user"])]
    target_url: Option<String>,
    /// With --target-url: the user that makes every request.
    #[arg(long)]
    username: Option<String>,
    /// With --target-url: that user's password.
    #[arg(long)]
    password: Option<String>,
    /// The user the --username user talks to.
    #[arg(long)]
    other_user: Option<String>,
    /// Threads of the load generator (1: all on one core, like `wrk -t1`, which leaves the
    /// server the most room on a 2-core machine).
    #[arg(long, default_value_t = 1)]
    generator_threads: usize,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

impl Options {
    fn shrink_for_smoke(&mut self) {
        self.users = 200;
        self.partners = 3;
        self.messages = 5_000;
        self.duration = 1.0;
        self.concurrency = 4;
        self.max_users = 20;
        self.step = 10;
        self.step_seconds = 5.0;
        self.think_seconds = 1.0;
        self.http_connections = 16;
        self.small_messages = 1_000;
        self.big_messages = 20_000;
        self.scale_concurrency = 4;
        self.scale_seconds = 1.0;
        self.sockets = 100;
        // A smoke run does not replace the results of a real one.
        if self.out == Path::new(DEFAULT_OUT) {
            self.out = PathBuf::from("target/load/smoke.json");
        }
    }

    fn runs(&self, scenario: Scenario) -> bool {
        self.scenario == Scenario::All || self.scenario == scenario
    }
}

fn main() -> ExitCode {
    let mut options = Options::parse();
    if options.smoke {
        options.shrink_for_smoke();
    }
    let runtime = if options.generator_threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(options.generator_threads)
            .enable_all()
            .build()
    };
    runtime.expect("a tokio runtime").block_on(run(options))
}

async fn run(options: Options) -> ExitCode {
    let files = server::raise_open_file_limit();
    let mut results = Results {
        machine: report::machine(),
        binary: server::binary().display().to_string(),
        concurrency: options.concurrency,
        duration_seconds: options.duration,
        ..Results::default()
    };
    if let Some(url) = &options.target_url {
        let account = original::Account {
            url: url.clone(),
            username: options.username.clone().unwrap_or_default(),
            password: options.password.clone().unwrap_or_default(),
            other: options.other_user.clone().unwrap_or_default(),
        };
        results.backend = "remote".into();
        results.binary = "(the target's)".into();
        results.data_set = "one user's thread with the other user; 20 messages posted first".into();
        results.target_url = Some(url.clone());
        let duration = Duration::from_secs_f64(options.duration);
        match original::run(&account, options.concurrency, duration).await {
            Ok(rows) => results.endpoints = rows,
            Err(problem) => results.problems.push(format!("target: {problem}")),
        }
        return finish(&options, results);
    }

    let logs = options.out.parent().unwrap_or(Path::new(".")).join("logs");
    let backend = Backend::start(options.postgres, logs);
    results.backend = backend.name().to_owned();
    eprintln!("open-file limit {files}; hashing the shared password once (argon2id)");
    let hash =
        tokio::task::spawn_blocking(|| password::hash(PASSWORD, &mut password::Scratch::default()))
            .await
            .expect("hash the password");
    let secret = generate_secret();
    let tokens = mint_tokens(&secret, options.users);

    if options.runs(Scenario::A) || options.runs(Scenario::B) {
        results.data_set = format!(
            "{} users, about {} threads each, {} messages",
            options.users,
            options.partners * 2,
            options.messages
        );
        let plan = Plan {
            users: options.users,
            partners: options.partners,
            messages: options.messages,
            probe: None,
            keep_messages: true,
        };
        eprintln!("building the data set of scenarios A and B");
        let (url, set, _) = scale::build(&backend, "main", &plan, &hash).await;
        let set = Arc::new(set);
        if options.runs(Scenario::A) {
            eprintln!("scenario A: endpoints");
            let server = Server::start(&url, &secret, backend.log_path("scenario-a"));
            let target = Arc::new(endpoints::Target {
                http: Http::new(&server.base),
                ws_base: server.ws_base.clone(),
                data: set.clone(),
                tokens: tokens.clone(),
                pick_users: options.users,
                server_stat: format!("/proc/{}/stat", server.pid()),
            });
            let duration = Duration::from_secs_f64(options.duration);
            results.endpoints =
                endpoints::run(target, &options.endpoints, options.concurrency, duration).await;
            for row in &results.endpoints {
                if row.errors > 0 {
                    results.problems.push(format!(
                        "{}: {} errors, e.g. {:?}",
                        row.endpoint, row.errors, row.error_samples
                    ));
                }
            }
        }
        if options.runs(Scenario::B) {
            eprintln!("scenario B: simulated users");
            let server = Server::start(&url, &secret, backend.log_path("scenario-b"));
            let users_options = users::Options {
                max_users: options.max_users,
                step: options.step,
                step_seconds: options.step_seconds,
                think_mean: options.think_seconds,
                http_connections: options.http_connections,
            };
            let http = Http::new(&server.base);
            let (result, problems) = users::run(
                http,
                server.ws_base.clone(),
                set.clone(),
                tokens.clone(),
                &server,
                &users_options,
            )
            .await;
            results.users = Some(result);
            results.problems.extend(problems);
        }
    }

    let scale_options = scale::Options {
        users: options.users,
        partners: options.partners,
        small_messages: options.small_messages,
        big_messages: options.big_messages.max(options.small_messages),
        concurrency: options.scale_concurrency,
        seconds: options.scale_seconds,
    };
    let mut small_url = None;
    if options.runs(Scenario::Scale) {
        let (result, problems, url) =
            scale::run(&backend, &hash, &secret, &tokens, &scale_options).await;
        results.scale = Some(result);
        results.problems.extend(problems);
        small_url = Some(url);
    }
    if options.runs(Scenario::Footprint) {
        eprintln!("footprint");
        let url = match small_url {
            Some(url) => url,
            None => {
                let plan = scale::plan(&scale_options, scale_options.small_messages);
                scale::build(&backend, "scale_small", &plan, &hash).await.0
            }
        };
        let (rows, problems) =
            footprint::run(&backend, &url, &secret, &tokens, options.sockets).await;
        results.footprint = rows;
        results.problems.extend(problems);
    }
    finish(&options, results)
}

/// Prints and writes the results. A smoke run fails when something that should have worked
/// did not; a full run reports it (errors past the healthy load are results, not failures).
fn finish(options: &Options, results: Results) -> ExitCode {
    results.print();
    results.write(&options.out);
    if options.smoke && !results.problems.is_empty() {
        eprintln!(
            "{} correctness problem(s); see above",
            results.problems.len()
        );
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
