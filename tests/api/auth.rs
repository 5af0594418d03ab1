//! Signing in: credentials, login throttling, and refusing requests without valid credentials.
//! (Refreshing, verifying and the end of tokens are in `tokens`.)

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    PASSWORD, assert_detail, assert_keys, b64url_encode, id, jwt_part, parts, spawn_app,
    spawn_app_with,
};

const NO_ACCOUNT: &str = "No active account found with the given credentials";
const NO_CREDENTIALS: &str = "Authentication credentials were not provided.";

pub fn assert_user_id_claim(claims: &Value, user_id: i64) {
    let claim = &claims["user_id"];
    assert!(
        *claim == json!(user_id) || *claim == json!(user_id.to_string()),
        "user_id claim {claim} is not {user_id}"
    );
}

/// 401 with simplejwt's `token_not_valid` code.
pub fn assert_token_not_valid(status: u16, body: &Value) {
    assert_eq!(status, 401, "{body}");
    assert_detail(body);
    assert_eq!(body["code"], "token_not_valid", "{body}");
}

/// Replaces the claims of a signed token, keeping its header and signature.
pub fn with_claims(token: &str, claims: &Value) -> String {
    let segments: Vec<&str> = token.split('.').collect();
    format!(
        "{}.{}.{}",
        segments[0],
        b64url_encode(claims.to_string().as_bytes()),
        segments[2]
    )
}

#[tokio::test]
async fn signing_in_returns_an_access_and_a_refresh_token() {
    let app = spawn_app().await;
    let alice_id = app.create_user("alice", PASSWORD).await;

    let (status, body) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_keys(&body, &["access", "refresh"]);
    let access = body["access"].as_str().expect("access token");
    let refresh = body["refresh"].as_str().expect("refresh token");
    for token in [access, refresh] {
        let header = jwt_part(token, 0);
        assert_eq!(header["alg"], "HS256", "{header}");
    }
    let access_claims = jwt_part(access, 1);
    let refresh_claims = jwt_part(refresh, 1);
    assert_eq!(access_claims["token_type"], "access");
    assert_eq!(refresh_claims["token_type"], "refresh");
    for claims in [&access_claims, &refresh_claims] {
        assert_user_id_claim(claims, alice_id);
        assert!(
            claims["jti"].as_str().is_some_and(|jti| !jti.is_empty()),
            "{claims}"
        );
    }
    assert_ne!(access_claims["jti"], refresh_claims["jti"]);
    let lifetime = |claims: &Value| {
        claims["exp"].as_i64().expect("exp") - claims["iat"].as_i64().expect("iat")
    };
    assert_eq!(
        lifetime(&access_claims),
        5 * 60,
        "access tokens last 5 minutes"
    );
    assert_eq!(
        lifetime(&refresh_claims),
        24 * 60 * 60,
        "refresh tokens last 1 day"
    );
}

#[tokio::test]
async fn token_lifetimes_are_configurable() {
    let app = spawn_app_with(|config| {
        config.access_token_lifetime = Duration::from_secs(90);
        config.refresh_token_lifetime = Duration::from_secs(3600);
    })
    .await;
    app.create_user("alice", PASSWORD).await;

    let (access, refresh) = app.token_pair("alice", PASSWORD).await;

    let access_claims = jwt_part(&access, 1);
    let refresh_claims = jwt_part(&refresh, 1);
    assert_eq!(
        access_claims["exp"].as_i64().unwrap() - access_claims["iat"].as_i64().unwrap(),
        90
    );
    assert_eq!(
        refresh_claims["exp"].as_i64().unwrap() - refresh_claims["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn an_access_token_authenticates_api_requests() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;

    let me = app.get_ok("/api/me/", &alice).await;

    assert_eq!(id(&me), alice_id);
    assert_eq!(me["username"], "alice");
}

#[tokio::test]
async fn a_wrong_password_is_refused() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;

    let (status, body) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "alice", "password": "Wrong-pass-99"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": NO_ACCOUNT}));
}

#[tokio::test]
async fn an_unknown_username_is_refused_like_a_wrong_password() {
    let app = spawn_app().await;

    let (status, body) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": "nobody", "password": PASSWORD}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 401);
    assert_eq!(body, json!({"detail": NO_ACCOUNT}));
}

#[tokio::test]
async fn signing_in_requires_username_and_password() {
    let app = spawn_app().await;

    let (status, body) = parts(app.post_json("/api/token/", None, &json!({})).await).await;

    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );
}

