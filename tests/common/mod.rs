//! What the browser tests share: the real server started in-process on a free port (and
//! stopped and started again on the same port and database), and a tiny W3C WebDriver client
//! over reqwest that drives Debian's Chromium through chromedriver.
//!
//! Where `/usr/bin/chromium` or `/usr/bin/chromedriver` is missing, [`browser_present`] says
//! "SKIPPED: chromium/chromedriver not found" and the test passes, unless
//! `SIMPLE_CHAT_REQUIRE_BROWSER=1` (as in CI), where it fails. Screenshots go to
//! `target/browser-screenshots/`.

// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::{
    net::{SocketAddr, TcpListener as StdTcpListener},
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use reqwest::Method;
use serde_json::{Value, json};
use simple_chat::{App, Config};
use tokio::{net::TcpListener, sync::oneshot, task::JoinHandle};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C name of the key under which an element reference is sent.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait lasts before the test fails.
pub const WAIT: Duration = Duration::from_secs(15);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(40);

/// Whether the browser is here; prints why the test is skipped when it is not (and fails when
/// `SIMPLE_CHAT_REQUIRE_BROWSER=1`).
pub fn browser_present() -> bool {
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

/// `target/browser-screenshots/` (next to this test's own `target/tmp`).
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("browser-screenshots")
}

pub fn free_port() -> u16 {
    StdTcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

/* ---------- the server ---------- */

/// The real server, served in-process by the library, as `simple-chat serve` does.
pub struct Server {
    pub app: App,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Builds the app on `config` and serves it on a free port of 127.0.0.1.
    pub async fn start(config: Config) -> Server {
        Server::start_at(config, "127.0.0.1:0".parse().expect("an address")).await
    }

    /// Builds the app on `config` and serves it at `address` (a port that was served before
    /// may be taken again at once: Tokio binds with `SO_REUSEADDR`).
    pub async fn start_at(config: Config, address: SocketAddr) -> Server {
        let app = App::build(config).await.expect("build the app");
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(address).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(Instant::now() < deadline, "bind {address}: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let address = listener.local_addr().expect("the bound address");
        let (stop, stopped) = oneshot::channel::<()>();
        let server = app.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
        Server {
            app,
            base: format!("http://{address}"),
            address,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops serving and waits until the port is free again (open sockets are told to go).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(20), task)
                .await
                .expect("the server stops within 20 s")
                .expect("the server task ends cleanly");
        }
    }
}

/* ---------- chromedriver and browser sessions ---------- */

/// chromedriver, stopped when dropped together with the browsers it started.
pub struct Driver {
    process: Child,
    url: String,
    http: reqwest::Client,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // chromedriver leads its own process group, which the browsers it starts join: ending
        // the group ends them too, also when a test panicked before closing its sessions
        // (killing chromedriver alone would leave its browsers running).
        if let Ok(group) = libc::pid_t::try_from(self.process.id()) {
            // SAFETY: kill(2) with a negative pid signals that process group; no memory is
            // touched.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// What a new browser session looks like.
pub struct SessionOptions {
    /// The window (and so, headless, the viewport) size.
    pub width: u32,
    pub height: u32,
    /// More Chromium flags.
    pub args: Vec<String>,
}

impl Default for SessionOptions {
    fn default() -> SessionOptions {
        SessionOptions {
            width: 1280,
            height: 900,
            args: Vec::new(),
        }
    }
}

impl Driver {
    pub async fn start() -> Driver {
        let http = reqwest::Client::new();
        let port = free_port();
        let process = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let driver = Driver {
            process,
            url: format!("http://127.0.0.1:{port}"),
            http,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let status = driver
                .http
                .get(format!("{}/status", driver.url))
                .send()
                .await;
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

    /// A new browser (its own Chromium with its own fresh profile).
    pub async fn session(&self, options: SessionOptions) -> Browser {
        let profile = tempfile::tempdir().expect("create a browser profile directory");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", options.width, options.height),
        ];
        args.extend(options.args);
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
        }}});
        let response: Value = self
            .http
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
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.url),
            _profile: profile,
        }
    }
}

