//! Shared setup: a fresh server per test on a fresh database (a temporary SQLite file, or a new
//! PostgreSQL database when the suite runs on PostgreSQL), and small helpers to talk to it.

use std::path::Path;

use reqwest::{Method, RequestBuilder, Response};
use serde_json::{Value, json};
use simple_chat::{App, Config};
use tempfile::TempDir;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The superuser every test server starts with.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-pass-123";
/// The password of the users the tests create.
pub const PASSWORD: &str = "Correct-horse-42";

pub const USER_KEYS: &[&str] = &[
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_active",
    "is_staff",
    "is_superuser",
    "date_joined",
    "last_login",
];
pub const THREAD_KEYS: &[&str] = &[
    "id",
    "participants",
    "participants_list",
    "created",
    "updated",
    "last_message",
    "unread_count",
];
pub const MESSAGE_KEYS: &[&str] = &[
    "id",
    "thread",
    "sender",
    "text",
    "created",
    "is_read",
    "client_id",
    "edited",
    "reply_to",
    "reactions",
    "files",
];
pub const PAGE_KEYS: &[&str] = &["count", "next", "previous", "results"];

/// A running server. Dropping it stops the server and removes its database.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    /// Never follows redirects, so a test sees any 3xx the server sends.
    pub client: reqwest::Client,
    /// The `DATABASE_URL` this server runs on.
    pub database_url: String,
    app: App,
    shutdown: oneshot::Sender<()>,
    /// The serving task: it ends when `shutdown` is sent or dropped.
    served: tokio::task::JoinHandle<()>,
    _dir: Option<TempDir>,
}

/// Alice and Bob, both signed in, with a thread between them created by Alice.
pub struct Conversation {
    pub alice_id: i64,
    pub alice: String,
    pub bob_id: i64,
    pub bob: String,
    pub thread_id: i64,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Server logs go to the test output when `TEST_LOG` is set (`TEST_LOG=debug cargo test ...`).
fn init_logs() {
    static LOGS: std::sync::Once = std::sync::Once::new();
    LOGS.call_once(|| {
        if let Ok(level) = std::env::var("TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(level))
                .with_test_writer()
                .try_init();
        }
    });
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Config)) -> TestApp {
    init_logs();
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let mut config = Config::new(database_url(dir.path()));
    // The suite posts and starts threads far faster than people do; the tests of these limits
    // set their own.
    config.post_rate = 1_000_000;
    config.thread_rate = 1_000_000;
    configure(&mut config);
    let test_app = serve_database(config, Some(dir)).await;
    test_app
        .app
        .create_user(ADMIN, ADMIN_PASSWORD, true, true)
        .await
        .expect("create the admin superuser");
    test_app
}

/// A fresh database for one test: `sqlite:///absolute/path/db.sqlite3` inside `dir`, or a new
/// database on the suite's PostgreSQL server when the suite runs on PostgreSQL.
pub fn database_url(dir: &Path) -> String {
    if crate::postgres::on_postgres() {
        crate::postgres::fresh_database()
    } else {
        format!("sqlite://{}", dir.join("db.sqlite3").display())
    }
}

/// Builds an app on `config` and serves it on a free port. `dir` (if any) is kept alive as long
/// as the returned server.
pub async fn serve_database(config: Config, dir: Option<TempDir>) -> TestApp {
    let database_url = config.database_url.clone();
    let app = App::build(config).await.expect("build the app");
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let port = listener
        .local_addr()
        .expect("read the bound address")
        .port();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = app.clone();
    let served = tokio::spawn(async move {
        let stop = async move {
            let _ = stopped.await;
        };
        server
            .serve(listener, stop)
            .await
            .expect("the server stopped with an error");
    });
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("build the HTTP client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client,
        database_url,
        app,
        shutdown,
        served,
        _dir: dir,
    }
}

