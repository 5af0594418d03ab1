//! The API's description cannot drift from what the server does:
//! - every JSON answer the black-box suite receives is checked against the schema the
//!   description gives for its method, path and status ([`check_answer`], called by
//!   `helpers::parts` for every answer);
//! - every URL of the contract, in both spellings, is described, and every described
//!   operation is served (the router answers it, not its fallback).

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{parts, spawn_app};

/// The description, as the server generates it.
static DESCRIPTION: LazyLock<Value> = LazyLock::new(|| {
    serde_json::to_value(simple_chat::http::openapi()).expect("the description is JSON")
});

type Validators = Mutex<HashMap<(String, String, String), Option<Arc<jsonschema::Validator>>>>;
static VALIDATORS: LazyLock<Validators> = LazyLock::new(Default::default);

/// The described path template (`/chat/thread/{id}`) that `path` matches, if any.
fn template_of(path: &str) -> Option<String> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    DESCRIPTION["paths"]
        .as_object()?
        .keys()
        .find(|template| {
            let wanted: Vec<&str> = template.split('/').collect();
            wanted.len() == segments.len()
                && wanted
                    .iter()
                    .zip(&segments)
                    .all(|(w, s)| w == s || (w.starts_with('{') && !s.is_empty()))
        })
        .cloned()
}

/// The validator of the answer `status` to `method path`, `None` when the path or method is
/// not described (the router's fallback answers those).
fn validator(method: &Method, template: &str, status: u16) -> Option<Arc<jsonschema::Validator>> {
    let key = (
        method.as_str().to_lowercase(),
        template.to_owned(),
        status.to_string(),
    );
    if let Some(known) = VALIDATORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
    {
        return known.clone();
    }
    // Built outside the lock: a failed assertion here must not poison it for other tests.
    let built = (|| {
        let operation = &DESCRIPTION["paths"][template][&key.0];
        if operation.is_null() {
            return None;
        }
        let responses = &operation["responses"];
        let response = if responses[&key.2].is_null() {
            &responses["default"]
        } else {
            &responses[&key.2]
        };
        assert!(
            !response.is_null(),
            "{} {template} answered {status}, which its description does not list",
            key.0
        );
        let mut schema = response["content"]["application/json"]["schema"].clone();
        assert!(
            !schema.is_null(),
            "{} {template} answered {status} with a JSON body its description does not give",
            key.0
        );
        if let Value::Object(fields) = &mut schema {
            fields.insert("components".into(), DESCRIPTION["components"].clone());
        } else {
            schema = json!({"allOf": [schema], "components": DESCRIPTION["components"]});
        }
        let validator = jsonschema::validator_for(&schema)
            .unwrap_or_else(|error| panic!("the schema of {key:?} does not compile: {error}"));
        Some(Arc::new(validator))
    })();
    VALIDATORS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(key, built.clone());
    built
}

/// Panics when a JSON answer does not match its described schema.
pub fn check_answer(method: &Method, path: &str, status: u16, body: &Value) {
    let Some(template) = template_of(path) else {
        return;
    };
    let Some(validator) = validator(method, &template, status) else {
        return;
    };
    let problems: Vec<String> = validator
        .iter_errors(body)
        .map(|error| format!("{} at {}", error, error.instance_path()))
        .collect();
    assert!(
        problems.is_empty(),
        "{method} {path} answered {status} with a body that breaks its described schema:\n  {}\nbody: {body}",
        problems.join("\n  ")
    );
}

/// Every URL of the contract (both spellings where the original's README and code differ),
/// with its methods.
const CONTRACT: &[(&str, &[&str])] = &[
    ("/healthz", &["get"]),
    ("/ws", &["get"]),
    ("/api/events", &["get"]),
    ("/api/token", &["post"]),
    ("/api/token/refresh", &["post"]),
    ("/api/token/verify", &["post"]),
    ("/api/me", &["get"]),
    ("/api/users", &["get", "post"]),
    ("/api/users/{id}", &["get", "patch", "delete"]),
    ("/chat/thread", &["post"]),
    ("/chat/thread/{id}", &["get", "delete"]),
    ("/chat/user/{id}/thread", &["get"]),
    ("/thread/{id}/message", &["get", "post"]),
    ("/chat/thread/{id}/message", &["get", "post"]),
    ("/message", &["post", "patch"]),
    ("/chat/messages", &["post", "patch"]),
    ("/user/{id}/message", &["get"]),
    ("/chat/user/{id}/message", &["get"]),
];

#[test]
fn every_contract_url_is_described_with_its_methods() {
    for (path, methods) in CONTRACT {
        for method in *methods {
            assert!(
                DESCRIPTION["paths"][path][method].is_object(),
                "{method} {path} is missing from the description"
            );
        }
    }
}

#[tokio::test]
async fn every_described_operation_is_served() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let paths = DESCRIPTION["paths"].as_object().expect("paths");
    assert!(paths.len() >= CONTRACT.len());
    for (template, item) in paths {
        let path = template
            .replace("{id}", "1")
            .replace("{emoji}", "%F0%9F%91%8D");
        // The long poll would wait for events.
        let path = if path == "/api/events" {
            format!("{path}?timeout=0")
        } else {
            path
        };
        for method in item.as_object().expect("a path item").keys() {
            let method: Method = method.to_uppercase().parse().expect("an HTTP method");
            let response = app
                .request(method.clone(), &path, Some(&token))
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .expect("send");
            let status = response.status().as_u16();
            let json = response
                .headers()
                .get("content-type")
                .and_then(|t| t.to_str().ok())
                .is_some_and(|t| t.starts_with("application/json"));
            let body = if json {
                parts(response).await.1
            } else {
                Value::Null
            };
            // A 404 is the fallback's only for a path without ids (with ids, id 1 may not exist).
            let fallback =
                status == 404 && body == json!({"detail": "Not found."}) && !template.contains('{');
            let unrouted = status == 405 || fallback;
            assert!(
                !unrouted,
                "{method} {path} is described but not served: {status} {body}"
            );
        }
    }
}

#[tokio::test]
async fn the_description_and_the_reference_are_served() {
    let app = spawn_app().await;
    let (status, body) = parts(app.get("/api/schema/", None).await).await;
    assert_eq!(status, 200);
    assert!(
        body["openapi"].as_str().unwrap().starts_with("3.1"),
        "{body}"
    );
    assert_eq!(body, *DESCRIPTION);
    let page = app.get("/api/docs/", None).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Its assets come from this server, not from a CDN.
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    let script = app.get("/api/docs/swagger-ui-bundle.js", None).await;
    assert_eq!(script.status(), 200);
    assert!(script.headers().get("content-encoding").is_none());
    let plain = script.bytes().await.unwrap();
    assert!(plain.len() > 100_000, "{} bytes", plain.len());
    assert!(std::str::from_utf8(&plain).is_ok(), "plain JavaScript");

    // Stored gzipped: sent as it is to a client that accepts gzip.
    let gzipped = app
        .request(reqwest::Method::GET, "/api/docs/swagger-ui-bundle.js", None)
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    let compressed = gzipped.bytes().await.unwrap();
    assert!(compressed.len() < plain.len() / 2);
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut unpacked,
    )
    .unwrap();
    assert_eq!(unpacked, plain);
}