#[tokio::test]
async fn repeated_failed_logins_are_throttled_with_retry_after() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    app.create_user("bob", PASSWORD).await;
    let wrong = json!({"username": "alice", "password": "Wrong-pass-99"});
    for attempt in 1..=5 {
        let (status, body) = parts(app.post_json("/api/token/", None, &wrong).await).await;
        assert_eq!(status, 401, "failed attempt {attempt}: {body}");
    }

    // Even the right password is refused now.
    let response = app
        .post_json(
            "/api/token/",
            None,
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await;

    assert_eq!(response.status().as_u16(), 429);
    let retry_after = response
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .expect("an ASCII Retry-After")
        .parse::<u64>()
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    let (_, body) = parts(response).await;
    assert_detail(&body);
    // Other usernames are not affected.
    app.token("bob", PASSWORD).await;
}

#[tokio::test]
async fn the_login_throttle_is_configurable_and_ends_with_its_window() {
    let app = spawn_app_with(|config| {
        config.login_failures_allowed = 2;
        config.login_throttle_window = Duration::from_secs(1);
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    let wrong = json!({"username": "alice", "password": "Wrong-pass-99"});
    let right = json!({"username": "alice", "password": PASSWORD});
    for _ in 0..2 {
        let (status, _) = parts(app.post_json("/api/token/", None, &wrong).await).await;
        assert_eq!(status, 401);
    }

    let (throttled, _) = parts(app.post_json("/api/token/", None, &right).await).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (after_window, body) = parts(app.post_json("/api/token/", None, &right).await).await;

    assert_eq!(throttled, 429);
    assert_eq!(after_window, 200, "{body}");
}

#[tokio::test]
async fn every_protected_endpoint_refuses_a_request_without_credentials() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let t = c.thread_id;
    let u = c.alice_id;
    let message_body = json!({"messages": [{"text": "hi"}]});
    let mark_body = json!({"messages_ids": [1]});
    let thread_body = json!({"user1": "alice", "user2": "bob"});
    let user_body = json!({"username": "zed", "password": PASSWORD});
    let cases = [
        (Method::GET, "/api/me/".to_owned(), Value::Null),
        (Method::GET, "/api/users/".to_owned(), Value::Null),
        (Method::POST, "/api/users/".to_owned(), user_body),
        (Method::GET, format!("/api/users/{u}/"), Value::Null),
        (
            Method::PATCH,
            format!("/api/users/{u}/"),
            json!({"first_name": "X"}),
        ),
        (Method::DELETE, format!("/api/users/{u}/"), Value::Null),
        (Method::POST, "/chat/thread/".to_owned(), thread_body),
        (Method::GET, format!("/chat/thread/{t}/"), Value::Null),
        (Method::DELETE, format!("/chat/thread/{t}/"), Value::Null),
        (Method::GET, format!("/chat/user/{u}/thread/"), Value::Null),
        (Method::GET, format!("/thread/{t}/message/"), Value::Null),
        (
            Method::POST,
            format!("/thread/{t}/message/"),
            message_body.clone(),
        ),
        (
            Method::GET,
            format!("/chat/thread/{t}/message/"),
            Value::Null,
        ),
        (
            Method::POST,
            format!("/chat/thread/{t}/message/"),
            message_body,
        ),
        (Method::POST, "/message/".to_owned(), mark_body.clone()),
        (Method::PATCH, "/message/".to_owned(), mark_body.clone()),
        (Method::POST, "/chat/messages/".to_owned(), mark_body),
        (Method::GET, format!("/user/{u}/message/"), Value::Null),
        (Method::GET, format!("/chat/user/{u}/message/"), Value::Null),
    ];

    for (method, path, body) in cases {
        let mut request = app.request(method.clone(), &path, None);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.expect("send the request");
        let (status, answer) = parts(response).await;

        assert_eq!(status, 401, "{method} {path}: {answer}");
        assert_eq!(answer, json!({"detail": NO_CREDENTIALS}), "{method} {path}");
    }
    // Nothing changed: the thread and the user are still there.
    assert_eq!(app.thread_ids(&c.alice, c.alice_id).await, [c.thread_id]);
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_malformed_bearer_token_is_refused() {
    let app = spawn_app().await;

    for token in ["not-a-token", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30", "..."] {
        let (status, body) = parts(app.get("/api/me/", Some(token)).await).await;

        assert_token_not_valid(status, &body);
    }
}

#[tokio::test]
async fn another_authorization_scheme_is_not_accepted() {
    let app = spawn_app().await;
    let response = app
        .request(Method::GET, "/api/me/", None)
        .header("authorization", "Basic YWRtaW46YWRtaW4tcGFzcy0xMjM=")
        .send()
        .await
        .expect("send the request");

    let (status, body) = parts(response).await;

    assert_eq!(status, 401, "{body}");
    assert_detail(&body);
}