impl TestApp {
    /// Stops the server as `serve` stops on a signal (open sockets are told to go) and waits
    /// until it has; its database stays, in the directory returned (when it owned one).
    pub async fn stop(self) -> Option<TempDir> {
        drop(self.shutdown);
        tokio::time::timeout(std::time::Duration::from_secs(20), self.served)
            .await
            .expect("the server stops within 20 s")
            .expect("the server task ends cleanly");
        self._dir
    }

    /// The library's handle on this server (for what has no endpoint, like pruning events).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Creates an active, non-staff user directly through the library.
    pub async fn create_user(&self, username: &str, password: &str) -> i64 {
        self.app
            .create_user(username, password, false, false)
            .await
            .unwrap_or_else(|error| panic!("create user {username}: {error:#}"))
    }

    /// Creates a user with the password [`PASSWORD`] and signs them in.
    pub async fn login_new_user(&self, username: &str) -> (i64, String) {
        let id = self.create_user(username, PASSWORD).await;
        (id, self.token(username, PASSWORD).await)
    }

    /// Creates a staff user (not a superuser) with the password [`PASSWORD`] and signs them in.
    pub async fn login_new_staff(&self, username: &str) -> (i64, String) {
        let id = self
            .app
            .create_user(username, PASSWORD, true, false)
            .await
            .unwrap_or_else(|error| panic!("create staff user {username}: {error:#}"));
        (id, self.token(username, PASSWORD).await)
    }

    /// `POST /api/token/` → (access, refresh); panics unless it answers 200.
    pub async fn token_pair(&self, username: &str, password: &str) -> (String, String) {
        let credentials = json!({"username": username, "password": password});
        let (status, body) = parts(self.post_json("/api/token/", None, &credentials).await).await;
        assert_eq!(status, 200, "sign in as {username}: {body}");
        let access = body["access"].as_str().expect("an access token").to_owned();
        let refresh = body["refresh"]
            .as_str()
            .expect("a refresh token")
            .to_owned();
        (access, refresh)
    }

    /// The access token of a successful `POST /api/token/`.
    pub async fn token(&self, username: &str, password: &str) -> String {
        self.token_pair(username, password).await.0
    }

    pub async fn admin_token(&self) -> String {
        self.token(ADMIN, ADMIN_PASSWORD).await
    }

    /// Alice and Bob signed in, with a thread between them (created by Alice).
    pub async fn conversation(&self) -> Conversation {
        let (alice_id, alice) = self.login_new_user("alice").await;
        let (bob_id, bob) = self.login_new_user("bob").await;
        let thread = self.create_thread(&alice, "alice", "bob").await;
        Conversation {
            alice_id,
            alice,
            bob_id,
            bob,
            thread_id: id(&thread),
        }
    }

