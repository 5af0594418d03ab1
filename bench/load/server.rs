//! The system under test: the databases ([`Backend`]: SQLite files in a temporary directory,
//! or fresh databases on a throwaway PostgreSQL started like the test suite's) and
//! `simple-chat serve` processes ([`Server`]: the binary as shipped, see [`binary`], on
//! 127.0.0.1 and a free port, logging to `logs/` beside the results), with what the
//! footprint reads from `/proc`.
//!
//! Every server gets the harness's signing key (so it can mint tokens), posting,
//! thread-creation and per-address login limits out of the way (the harness measures the
//! server, not its limiters, whose checks still run; all its requests come from 127.0.0.1),
//! and `--max-connections` just under the open-file limit.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use tempfile::TempDir;

/// The release binary `cargo bench` built (the debug one with `--profile dev`).
const BUILT: &str = env!("CARGO_BIN_EXE_simple-chat");

/// The binary as shipped: [`BUILT`] split by `scripts/dist.sh` into a binary without symbols
/// or debug info and its debug file, once per run. Every scenario runs it. When the split
/// fails (no `objcopy`), the built binary is run instead, with a warning.
pub fn binary() -> &'static Path {
    static SHIPPED: OnceLock<PathBuf> = OnceLock::new();
    SHIPPED.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("load-dist");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dist.sh");
        let split = Command::new("bash")
            .arg(&script)
            .arg(BUILT)
            .arg(&out)
            .stdout(Stdio::null())
            .status();
        match split {
            Ok(status) if status.success() => out.join("simple-chat"),
            _ => {
                eprintln!("warning: scripts/dist.sh failed; running the binary as built");
                PathBuf::from(BUILT)
            }
        }
    })
}

/// Where the databases live, and where the servers' logs go.
pub struct Backend {
    dir: TempDir,
    logs: PathBuf,
    postgres: Option<crate::postgres::Server>,
}

impl Backend {
    pub fn start(postgres: bool, logs: PathBuf) -> Backend {
        std::fs::create_dir_all(&logs).expect("create the log directory");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let postgres = postgres.then(|| {
            eprintln!("starting a throwaway PostgreSQL");
            crate::postgres::Server::start()
                .unwrap_or_else(|reason| panic!("cannot start PostgreSQL: {reason}"))
        });
        Backend {
            dir,
            logs,
            postgres,
        }
    }

    pub fn name(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgresql"
        } else {
            "sqlite"
        }
    }

    /// The URL of a new, empty database called `name`.
    pub async fn fresh_database(&self, name: &str) -> String {
        let Some(postgres) = &self.postgres else {
            return format!(
                "sqlite://{}",
                self.dir.path().join(format!("{name}.sqlite3")).display()
            );
        };
        let server = postgres.url();
        let (client, connection) =
            tokio_postgres::connect(&format!("{server}/postgres"), tokio_postgres::NoTls)
                .await
                .expect("connect to PostgreSQL");
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create a database");
        drop(client);
        let _ = connection.await;
        format!("{server}/{name}")
    }

    /// A server's log file (kept after the run).
    pub fn log_path(&self, name: &str) -> PathBuf {
        self.logs.join(format!("{name}.log"))
    }
}

/// The soft open-file limit of this process (servers inherit it).
pub fn open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur
}

/// Raises the soft open-file limit to the hard one; returns the new soft limit.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct they are given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    open_file_limit()
}

/// A running `simple-chat serve`, killed on drop.
pub struct Server {
    child: Child,
    pub base: String,
    pub ws_base: String,
    log: PathBuf,
}

impl Server {
    /// Starts a server on `database_url` and waits until `/healthz` answers.
    pub fn start(database_url: &str, secret: &str, log: PathBuf) -> Server {
        Server::start_with(database_url, secret, log, &[])
    }

    /// [`start`](Self::start) with more of the server's environment.
    pub fn start_with(
        database_url: &str,
        secret: &str,
        log: PathBuf,
        env: &[(&str, &str)],
    ) -> Server {
        let (child, port) = spawn_with(database_url, secret, &log, env);
        let server = Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            ws_base: format!("ws://127.0.0.1:{port}"),
            log,
        };
        if wait_healthy(port, Duration::from_secs(120)).is_none() {
            panic!("the server did not start; see {}", server.log.display());
        }
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid())
    }

    /// CPU time the server has used so far, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        cpu_seconds(&format!("/proc/{}/stat", self.pid()))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Spawns `simple-chat serve` on a free port; does not wait for it.
pub fn spawn(database_url: &str, secret: &str, log: &PathBuf) -> (Child, u16) {
    spawn_with(database_url, secret, log, &[])
}

/// [`spawn`] with more of the server's environment.
fn spawn_with(
    database_url: &str,
    secret: &str,
    log: &PathBuf,
    env: &[(&str, &str)],
) -> (Child, u16) {
    let port = free_port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(log)
        .expect("open the server log");
    let max_connections = open_file_limit().saturating_sub(200).max(100);
    let child = Command::new(binary())
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", database_url)
        .env("SIMPLE_CHAT_SECRET_KEY", secret)
        .env("RUST_LOG", "warn")
        .env("SIMPLE_CHAT_POST_RATE", "1000000000")
        .env("SIMPLE_CHAT_THREAD_RATE", "1000000000")
        // Logins in flight count against the per-address limit (50), and every request
        // here comes from 127.0.0.1.
        .env("SIMPLE_CHAT_LOGIN_FAILURES_PER_ADDRESS", "1000000")
        .env("SIMPLE_CHAT_MAX_CONNECTIONS", max_connections.to_string())
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("the log file"))
        .stderr(log)
        .spawn()
        .expect("start simple-chat serve");
    (child, port)
}

/// Whether `GET /healthz` on a new connection answers 200.
fn healthz(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

/// Polls `/healthz` until it answers 200; the time that took, or `None` after `limit`.
pub fn wait_healthy(port: u16, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if healthz(port) {
            return Some(started.elapsed());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    None
}

pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a `/proc/<pid>/stat` file, in seconds.
pub fn cpu_seconds(stat: &str) -> f64 {
    let text = std::fs::read_to_string(stat).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = text
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<f64>().ok()))
        .sum();
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks / per_second
}
