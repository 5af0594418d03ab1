//! The same suite on PostgreSQL. `the_whole_suite_on_postgres` starts a throwaway PostgreSQL
//! server (the binaries on PATH or under /usr/lib/postgresql, a temporary data directory, a
//! free port, run as `nobody` when we are root since PostgreSQL refuses root), then runs this
//! very test binary again with `SIMPLE_CHAT_TEST_BACKEND=postgres`, so every test runs against
//! PostgreSQL too, each on a fresh database. Without the binaries it says SKIPPED and passes,
//! unless `SIMPLE_CHAT_REQUIRE_POSTGRES=1` (CI) makes that a failure.

use std::{
    net::TcpListener,
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use tempfile::TempDir;

const BACKEND_VAR: &str = "SIMPLE_CHAT_TEST_BACKEND";
const SERVER_VAR: &str = "SIMPLE_CHAT_TEST_POSTGRES";
const REQUIRE_VAR: &str = "SIMPLE_CHAT_REQUIRE_POSTGRES";
const NOBODY: u32 = 65534;

/// Whether this process runs the suite against PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(BACKEND_VAR).as_deref() == Ok("postgres")
}

/// A new, empty database on the suite's PostgreSQL server; its URL.
pub fn fresh_database() -> String {
    let server = std::env::var(SERVER_VAR).expect("the PostgreSQL server's URL");
    create_database(&server)
}

/// A new, empty database on the server at `server` (`postgres://postgres@host:port`).
fn create_database(server: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let name = format!(
        "t{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    );
    let admin_url = format!("{server}/postgres");
    let statement = format!("CREATE DATABASE {name}");
    // Its own thread and runtime, so this works from sync and async tests alike.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&admin_url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test PostgreSQL server");
            tokio::spawn(connection);
            client
                .batch_execute(&statement)
                .await
                .expect("create a test database");
        });
    })
    .join()
    .expect("create a test database");
    format!("{server}/{name}")
}

/// A PostgreSQL server in a temporary directory, stopped and removed on drop.
pub struct Server {
    child: Option<Child>,
    postgres: PathBuf,
    root: bool,
    port: u16,
    dir: TempDir,
}

fn find_binary(name: &str) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    let packaged = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin").join(name));
    on_path.chain(packaged).find(|path| path.is_file())
}

fn as_postgres_user(command: &mut Command, root: bool) -> &mut Command {
    if root {
        command.uid(NOBODY).gid(NOBODY);
    }
    command
}

