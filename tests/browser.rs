//! The admin page in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver HTTP API (the tiny client over reqwest in `common`), against the real server.
//!
//! The story of the original: a superuser created on the command line logs in at `/admin/`,
//! adds a user with "Add user", sets their email on the detail form, finds them with search,
//! and that user then obtains a token at `/api/token/`. Screenshots of the pages go to
//! `target/browser-screenshots/`.
//!
//! Where `/usr/bin/chromium` or `/usr/bin/chromedriver` is missing the test says
//! "SKIPPED: chromium/chromedriver not found" and passes, unless `SIMPLE_CHAT_REQUIRE_BROWSER=1`
//! (as in CI), where it fails.

mod common;

use std::{
    path::Path,
    process::{Command, Stdio},
};

use common::{Driver, Server, SessionOptions, browser_present};
use serde_json::{Value, json};
use simple_chat::Config;

const SUPERUSER: &str = "root";
const SUPERUSER_PASSWORD: &str = "Root-pass-2024";
const NEW_USER: &str = "carol";
const NEW_PASSWORD: &str = "Carol-secret-77";
const NEW_EMAIL: &str = "carol@example.com";

/// Runs `simple-chat createsuperuser --noinput` on the database, as an operator would.
fn create_superuser(database_url: &str, dir: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_simple-chat"))
        .args([
            "createsuperuser",
            "--noinput",
            "--username",
            SUPERUSER,
            "--email",
            "root@example.com",
        ])
        .current_dir(dir)
        .env("DATABASE_URL", database_url)
        .env("SIMPLE_CHAT_SUPERUSER_PASSWORD", SUPERUSER_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("run simple-chat createsuperuser");
    assert!(
        output.status.success(),
        "createsuperuser failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Alice and Bob talk over the API, so the admin has a thread and messages to show.
async fn seed_conversation(http: &reqwest::Client, base: &str) {
    let token = |name: &'static str| async move {
        let tokens: Value = http
            .post(format!("{base}/api/token/"))
            .json(&json!({"username": name, "password": "Colleague-pass-1"}))
            .send()
            .await
            .expect("sign in")
            .json()
            .await
            .expect("read the tokens");
        tokens["access"]
            .as_str()
            .expect("an access token")
            .to_owned()
    };
    let (alice, bob) = (token("alice").await, token("bob").await);
    let post = |token: String, path: String, body: Value| async move {
        let response = http
            .post(format!("{base}{path}"))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .expect("call the API");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json::<Value>().await.expect("read the answer")
    };
    let thread = post(
        alice.clone(),
        "/chat/thread/".into(),
        json!({"user1": "alice", "user2": "bob"}),
    )
    .await;
    let messages = format!("/thread/{}/message/", thread["id"]);
    let texts = [
        "Hi Bob! Are we still on for lunch?",
        "Bring the quarterly report.",
    ];
    let batch: Vec<Value> = texts.iter().map(|t| json!({"text": t})).collect();
    let sent = post(alice, messages.clone(), json!({"messages": batch})).await;
    post(
        bob.clone(),
        "/message/".into(),
        json!({"messages_ids": [sent[0]["id"]]}),
    )
    .await;
    let reply = json!({"messages": [{"text": "Yes! See you at noon by the fountain."}]});
    post(bob, messages, reply).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_adds_a_user_in_the_browser_who_then_signs_in_over_the_api() {
    if !browser_present() {
        return;
    }
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let database_url = format!("sqlite://{}", dir.path().join("db.sqlite3").display());
    create_superuser(&database_url, dir.path());
    let server = Server::start(Config::new(&database_url)).await;
    let (app, base) = (&server.app, &server.base);
    // A few colleagues already there, so the list looks like a real one.
    for (name, staff) in [("alice", true), ("bob", false), ("dave", false)] {
        app.create_user(name, "Colleague-pass-1", staff, false)
            .await
            .expect("create a colleague");
    }

    let http = reqwest::Client::new();
    seed_conversation(&http, base).await;
    let driver = Driver::start().await;
    let browser = driver.session(SessionOptions::default()).await;

    // Anonymous: the admin sends us to its login form; we log in through it.
    browser.goto(&format!("{base}/admin/")).await;
    browser.css("#id_username").await;
    assert!(browser.url().await.contains("/admin/login/"));
    browser.fill("Username", SUPERUSER).await;
    browser.fill("Password", SUPERUSER_PASSWORD).await;
    browser.press("Log in").await;
    browser.wait_for_text("Site administration").await;

    // Users → "Add user".
    browser.follow("Users").await;
    browser.wait_for_text("Everyone who can sign in").await;
    browser.screenshot("users-list.png").await;
    browser.follow("Add user").await;
    browser.css("#id_password2").await;
    browser.screenshot("add-user-form.png").await;

    // A password that breaks the rules: each broken rule next to its field, username kept.
    browser.fill("Username", NEW_USER).await;
    browser.fill("Password", "12345").await;
    browser.fill("Password confirmation", "12345").await;
    browser.press("Save and continue").await;
    browser
        .wait_for_text("This password is entirely numeric.")
        .await;
    let source = browser.source().await;
    assert!(source.contains("This password is too short."), "{source}");
    assert!(
        source.contains(&format!("value=\"{NEW_USER}\"")),
        "{source}"
    );
    browser.screenshot("add-user-errors.png").await;

    // Then a good one: on to the new user's detail form.
    browser.fill("Password", NEW_PASSWORD).await;
    browser.fill("Password confirmation", NEW_PASSWORD).await;
    browser.press("Save and continue").await;
    browser
        .wait_for_text(&format!("The user “{NEW_USER}” was added."))
        .await;
    assert!(browser.url().await.contains("/admin/users/"));

    // Their email on the detail form.
    browser.fill("Email address", NEW_EMAIL).await;
    browser.press("Save").await;
    browser
        .wait_for_text(&format!("The user “{NEW_USER}” was saved."))
        .await;
    browser.screenshot("user-detail.png").await;

    // Found by searching for the email.
    browser.follow("Users").await;
    browser.fill("Search", "carol@example").await;
    browser.press("Search").await;
    browser
        .wait_for_text("of <strong>1</strong> user</p>")
        .await;
    let source = browser.source().await;
    assert!(source.contains(NEW_EMAIL), "{source}");
    assert!(!source.contains(">alice<"), "{source}");
    browser.follow(NEW_USER).await;
    browser.wait_for_text("Set password").await;

    // Threads, one thread, messages.
    browser.follow("Threads").await;
    browser.wait_for_text("alice</a>").await;
    browser.screenshot("threads-list.png").await;
    browser.follow("Thread #1").await;
    browser.wait_for_text("See you at noon").await;
    browser.screenshot("thread.png").await;
    browser.follow("Messages").await;
    browser.wait_for_text("Every message in every thread").await;
    browser.screenshot("messages-list.png").await;

    // The list at phone width.
    browser.follow("Users").await;
    browser.resize(390, 844).await;
    browser.wait_for_text("Everyone who can sign in").await;
    browser.screenshot("users-list-phone.png").await;
    browser.close().await;

    // And the new user signs in over the API.
    let response = http
        .post(format!("{base}/api/token/"))
        .json(&json!({"username": NEW_USER, "password": NEW_PASSWORD}))
        .send()
        .await
        .expect("ask for a token");
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.expect("read the tokens");
    assert!(tokens["access"].is_string(), "{tokens}");
    let me: Value = http
        .get(format!("{base}/api/me/"))
        .bearer_auth(tokens["access"].as_str().expect("an access token"))
        .send()
        .await
        .expect("ask who I am")
        .json()
        .await
        .expect("read me");
    assert_eq!(me["email"], NEW_EMAIL);
}
