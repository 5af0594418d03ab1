//! The admin page in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver HTTP API (a tiny client over reqwest below), against the real server.
//!
//! The story of the original: a superuser created on the command line logs in at `/admin/`,
//! adds a user with "Add user", sets their email on the detail form, finds them with search,
//! and that user then obtains a token at `/api/token/`. Screenshots of the pages go to
//! `target/browser-screenshots/`.
//!
//! Where `/usr/bin/chromium` or `/usr/bin/chromedriver` is missing the test says
//! "SKIPPED: chromium/chromedriver not found" and passes, unless `SIMPLE_CHAT_REQUIRE_BROWSER=1`
//! (as in CI), where it fails.

use std::{
    net::TcpListener as StdTcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Value, json};
use simple_chat::{App, Config};
use tokio::{net::TcpListener, sync::oneshot};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const SUPERUSER: &str = "root";
const SUPERUSER_PASSWORD: &str = "Root-pass-2024";
const NEW_USER: &str = "carol";
const NEW_PASSWORD: &str = "Carol-secret-77";
const NEW_EMAIL: &str = "carol@example.com";
/// The W3C name of the key under which an element reference is sent.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(15);

/// chromedriver, stopped when dropped.
struct Driver {
    process: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

impl Driver {
    async fn start(http: &reqwest::Client) -> Driver {
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            process,
            url: format!("http://127.0.0.1:{port}"),
            _profile: tempfile::tempdir().expect("create a browser profile directory"),
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let status = http.get(format!("{}/status", driver.url)).send().await;
            if let Ok(response) = status
                && let Ok(body) = response.json::<Value>().await
                && body["value"]["ready"] == json!(true)
            {
                return driver;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn session(&self, http: &reqwest::Client) -> Browser {
        let profile = self._profile.path().display().to_string();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu",
                    "--disable-background-networking", "--disable-dev-shm-usage",
                    format!("--user-data-dir={profile}"), "--window-size=1280,900",
                ],
            },
        }}});
        let response: Value = http
            .post(format!("{}/session", self.url))
            .json(&capabilities)
            .send()
            .await
            .expect("ask chromedriver for a session")
            .json()
            .await
            .expect("read the new session");
        let id = response["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no browser session: {response}"));
        Browser {
            http: http.clone(),
            base: format!("{}/session/{id}", self.url),
        }
    }
}

/// One browser session.
struct Browser {
    http: reqwest::Client,
    base: String,
}

impl Browser {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("talk to chromedriver");
        let status = response.status();
        let body: Value = response.json().await.expect("read chromedriver's answer");
        assert!(status.is_success(), "{method} {path}: {status} {body}");
        body["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn url(&self) -> String {
        let url = self.call(reqwest::Method::GET, "/url", None).await;
        url.as_str().expect("the current URL").to_owned()
    }

    async fn source(&self) -> String {
        let source = self.call(reqwest::Method::GET, "/source", None).await;
        source.as_str().expect("the page source").to_owned()
    }

    /// The element found by a W3C locator strategy, waiting for it to appear.
    async fn find(&self, using: &str, value: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let response = self
                .http
                .post(format!("{}/element", self.base))
                .json(&json!({"using": using, "value": value}))
                .send()
                .await
                .expect("talk to chromedriver");
            if response.status().is_success() {
                let body: Value = response.json().await.expect("read the element");
                return body["value"][ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("an element reference: {body}"))
                    .to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element {using} {value:?} on {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn css(&self, selector: &str) -> String {
        self.find("css selector", selector).await
    }

    /// Types into the input labelled `label` (found through its `<label for>`).
    async fn fill(&self, label: &str, text: &str) {
        let label_element = self
            .find(
                "xpath",
                &format!("//label[normalize-space(text()[1])='{label}']"),
            )
            .await;
        let target = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{label_element}/attribute/for"),
                None,
            )
            .await;
        let input = self
            .css(&format!("#{}", target.as_str().expect("the label's for")))
            .await;
        let path = format!("/element/{input}");
        self.call(
            reqwest::Method::POST,
            &format!("{path}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("{path}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, element: &str) {
        self.call(
            reqwest::Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Clicks the button whose visible text is `text`.
    async fn press(&self, text: &str) {
        let button = self
            .find("xpath", &format!("//button[normalize-space(.)='{text}']"))
            .await;
        self.click(&button).await;
    }

    /// Clicks the link whose visible text is `text`.
    async fn follow(&self, text: &str) {
        let link = self.find("link text", text).await;
        self.click(&link).await;
    }

    /// Waits until the page source contains `text`.
    async fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let source = self.source().await;
            if source.contains(text) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never appeared on {}:\n{source}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn resize(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = STANDARD
            .decode(data.as_str().expect("base64 screenshot"))
            .expect("decode the screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("create the screenshot directory");
        let path = dir.join(name);
        std::fs::write(&path, png).expect("write the screenshot");
        println!("screenshot: {}", path.display());
        path
    }

    async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}

/// `target/browser-screenshots/` (next to this test's own `target/tmp`).
fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser-screenshots")
}

fn browser_present() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var("SIMPLE_CHAT_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "SIMPLE_CHAT_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing"
        );
        println!("SKIPPED: chromium/chromedriver not found");
    }
    present
}

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

/// Serves the database in-process on a free port; returns the base URL and the stop switch.
async fn serve(database_url: &str) -> (App, String, oneshot::Sender<()>) {
    let app = App::build(Config::new(database_url))
        .await
        .expect("build the app");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let address = format!("http://{}", listener.local_addr().expect("the address"));
    let (stop, stopped) = oneshot::channel::<()>();
    let server = app.clone();
    tokio::spawn(async move {
        server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serve");
    });
    (app, address, stop)
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
    let (app, base, _stop) = serve(&database_url).await;
    // A few colleagues already there, so the list looks like a real one.
    for (name, staff) in [("alice", true), ("bob", false), ("dave", false)] {
        app.create_user(name, "Colleague-pass-1", staff, false)
            .await
            .expect("create a colleague");
    }

    let http = reqwest::Client::new();
    seed_conversation(&http, &base).await;
    let driver = Driver::start(&http).await;
    let browser = driver.session(&http).await;

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