impl Server {
    /// Starts a server, or says why it cannot.
    pub fn start() -> Result<Server, String> {
        let initdb = find_binary("initdb").ok_or("initdb not found")?;
        let postgres = find_binary("postgres").ok_or("postgres not found")?;
        let root = std::fs::metadata("/proc/self")
            .map_err(|e| e.to_string())?
            .uid()
            == 0;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        if root {
            std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY))
                .map_err(|e| format!("chown the data directory: {e}"))?;
        }
        let data = dir.path().join("data");
        let init = as_postgres_user(&mut Command::new(&initdb), root)
            .args([
                "-D",
                &data.to_string_lossy(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
            ])
            .arg("--no-sync")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run initdb: {e}"))?;
        if !init.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&init.stderr)
            ));
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut server = Server {
            child: None,
            postgres,
            root,
            port,
            dir,
        };
        server.run()?;
        Ok(server)
    }

    /// Starts the postmaster on the existing data directory and waits until it answers.
    fn run(&mut self) -> Result<(), String> {
        let data = self.dir.path().join("data");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("postgres.log"))
            .map_err(|e| e.to_string())?;
        let child = as_postgres_user(&mut Command::new(&self.postgres), self.root)
            .args(["-D", &data.to_string_lossy(), "-p", &self.port.to_string()])
            .args(["-k", &self.dir.path().to_string_lossy()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            .args([
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("start postgres: {e}"))?;
        self.child = Some(child);
        self.wait_ready()
    }

    /// Stops the postmaster (fast shutdown: sessions are cut).
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SIGINT: "fast shutdown", which also ends the server's own children.
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn wait_ready(&self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            let ready =
                Command::new(find_binary("pg_isready").unwrap_or_else(|| "pg_isready".into()))
                    .args([
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &self.port.to_string(),
                        "-U",
                        "postgres",
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success());
            if ready {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "postgres did not become ready: {}",
            std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
        ))
    }

    /// `postgres://postgres@127.0.0.1:PORT` (a database name is appended per test).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A server for a test of the parent run, or `None` (and why) when PostgreSQL is missing.
fn server_for_test() -> Option<Server> {
    match Server::start() {
        Ok(server) => Some(server),
        Err(reason) => {
            assert!(
                std::env::var(REQUIRE_VAR).as_deref() != Ok("1"),
                "PostgreSQL is required ({REQUIRE_VAR}=1) but cannot start: {reason}"
            );
            eprintln!("SKIPPED: PostgreSQL test ({reason}); install PostgreSQL to run it");
            None
        }
    }
}

/// Runs every other test of this binary again, against PostgreSQL.
#[test]
fn the_whole_suite_on_postgres() {
    if on_postgres() {
        return; // we are the re-run
    }
    let Some(server) = server_for_test() else {
        return;
    };
    let this_binary = std::env::current_exe().expect("the test binary's path");
    let output = Command::new(this_binary)
        .args([
            "--skip",
            "the_whole_suite_on_postgres",
            "--test-threads",
            "2",
        ])
        .env(BACKEND_VAR, "postgres")
        .env(SERVER_VAR, server.url())
        .stdin(Stdio::null())
        .output()
        .expect("run the suite against PostgreSQL");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|line| {
            line.starts_with("test result") || line.contains("FAILED") || line.contains("panicked")
        })
        .collect();
    println!("PostgreSQL run:\n{}", summary.join("\n"));
    assert!(
        output.status.success(),
        "the suite failed on PostgreSQL:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// PostgreSQL restarted under a running server: requests fail cleanly with 503 (in bounded
/// time, no hang) while it is down, and the server recovers by itself once it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_answers_503_then_recovers_by_itself() {
    if on_postgres() {
        return; // the parent run does this once, on a server of its own
    }
    let Some(mut server) = server_for_test() else {
        return;
    };
    let url = create_database(&server.url());
    let app = crate::helpers::serve_database(simple_chat::Config::new(url), None).await;
    let (alice, token) = app.login_new_user("alice").await;
    app.create_user("bob", crate::helpers::PASSWORD).await;
    // A request that reads the database (the signed-in user alone is answered from memory).
    let unread = format!("/user/{alice}/message/");
    assert_eq!(app.get(&unread, Some(&token)).await.status(), 200);

    tokio::task::block_in_place(|| server.stop());
    let started = Instant::now();
    let during = app.get(&unread, Some(&token)).await;
    let (status, body) = crate::helpers::parts(during).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["detail"].is_string());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "answered in {:?}",
        started.elapsed()
    );
    let (status, body) = crate::helpers::parts(app.get("/readyz", None).await).await;
    assert_eq!(
        (status, &body["status"]),
        (503, &serde_json::json!("unavailable"))
    );
    assert_eq!(
        app.get("/healthz", None).await.status(),
        200,
        "liveness is not readiness"
    );

    tokio::task::block_in_place(|| server.run()).expect("restart PostgreSQL");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = app.get(&unread, Some(&token)).await.status();
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "not recovered: still {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let posted = app
        .post_json(
            "/chat/thread/",
            Some(&token),
            &serde_json::json!({"user1": "alice", "user2": "bob"}),
        )
        .await;
    assert_eq!(posted.status(), 201, "writes work again too");
    assert_eq!(app.get("/readyz", None).await.status(), 200);
}

/// A request that finds every pooled connection busy waits at most the configured time, then
/// answers 503; once a connection is free again, requests succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_answers_503_within_its_wait() {
    if !on_postgres() {
        return; // needs the suite's server: runs in the PostgreSQL re-run
    }
    let url = fresh_database();
    let mut config = simple_chat::Config::new(url.clone());
    config.database.pool_size = Some(1);
    config.database.pool_wait = Duration::from_millis(500);
    let app = crate::helpers::serve_database(config, None).await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    // Another session locks alice's row, so her next login blocks while holding the only
    // pooled connection.
    let (mut locker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    let lock = locker.transaction().await.unwrap();
    lock.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&alice_id])
        .await
        .unwrap();
    let login = {
        let request = app
            .client
            .post(format!("{}/api/token/", app.address))
            .json(&serde_json::json!({"username": "alice", "password": crate::helpers::PASSWORD}));
        tokio::spawn(async move { request.send().await.expect("login").status().as_u16() })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;

    let started = Instant::now();
    let (status, body) = crate::helpers::parts(app.get("/api/me/", Some(&alice)).await).await;

    assert_eq!(status, 503, "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    lock.rollback().await.unwrap();
    assert_eq!(
        login.await.unwrap(),
        200,
        "the blocked login finishes once the lock is gone"
    );
    assert_eq!(app.get("/api/me/", Some(&alice)).await.status(), 200);
}