/// One browser session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _profile: tempfile::TempDir,
}

/// chromedriver's answer: the status and the `value`.
async fn answer(response: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = response.status();
    let body: Value = response.json().await.expect("read chromedriver's answer");
    (status, body["value"].clone())
}

impl Browser {
    /// Sends a WebDriver command; `None` when chromedriver answers an error.
    pub async fn try_call(&self, method: Method, path: &str, body: Option<Value>) -> Option<Value> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, value) = answer(request.send().await.expect("talk to chromedriver")).await;
        status.is_success().then_some(value)
    }

    /// Sends a WebDriver command; panics with chromedriver's error when it fails.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let (status, value) = answer(request.send().await.expect("talk to chromedriver")).await;
        assert!(status.is_success(), "{method} {path}: {status} {value}");
        value
    }

    pub async fn goto(&self, url: &str) {
        self.call(Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn url(&self) -> String {
        let url = self.call(Method::GET, "/url", None).await;
        url.as_str().expect("the current URL").to_owned()
    }

    pub async fn source(&self) -> String {
        let source = self.call(Method::GET, "/source", None).await;
        source.as_str().expect("the page source").to_owned()
    }

    /// Runs `script` (a function body: `return` gives the answer) with `args`.
    pub async fn js(&self, script: &str, args: Value) -> Value {
        self.call(
            Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// Runs `script`, which calls `arguments[arguments.length - 1]` with its answer, waiting at
    /// most `limit` for it.
    pub async fn js_async(&self, script: &str, args: Value, limit: Duration) -> Value {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        self.call(Method::POST, "/timeouts", Some(json!({"script": ms})))
            .await;
        self.call(
            Method::POST,
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// A Chrome DevTools Protocol command, through chromedriver's passthrough.
    pub async fn cdp(&self, cmd: &str, params: Value) -> Value {
        self.call(
            Method::POST,
            "/goog/cdp/execute",
            Some(json!({"cmd": cmd, "params": params})),
        )
        .await
    }

    /// Waits until the JavaScript expression `condition` is truthy; returns its value.
    pub async fn wait_for(&self, condition: &str, what: &str) -> Value {
        self.wait_for_within(condition, what, WAIT).await
    }

    pub async fn wait_for_within(&self, condition: &str, what: &str, limit: Duration) -> Value {
        if let Some(value) = self.poll_for(condition, limit).await {
            return value;
        }
        let body = self.js("return document.body.innerText;", json!([])).await;
        panic!(
            "waited {limit:?} for {what} ({condition}) on {}; the page says:\n{}",
            self.url().await,
            body.as_str().unwrap_or_default()
        );
    }

    /// Polls until the JavaScript expression `condition` is truthy and returns its value, or
    /// `None` once `limit` has passed.
    pub async fn poll_for(&self, condition: &str, limit: Duration) -> Option<Value> {
        let script = format!("return ({condition});");
        let deadline = Instant::now() + limit;
        loop {
            // A script error (something not there yet) counts as not yet.
            let value = self
                .try_call(
                    Method::POST,
                    "/execute/sync",
                    Some(json!({"script": script, "args": []})),
                )
                .await
                .unwrap_or(Value::Null);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Some(value);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The element the JavaScript expression `expression` gives, waiting for it.
    pub async fn element(&self, expression: &str, what: &str) -> String {
        let found = self.wait_for(expression, what).await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: not an element but {found}"))
            .to_owned()
    }

    /// The element found by a W3C locator strategy, waiting for it to appear.
    pub async fn find(&self, using: &str, value: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let found = self
                .try_call(
                    Method::POST,
                    "/element",
                    Some(json!({"using": using, "value": value})),
                )
                .await;
            if let Some(element) = found {
                return element[ELEMENT]
                    .as_str()
                    .unwrap_or_else(|| panic!("an element reference: {element}"))
                    .to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no element {using} {value:?} on {}:\n{}",
                self.url().await,
                self.source().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn css(&self, selector: &str) -> String {
        self.find("css selector", selector).await
    }

    /// The element `selector` finds inside the element `parent`.
    pub async fn css_in(&self, parent: &str, selector: &str) -> String {
        let found = self
            .call(
                Method::POST,
                &format!("/element/{parent}/element"),
                Some(json!({"using": "css selector", "value": selector})),
            )
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("an element reference: {found}"))
            .to_owned()
    }

    /// Types into the input labelled `label` (found through its `<label for>`).
    pub async fn fill(&self, label: &str, text: &str) {
        let label_element = self
            .find(
                "xpath",
                &format!("//label[normalize-space(text()[1])='{label}']"),
            )
            .await;
        let target = self
            .call(
                Method::GET,
                &format!("/element/{label_element}/attribute/for"),
                None,
            )
            .await;
        let input = self
            .css(&format!("#{}", target.as_str().expect("the label's for")))
            .await;
        self.clear(&input).await;
        self.type_into(&input, text).await;
    }

    pub async fn clear(&self, element: &str) {
        self.call(
            Method::POST,
            &format!("/element/{element}/clear"),
            Some(json!({})),
        )
        .await;
    }

    /// Sends keys to an element (`\u{E007}` is Enter).
    pub async fn type_into(&self, element: &str, text: &str) {
        self.call(
            Method::POST,
            &format!("/element/{element}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn click(&self, element: &str) {
        self.call(
            Method::POST,
            &format!("/element/{element}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Clicks what `selector` finds, once it is there.
    pub async fn click_css(&self, selector: &str) {
        let element = self.css(selector).await;
        self.click(&element).await;
    }

    /// Clicks the button whose visible text is `text`.
    pub async fn press(&self, text: &str) {
        let button = self
            .find("xpath", &format!("//button[normalize-space(.)='{text}']"))
            .await;
        self.click(&button).await;
    }

    /// Clicks the link whose visible text is `text`.
    pub async fn follow(&self, text: &str) {
        let link = self.find("link text", text).await;
        self.click(&link).await;
    }

    /// Waits until the page source contains `text`.
    pub async fn wait_for_text(&self, text: &str) {
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
            tokio::time::sleep(POLL).await;
        }
    }

    /// The text of an open `alert()`, if any.
    pub async fn alert_text(&self) -> Option<String> {
        self.try_call(Method::GET, "/alert/text", None)
            .await
            .map(|text| text.as_str().unwrap_or_default().to_owned())
    }

    /// Moves the mouse over the middle of an element.
    pub async fn hover(&self, element: &str) {
        let actions = json!({"actions": [{
            "type": "pointer",
            "id": "mouse",
            "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "duration": 0, "x": 0, "y": 0,
                         "origin": {ELEMENT: element}}],
        }]});
        self.call(Method::POST, "/actions", Some(actions)).await;
    }

    /// Moves the mouse to the top left corner of the page, so nothing stays hovered.
    pub async fn mouse_away(&self) {
        let actions = json!({"actions": [{
            "type": "pointer",
            "id": "mouse",
            "parameters": {"pointerType": "mouse"},
            "actions": [{"type": "pointerMove", "duration": 0, "x": 0, "y": 0, "origin": "viewport"}],
        }]});
        self.call(Method::POST, "/actions", Some(actions)).await;
    }

    pub async fn resize(&self, width: u32, height: u32) {
        self.call(
            Method::POST,
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await;
    }

    /// Makes the page's viewport exactly `width` × `height` CSS pixels (headless windows keep
    /// some of their size for the browser's own bars).
    pub async fn set_viewport(&self, width: u32, height: u32) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await;
    }

    /// Light or dark, as if the system asked for it (`prefers-color-scheme`).
    pub async fn color_scheme(&self, scheme: &str) {
        self.cdp(
            "Emulation.setEmulatedMedia",
            json!({"features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        )
        .await;
    }

    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let data = self.call(Method::GET, "/screenshot", None).await;
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

    pub async fn close(self) {
        let _ = self.http.delete(&self.base).send().await;
    }
}
