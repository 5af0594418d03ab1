//! Random requests against every endpoint — odd methods, path ids, query strings, bodies,
//! content types and tokens — never get a 5xx, and a request that is refused changes nothing in
//! the database. Runs on both backends (with the rest of the suite).

use proptest::{
    prelude::*,
    test_runner::{Config as RunnerConfig, TestRunner},
};
use reqwest::Method;
use serde_json::{Value, json};
use simple_chat::store::transfer::{Rows, Table};

use crate::helpers::{TestApp, b64url_encode, spawn_app};

/// One request of the fuzzer.
#[derive(Clone, Debug)]
struct Fuzzed {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<(String, Vec<u8>)>,
    token: usize,
}

const TEMPLATES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/ws",
    "/api/events",
    "/api/token",
    "/api/token/refresh",
    "/api/token/verify",
    "/api/token/blacklist",
    "/api/me",
    "/api/users",
    "/api/users/{id}",
    "/chat/thread",
    "/chat/thread/{id}",
    "/chat/user/{id}/thread",
    "/thread/{id}/message",
    "/chat/thread/{id}/message",
    "/message",
    "/chat/messages",
    "/user/{id}/message",
    "/chat/user/{id}/message",
    "/api/nothing/{id}",
];

fn odd_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("1".to_owned()),
        Just("2".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("99999999999999999999999".to_owned()),
        Just("1e3".to_owned()),
        Just("a\u{0}b".to_owned()),
        Just("%00".to_owned()),
        Just("<img src=x onerror=alert(1)>".to_owned()),
        Just("' OR 1=1 --".to_owned()),
        Just("👩‍💻".to_owned()),
        Just("x".repeat(300)),
        "\\PC{0,12}",
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        odd_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("text".to_owned()),
                    Just("messages".to_owned()),
                    Just("messages_ids".to_owned()),
                    Just("username".to_owned()),
                    Just("password".to_owned()),
                    Just("user1".to_owned()),
                    Just("user2".to_owned()),
                    Just("refresh".to_owned()),
                    Just("token".to_owned()),
                    Just("sender".to_owned()),
                    Just("client_id".to_owned()),
                    Just("is_staff".to_owned()),
                    Just("is_superuser".to_owned()),
                    Just("is_active".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..5
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Option<(String, Vec<u8>)>> {
    prop_oneof![
        Just(None),
        json_value()
            .prop_map(|v| Some(("application/json".to_owned(), v.to_string().into_bytes()))),
        json_value().prop_map(|v| Some(("text/plain".to_owned(), v.to_string().into_bytes()))),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|bytes| Some(("application/json".to_owned(), bytes))),
        Just(Some((
            "application/json".to_owned(),
            json!({"messages": [{"text": "hello"}]})
                .to_string()
                .into_bytes(),
        ))),
    ]
}

fn request() -> impl Strategy<Value = Fuzzed> {
    let method = prop_oneof![
        Just(Method::GET),
        Just(Method::POST),
        Just(Method::PATCH),
        Just(Method::PUT),
        Just(Method::DELETE),
    ];
    let query = prop::collection::vec(
        (
            prop_oneof![
                Just("limit".to_owned()),
                Just("offset".to_owned()),
                Just("after".to_owned()),
                Just("before".to_owned()),
                Just("since".to_owned()),
                Just("timeout".to_owned()),
                Just("search".to_owned()),
                Just("token".to_owned()),
            ],
            odd_text(),
        ),
        0..3,
    );
    (
        method,
        prop::sample::select(TEMPLATES),
        odd_text(),
        query,
        body(),
        0..7usize,
    )
        .prop_map(|(method, template, id, query, body, token)| {
            // Long polls would wait for events; keep them short.
            let mut query: Vec<(String, String)> =
                query.into_iter().filter(|(k, _)| k != "timeout").collect();
            query.push(("timeout".to_owned(), "0".to_owned()));
            Fuzzed {
                method,
                path: template.replace("{id}", &urlencode(&id)),
                query,
                body,
                token,
            }
        })
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Every row of every table, to compare before and after a refused request.
async fn snapshot(app: &TestApp) -> Vec<Rows> {
    let mut tables = Vec::new();
    for table in Table::ALL {
        tables.push(app.app().store().dump(table, None, 100_000).await.unwrap());
    }
    tables
}

#[test]
fn random_requests_never_fail_the_server_and_refused_ones_change_nothing() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (app, tokens) = runtime.block_on(async {
        let app = spawn_app().await;
        let chat = app.conversation().await;
        app.post_messages(&chat.alice, chat.thread_id, &["one", "two"])
            .await;
        let (_, refresh) = app.token_pair("alice", crate::helpers::PASSWORD).await;
        let admin = app.admin_token().await;
        let forged = format!(
            "{}.{}.",
            b64url_encode(br#"{"alg":"none","typ":"JWT"}"#),
            b64url_encode(br#"{"token_type":"access","user_id":1,"exp":9999999999}"#)
        );
        let tokens = vec![
            None,
            Some(chat.alice.clone()),
            Some(chat.bob.clone()),
            Some(admin),
            Some(refresh),
            Some("garbage".to_owned()),
            Some(forged),
        ];
        (app, tokens)
    });
    let mut runner = TestRunner::new(RunnerConfig {
        cases: 300,
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    runner
        .run(&request(), |fuzzed| {
            runtime.block_on(async {
                let before = snapshot(&app).await;
                let mut request = app
                    .request(
                        fuzzed.method.clone(),
                        &fuzzed.path,
                        fuzzed.token_of(&tokens),
                    )
                    .query(&fuzzed.query);
                if let Some((content_type, bytes)) = &fuzzed.body {
                    request = request
                        .header("content-type", content_type)
                        .body(bytes.clone());
                }
                let response = request.send().await.expect("the server answers");
                let status = response.status().as_u16();
                let text = response.text().await.unwrap_or_default();
                prop_assert!(status < 500, "{fuzzed:?} answered {status}: {text}");
                if status >= 400 {
                    prop_assert!(
                        before == snapshot(&app).await,
                        "{fuzzed:?} was refused ({status}) but changed the data"
                    );
                }
                Ok(())
            })
        })
        .unwrap();
}

impl Fuzzed {
    fn token_of<'t>(&self, tokens: &'t [Option<String>]) -> Option<&'t str> {
        tokens[self.token].as_deref()
    }
}