    /// A request to `path` on this server, with `Authorization: Bearer <token>` when given.
    pub fn request(&self, method: Method, path: &str, token: Option<&str>) -> RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::GET, path, token)).await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::POST, path, token).json(body)).await
    }

    pub async fn patch_json(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        send(self.request(Method::PATCH, path, token).json(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        send(self.request(Method::DELETE, path, token)).await
    }

    /// `GET path` that must answer 200; returns the JSON body.
    pub async fn get_ok(&self, path: &str, token: &str) -> Value {
        let (status, body) = parts(self.get(path, Some(token)).await).await;
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// `POST /chat/thread/` that must answer 201 or 200; returns the thread JSON.
    pub async fn create_thread(&self, token: &str, user1: &str, user2: &str) -> Value {
        let request = json!({"user1": user1, "user2": user2});
        let (status, body) =
            parts(self.post_json("/chat/thread/", Some(token), &request).await).await;
        assert!(
            status == 201 || status == 200,
            "create thread {user1}/{user2}: {status} {body}"
        );
        body
    }

    /// Posts one batch of messages (sender omitted) that must answer 201; returns them.
    pub async fn post_messages<S: AsRef<str>>(
        &self,
        token: &str,
        thread_id: i64,
        texts: &[S],
    ) -> Vec<Value> {
        let messages: Vec<Value> = texts
            .iter()
            .map(|text| json!({"text": text.as_ref()}))
            .collect();
        let path = format!("/thread/{thread_id}/message/");
        let (status, body) = parts(
            self.post_json(&path, Some(token), &json!({"messages": messages}))
                .await,
        )
        .await;
        assert_eq!(status, 201, "post messages to thread {thread_id}: {body}");
        match body {
            Value::Array(items) => items,
            other => panic!("expected an array of messages, got {other}"),
        }
    }

    /// The statuses of a valid post and an invalid one to a thread that was deleted, by a
    /// former participant: both must be 404, whatever was kept of the thread before.
    pub async fn posts_to_a_gone_thread(&self, token: &str, thread_id: i64) -> [u16; 2] {
        let path = format!("/thread/{thread_id}/message/");
        let mut statuses = [0; 2];
        let bodies = [
            json!({"messages": [{"text": "late"}]}),
            json!({"messages": "?"}),
        ];
        for (status, body) in statuses.iter_mut().zip(bodies) {
            *status = self
                .post_json(&path, Some(token), &body)
                .await
                .status()
                .as_u16();
        }
        statuses
    }

    /// `count` of `GET /thread/<id>/message/` as a participant (or staff).
    pub async fn message_count(&self, token: &str, thread_id: i64) -> i64 {
        let page = self
            .get_ok(&format!("/thread/{thread_id}/message/"), token)
            .await;
        page["count"].as_i64().expect("a message count")
    }

    /// `unread_count` of `GET /user/<id>/message/`.
    pub async fn unread_count(&self, token: &str, user_id: i64) -> i64 {
        let body = self
            .get_ok(&format!("/user/{user_id}/message/"), token)
            .await;
        body["unread_count"].as_i64().expect("an unread count")
    }

    /// Ids of the threads in `GET /chat/user/<id>/thread/`, in the order listed.
    pub async fn thread_ids(&self, token: &str, user_id: i64) -> Vec<i64> {
        let page = self
            .get_ok(&format!("/chat/user/{user_id}/thread/"), token)
            .await;
        results(&page).iter().map(id).collect()
    }
}

/// The request an answer belongs to, kept with it so [`parts`] can check the answer against
/// the API's description.
#[derive(Clone)]
struct Asked {
    method: Method,
    path: String,
}

async fn send(request: RequestBuilder) -> Response {
    let (client, request) = request.build_split();
    let request = request.expect("build the request");
    let asked = Asked {
        method: request.method().clone(),
        path: request.url().path().to_owned(),
    };
    let mut response = client.execute(request).await.expect("send the request");
    response.extensions_mut().insert(asked);
    response
}

/// Status and JSON body of a response (`Value::Null` for an empty body). Every non-empty body
/// must be JSON with a JSON content type, and match the schema the API's description gives
/// for it.
pub async fn parts(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let asked = response.extensions().get::<Asked>().cloned();
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = response.bytes().await.expect("read the response body");
    if bytes.is_empty() {
        return (status, Value::Null);
    }
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: expected a JSON content type, got {content_type:?}: {text}"
    );
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|error| panic!("status {status}: the body is not JSON ({error}): {text}"));
    if let Some(asked) = asked {
        crate::schema::check_answer(&asked.method, &asked.path, status, &body);
    }
    (status, body)
}

/// The `id` of a user, thread or message JSON.
pub fn id(value: &Value) -> i64 {
    value["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no integer id in {value}"))
}

/// The `results` array of a paginated list.
pub fn results(page: &Value) -> &Vec<Value> {
    page["results"]
        .as_array()
        .unwrap_or_else(|| panic!("not a paginated list: {page}"))
}

