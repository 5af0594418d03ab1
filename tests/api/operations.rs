//! Operating it: Prometheus metrics on their own listener, `backup` of a live database,
//! `--version`, and a database migrated by a newer binary.

use std::{
    collections::HashMap,
    process::{Command, Output, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use serde_json::json;
use simple_chat::Config;
use tokio::net::TcpListener;

use crate::helpers::{TestApp, database_url, id, parts, serve_database, spawn_app_with};

/// One sample of the Prometheus text format: name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// Parses the Prometheus text exposition format (comments, `name{label="value",...} value`).
fn parse(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = HashMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("a number in {line:?}"));
        let (name, labels) = match series.split_once('{') {
            None => (series.to_owned(), HashMap::new()),
            Some((name, rest)) => {
                let body = rest.strip_suffix('}').expect("labels end with }");
                let labels = body
                    .split("\",")
                    .filter(|pair| !pair.is_empty())
                    .map(|pair| {
                        let (key, value) = pair.split_once("=\"").expect("label=\"value\"");
                        (key.to_owned(), value.trim_end_matches('"').to_owned())
                    })
                    .collect();
                (name.to_owned(), labels)
            }
        };
        samples.push(Sample {
            name,
            labels,
            value,
        });
    }
    (samples, types)
}

fn find<'s>(samples: &'s [Sample], name: &str, labels: &[(&str, &str)]) -> Option<&'s Sample> {
    samples.iter().find(|s| {
        s.name == name
            && labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
    })
}

async fn serve_metrics(app: &TestApp) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let served = app.app().clone();
    tokio::spawn(async move { served.serve_metrics(listener).await });
    address
}

