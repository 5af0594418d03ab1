//! The `simple-chat` command line: migrations and user management without prompts, then the
//! same database served over HTTP.

use std::process::{Command, Output, Stdio};

use serde_json::json;
use simple_chat::Config;
use tempfile::TempDir;

use crate::helpers::{TestApp, database_url, parts, serve_database, serve_process};

const SUPERUSER_PASSWORD: &str = "Sup3r-secret";

/// A working directory with its own database file, for running the binary.
struct Workspace {
    dir: TempDir,
    database_url: String,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let database_url = database_url(dir.path());
        Workspace { dir, database_url }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_simple-chat"));
        command
            .args(args)
            .current_dir(self.dir.path())
            .env("DATABASE_URL", self.database_url.as_str())
            .env_remove("SIMPLE_CHAT_SUPERUSER_PASSWORD")
            .env_remove("SIMPLE_CHAT_USER_PASSWORD")
            .stdin(Stdio::null());
        command
    }

    /// Runs `simple-chat <args>` with extra environment variables, without a terminal.
    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let mut command = self.command(args);
        for &(name, value) in vars {
            command.env(name, value);
        }
        command
            .output()
            .unwrap_or_else(|error| panic!("run simple-chat {args:?}: {error}"))
    }

    /// Runs a command that must succeed.
    fn run_ok(&self, args: &[&str], vars: &[(&str, &str)]) {
        let output = self.run(args, vars);
        assert!(
            output.status.success(),
            "simple-chat {args:?} failed: {}",
            describe(&output)
        );
    }

    /// Serves this database in-process on a free port.
    async fn serve(self) -> TestApp {
        serve_database(Config::new(self.database_url), Some(self.dir)).await
    }
}

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts a failed run that explains itself on stderr.
fn assert_fails_with_message(output: &Output) {
    assert!(
        !output.status.success(),
        "expected a failure: {}",
        describe(output)
    );
    assert!(
        !String::from_utf8_lossy(&output.stderr).trim().is_empty(),
        "expected a message on stderr"
    );
}

fn create_root(workspace: &Workspace, password: &str) -> Output {
    workspace.run(
        &[
            "createsuperuser",
            "--username",
            "root",
            "--email",
            "r@example.com",
            "--noinput",
        ],
        &[("SIMPLE_CHAT_SUPERUSER_PASSWORD", password)],
    )
}

#[test]
fn migrate_creates_the_database_and_can_run_again() {
    let workspace = Workspace::new();

    workspace.run_ok(&["migrate"], &[]);
    workspace.run_ok(&["migrate"], &[]);

    if !crate::postgres::on_postgres() {
        assert!(
            workspace.dir.path().join("db.sqlite3").exists(),
            "the SQLite file was created"
        );
    }
}

#[tokio::test]
async fn createsuperuser_without_input_creates_a_superuser_who_can_sign_in() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);

    let output = create_root(&workspace, SUPERUSER_PASSWORD);

    assert!(output.status.success(), "{}", describe(&output));
    let app = workspace.serve().await;
    let token = app.token("root", SUPERUSER_PASSWORD).await;
    let me = app.get_ok("/api/me/", &token).await;
    assert_eq!(me["username"], "root");
    assert_eq!(me["email"], "r@example.com");
    assert_eq!(me["is_staff"], json!(true));
    assert_eq!(me["is_superuser"], json!(true));
    assert_eq!(me["is_active"], json!(true));
}

#[test]
fn createsuperuser_with_a_taken_username_fails_with_a_message() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);
    assert!(create_root(&workspace, SUPERUSER_PASSWORD).status.success());

    let again = create_root(&workspace, "Another-secret-9");

    assert_fails_with_message(&again);
    let stderr = String::from_utf8_lossy(&again.stderr).to_lowercase();
    assert!(
        stderr.contains("taken") || stderr.contains("exists"),
        "says the username is taken: {stderr}"
    );
}

#[test]
fn createsuperuser_with_a_weak_password_fails_and_creates_nobody() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);

    let weak = create_root(&workspace, "123");

    assert_fails_with_message(&weak);
    // The username is still free.
    assert!(create_root(&workspace, SUPERUSER_PASSWORD).status.success());
}