/// Asserts that `value` is an object with exactly these keys.
pub fn assert_keys(value: &Value, expected: &[&str]) {
    let object = value
        .as_object()
        .unwrap_or_else(|| panic!("expected an object, got {value}"));
    let mut actual: Vec<&str> = object.keys().map(String::as_str).collect();
    actual.sort_unstable();
    let mut expected = expected.to_vec();
    expected.sort_unstable();
    assert_eq!(actual, expected, "keys of {value}");
}

/// Asserts the body is `{"detail": "<some message>"}`.
pub fn assert_detail(body: &Value) {
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("expected a detail, got {body}"));
    assert!(!detail.is_empty(), "empty detail in {body}");
}

/// Asserts a 400 body names `field` with at least one message.
pub fn assert_field_error(body: &Value, field: &str) {
    let messages = body[field]
        .as_array()
        .unwrap_or_else(|| panic!("expected errors on {field:?}, got {body}"));
    assert!(!messages.is_empty(), "no message for {field:?} in {body}");
}

/// Asserts an RFC 3339 UTC timestamp with microseconds: `2026-11-24T09:30:00.123456Z`.
pub fn assert_timestamp(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("expected a timestamp string, got {value}"));
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 27
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
        && bytes[13] == b':'
        && bytes[16] == b':'
        && bytes[19] == b'.'
        && bytes[26] == b'Z'
        && [
            0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18, 20, 21, 22, 23, 24, 25,
        ]
        .iter()
        .all(|&index| bytes[index].is_ascii_digit());
    assert!(
        well_formed,
        "not an RFC 3339 UTC timestamp with microseconds: {text:?}"
    );
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Unpadded base64url, as used in JWTs.
pub fn b64url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b0 = u32::from(chunk[0]);
        let b1 = u32::from(chunk.get(1).copied().unwrap_or(0));
        let b2 = u32::from(chunk.get(2).copied().unwrap_or(0));
        let group = (b0 << 16) | (b1 << 8) | b2;
        for position in 0..=chunk.len() {
            let sextet = (group >> (18 - 6 * position)) & 63;
            out.push(char::from(BASE64URL[sextet as usize]));
        }
    }
    out
}

fn b64url_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let sextet = BASE64URL
            .iter()
            .position(|&candidate| candidate == byte)
            .unwrap_or_else(|| panic!("not base64url: {text:?}"));
        buffer = (buffer << 6) | sextet as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((buffer >> bits) & 0xff) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    out
}

/// The decoded JSON of one part of a JWT: 0 = header, 1 = claims.
pub fn jwt_part(token: &str, index: usize) -> Value {
    let segments: Vec<&str> = token.split('.').collect();
    assert_eq!(
        segments.len(),
        3,
        "a JWT has three dot-separated parts: {token}"
    );
    serde_json::from_slice(&b64url_decode(segments[index]))
        .unwrap_or_else(|error| panic!("part {index} of {token} is not JSON: {error}"))
}

/// A `simple-chat serve` child process, killed when the test ends, pass or fail.
pub struct ServerProcess(std::process::Child);

impl ServerProcess {
    /// SIGKILL, as a crash would: nothing gets to finish.
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `command` (the binary with its environment set, e.g. `DATABASE_URL`) as
/// `serve --bind 127.0.0.1:<free port>` and waits until `/healthz` answers; returns the process
/// and its `http://` address.
pub async fn serve_process(mut command: std::process::Command) -> (ServerProcess, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|probe| probe.local_addr())
        .expect("find a free port")
        .port();
    let bind = format!("127.0.0.1:{port}");
    let mut server = ServerProcess(
        command
            .args(["serve", "--bind", bind.as_str()])
            .stdout(std::process::Stdio::null())
            // Its logs show with the test's when TEST_LOG is set.
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            })
            .spawn()
            .expect("start simple-chat serve"),
    );
    let address = format!("http://{bind}");
    let client = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .is_err()
    {
        if let Some(status) = server.0.try_wait().expect("check the server process") {
            panic!("simple-chat serve exited early: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "simple-chat serve did not answer within 60 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    (server, address)
}