async fn scrape(address: &str) -> (Vec<Sample>, HashMap<String, String>) {
    let response = reqwest::get(format!("{address}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse(&response.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_show_what_is_open_now() {
    let app = spawn_app_with(|config| config.login_failures_allowed = 2).await;
    let metrics = serve_metrics(&app).await;
    let chat = app.conversation().await;
    app.post_messages(&chat.alice, chat.thread_id, &["one", "two"])
        .await;
    let page = format!("/thread/{}/message/", chat.thread_id);
    app.get_ok(&page, &chat.bob).await;
    let (status, _) = parts(app.get("/chat/thread/987654/", Some(&chat.bob)).await).await;
    assert_eq!(status, 404);
    for _ in 0..3 {
        let wrong = json!({"username": "alice", "password": "not-her-password"});
        app.post_json("/api/token/", None, &wrong).await;
    }
    let (mut socket, _) = crate::realtime::connect(&app, &chat.bob, None).await;

    let (samples, types) = scrape(&metrics).await;
    let requests = "simple_chat_http_requests_total";
    assert_eq!(types[requests], "counter");
    let pages = find(
        &samples,
        requests,
        &[
            ("method", "GET"),
            ("route", "/thread/{id}/message"),
            ("status", "200"),
        ],
    )
    .expect("the message page is counted under its route template");
    assert!(pages.value >= 1.0);
    assert!(
        find(
            &samples,
            requests,
            &[("route", "/chat/thread/{id}"), ("status", "404")]
        )
        .is_some(),
        "a 404 of a known route is counted with its status"
    );
    for sample in samples.iter().filter(|s| s.name == requests) {
        let route = &sample.labels["route"];
        assert!(
            !route.split('/').any(|part| part.parse::<u64>().is_ok()),
            "a raw path with an id became a label: {route}"
        );
    }
    let latency = "simple_chat_http_request_duration_seconds";
    assert_eq!(types[latency], "histogram");
    let buckets = samples
        .iter()
        .filter(|s| s.name == format!("{latency}_bucket"))
        .filter(|s| s.labels.get("route").map(String::as_str) == Some("/thread/{id}/message"))
        .count();
    assert!(
        buckets > 5,
        "latency buckets of the message page: {buckets}"
    );

    let value = |name: &str| find(&samples, name, &[]).map(|s| s.value);
    assert_eq!(value("simple_chat_websockets_open"), Some(1.0));
    assert_eq!(value("simple_chat_users_online"), Some(1.0));
    assert!(value("simple_chat_events_appended_total").unwrap() >= 4.0);
    assert!(value("simple_chat_login_throttled_total").unwrap() >= 1.0);
    assert_eq!(value("simple_chat_password_checks"), Some(0.0));
    let build = find(&samples, "simple_chat_build_info", &[]).unwrap();
    assert_eq!(build.labels["version"], env!("CARGO_PKG_VERSION"));
    if crate::postgres::on_postgres() {
        assert!(
            find(
                &samples,
                "simple_chat_db_pool_connections",
                &[("state", "idle")]
            )
            .is_some()
        );
        assert!(value("simple_chat_db_pool_wait_seconds_count").unwrap() >= 1.0);
    } else {
        assert_eq!(value("simple_chat_sqlite_write_queue"), Some(0.0));
        assert!(value("simple_chat_sqlite_write_batch_size_count").unwrap() >= 1.0);
    }

    socket.close(None).await.unwrap();
    // Metrics are on their own listener only.
    let (status, _) = parts(app.get("/metrics", None).await).await;
    assert_eq!(status, 404);
}

fn simple_chat(args: &[&str], database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simple-chat"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .output()
        .expect("run simple-chat")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn backup_copies_a_live_database_that_then_serves() {
    // SQLite only (PostgreSQL has pg_dump: see the next test), whatever the suite's backend.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("live.sqlite3").display());
    let mut config = Config::new(url.clone());
    config.post_rate = 1_000_000;
    let live = Arc::new(serve_database(config, None).await);
    let (_, alice) = live.login_new_user("alice").await;
    let (_, bob) = live.login_new_user("bob").await;
    let thread = id(&live.create_thread(&alice, "alice", "bob").await);
    let before: Vec<String> = (0..200).map(|i| format!("before the backup {i}")).collect();
    for batch in before.chunks(100) {
        live.post_messages(&alice, thread, batch).await;
    }

    // Alice keeps posting while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let posted = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (live, stop, posted, alice) =
            (live.clone(), stop.clone(), posted.clone(), alice.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                live.post_messages(&alice, thread, &["during the backup"])
                    .await;
                posted.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while posted.load(Ordering::SeqCst) < 5 {
        tokio::task::yield_now().await;
    }
    let copy = dir.path().join("nightly.sqlite3");
    let output = tokio::task::spawn_blocking({
        let (url, copy) = (url.clone(), copy.clone());
        move || simple_chat(&["backup", copy.to_str().unwrap()], &url)
    })
    .await
    .unwrap();
    let during_backup = posted.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(
        text(&output.stdout).contains("integrity check: ok"),
        "{output:?}"
    );
    // Not on a terminal: plain progress lines, ending at 100%.
    let progress = text(&output.stderr);
    assert!(
        progress
            .lines()
            .any(|l| l.starts_with("backup pages: ") && l.ends_with("(100%)")),
        "{progress}"
    );
    assert!(!dir.path().join("nightly.sqlite3.partial").exists());
    assert!(posted.load(Ordering::SeqCst) > 5, "the server kept serving");

    // The copy passes SQLite's own check, and a server starts on it with everything from
    // before the backup.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let copy_url = format!("sqlite://{}", copy.display());
    let restored = serve_database(Config::new(copy_url), None).await;
    let count = restored.message_count(&bob, thread).await;
    assert!(
        count >= 205 && count <= 200 + during_backup as i64 + 1,
        "{count} messages in the copy"
    );
    restored
        .post_messages(&alice, thread, &["after the restore"])
        .await;
}

#[test]
fn backup_refuses_postgres_and_the_database_itself() {
    let output = simple_chat(
        &["backup", "/tmp/never-written.dump"],
        "postgres://chat:secret@127.0.0.1:1/chat",
    );
    assert!(!output.status.success());
    let message = text(&output.stderr);
    assert!(message.contains("pg_dump"), "{message}");
    assert!(
        !message.contains("secret"),
        "the password is not shown: {message}"
    );
    assert!(!std::path::Path::new("/tmp/never-written.dump").exists());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite3");
    let url = format!("sqlite://{}", path.display());
    assert!(simple_chat(&["migrate"], &url).status.success());
    let output = simple_chat(&["backup", path.to_str().unwrap()], &url);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("another file"), "{output:?}");
    let missing = format!("sqlite://{}", dir.path().join("missing.sqlite3").display());
    let output = simple_chat(&["backup", "copy.sqlite3"], &missing);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("no database"), "{output:?}");
}

#[tokio::test]
async fn version_names_the_release_and_the_schema_that_readyz_reports() {
    let output = simple_chat(&["--version"], "sqlite://unused.sqlite3");
    assert!(output.status.success());
    let version = text(&output.stdout);
    let app = spawn_app_with(|_| {}).await;
    let (status, ready) = parts(app.get("/readyz", None).await).await;
    assert_eq!(status, 200);
    let schema = ready["schema"].as_str().unwrap();
    assert_eq!(
        version.trim(),
        format!(
            "simple-chat {} (schema {schema})",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert_eq!(ready["version"], env!("CARGO_PKG_VERSION"));
}

/// Runs SQL on the database of `url` (SQLite or PostgreSQL) directly.
async fn execute(url: &str, sql: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
    } else {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client.batch_execute(sql).await.unwrap();
    }
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_binary_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let url = database_url(dir.path());
    assert!(simple_chat(&["migrate"], &url).status.success());
    execute(
        &url,
        "INSERT INTO schema_migrations (name, applied) VALUES ('9999_from_the_future', 0)",
    )
    .await;

    for args in [&["migrate"][..], &["serve", "--bind", "127.0.0.1:0"]] {
        let output = simple_chat(args, &url);
        assert!(!output.status.success(), "{args:?} started: {output:?}");
        let message = text(&output.stderr);
        assert!(
            message.contains("migrated by a newer Simple Chat")
                && message.contains("9999_from_the_future"),
            "{message}"
        );
    }
    // Nothing was changed: the newer binary still finds its migration.
    let error = match simple_chat::App::build(Config::new(url)).await {
        Ok(_) => panic!("the app was built on a newer database"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("9999_from_the_future"), "{error}");
}