#[tokio::test]
async fn createuser_and_changepassword_without_input() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);

    workspace.run_ok(
        &["createuser", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Carol-first-11")],
    );
    workspace.run_ok(
        &["changepassword", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Carol-second-22")],
    );

    let app = workspace.serve().await;
    let (old, old_body) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "carol", "password": "Carol-first-11"}),
        )
        .await,
    )
    .await;
    assert_eq!(old, 401, "the old password no longer works: {old_body}");
    let token = app.token("carol", "Carol-second-22").await;
    let me = app.get_ok("/api/me/", &token).await;
    assert_eq!(me["username"], "carol");
    assert_eq!(me["is_staff"], json!(false));
    assert_eq!(me["is_superuser"], json!(false));
}

/// The server keeps signed-in users in memory; a password changed by another process (the CLI
/// on the same SQLite file) must still end the tokens it already knows, within a moment.
#[tokio::test]
async fn a_password_changed_by_the_cli_while_serving_ends_old_tokens() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);
    workspace.run_ok(
        &["createuser", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Carol-first-11")],
    );
    let mut change = workspace.command(&["changepassword", "carol", "--noinput"]);
    change.env("SIMPLE_CHAT_USER_PASSWORD", "Carol-second-22");
    let app = workspace.serve().await;
    let token = app.token("carol", "Carol-first-11").await;
    for _ in 0..3 {
        assert_eq!(app.get_ok("/api/me/", &token).await["username"], "carol");
    }

    let output = change.output().expect("run changepassword");
    assert!(output.status.success(), "{}", describe(&output));

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, body) = parts(app.get("/api/me/", Some(&token)).await).await;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            std::time::Instant::now() < deadline,
            "the old token still works 5 s after the password changed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let token = app.token("carol", "Carol-second-22").await;
    assert_eq!(app.get_ok("/api/me/", &token).await["username"], "carol");
}

#[tokio::test]
async fn createuser_with_staff_and_email_makes_a_staff_user() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);

    workspace.run_ok(
        &[
            "createuser",
            "erin",
            "--email",
            "erin@example.com",
            "--staff",
            "--noinput",
        ],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Erin-pass-333")],
    );

    let app = workspace.serve().await;
    let me = app
        .get_ok("/api/me/", &app.token("erin", "Erin-pass-333").await)
        .await;
    assert_eq!(me["email"], "erin@example.com");
    assert_eq!(me["is_staff"], json!(true));
    assert_eq!(me["is_superuser"], json!(false));
}

#[test]
fn createuser_with_a_taken_username_or_weak_password_fails() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);
    workspace.run_ok(
        &["createuser", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Carol-first-11")],
    );

    let taken = workspace.run(
        &["createuser", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Other-pass-44")],
    );
    let weak = workspace.run(
        &["createuser", "dave", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "dave")],
    );

    assert_fails_with_message(&taken);
    assert_fails_with_message(&weak);
}

#[tokio::test]
async fn changepassword_refuses_an_unknown_user_or_a_weak_password() {
    let workspace = Workspace::new();
    workspace.run_ok(&["migrate"], &[]);
    workspace.run_ok(
        &["createuser", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Carol-first-11")],
    );

    let unknown = workspace.run(
        &["changepassword", "nobody", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "Nobody-pass-55")],
    );
    let weak = workspace.run(
        &["changepassword", "carol", "--noinput"],
        &[("SIMPLE_CHAT_USER_PASSWORD", "12345678")],
    );

    assert_fails_with_message(&unknown);
    assert_fails_with_message(&weak);
    let app = workspace.serve().await;
    app.token("carol", "Carol-first-11").await;
}

#[tokio::test]
async fn serve_applies_migrations_and_answers() {
    let workspace = Workspace::new();
    let (_server, address) = serve_process(workspace.command(&[])).await;
    let client = reqwest::Client::new();

    let health = parts(
        client
            .get(format!("{address}/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;

    assert_eq!(health, (200, json!({"status": "ok"})));
    // The schema exists: an unknown user is a clean 401, not a database error.
    let login = client
        .post(format!("{address}/api/token/"))
        .json(&json!({"username": "nobody", "password": "Nobody-pass-55"}))
        .send()
        .await
        .expect("send the request");
    let (status, body) = parts(login).await;
    assert_eq!(status, 401, "{body}");
}
