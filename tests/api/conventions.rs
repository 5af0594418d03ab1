//! Conventions every endpoint follows: health check, JSON errors, trailing slashes, path ids,
//! content types and the body size limit.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN, ADMIN_PASSWORD, PASSWORD, assert_detail, assert_field_error, parts, spawn_app,
    spawn_app_with,
};

#[tokio::test]
async fn health_check_answers_ok_without_authentication() {
    // Arrange
    let app = spawn_app().await;

    for path in ["/healthz", "/healthz/"] {
        // Act
        let (status, body) = parts(app.get(path, None).await).await;

        // Assert
        assert_eq!(status, 200, "GET {path}: {body}");
        assert_eq!(body, json!({"status": "ok"}));
    }
}

#[tokio::test]
async fn an_unknown_url_is_a_json_404() {
    let app = spawn_app().await;
    let token = app.admin_token().await;

    for path in [
        "/no/such/page/",
        "/api/nothing",
        "/chat/thread/1/extra/",
        "/chat/",
    ] {
        for credentials in [None, Some(token.as_str())] {
            let (status, body) = parts(app.get(path, credentials).await).await;

            assert_eq!(status, 404, "GET {path}: {body}");
            assert_eq!(body, json!({"detail": "Not found."}), "GET {path}");
        }
    }
}

#[tokio::test]
async fn an_unsupported_method_is_a_405_naming_the_method() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let thread = format!("/chat/thread/{}/", c.thread_id);
    let messages = format!("/thread/{}/message/", c.thread_id);
    let cases = [
        (Method::PUT, "/chat/thread/"),
        (Method::PUT, thread.as_str()),
        (Method::PUT, messages.as_str()),
        (Method::DELETE, "/api/token/"),
        (Method::GET, "/api/token/"),
    ];

    for (method, path) in cases {
        let response = app
            .request(method.clone(), path, Some(&c.alice))
            .json(&json!({}))
            .send()
            .await
            .expect("send the request");
        let (status, body) = parts(response).await;

        assert_eq!(status, 405, "{method} {path}: {body}");
        assert_eq!(
            body,
            json!({"detail": format!("Method \"{method}\" not allowed.")})
        );
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_a_415() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.create_user("carol", PASSWORD).await;
    let cases = [
        (
            "/api/token/",
            None,
            "text/plain",
            format!("{{\"username\": \"{ADMIN}\", \"password\": \"{ADMIN_PASSWORD}\"}}"),
        ),
        (
            "/api/token/",
            None,
            "application/x-www-form-urlencoded",
            format!("username={ADMIN}&password={ADMIN_PASSWORD}"),
        ),
        (
            "/chat/thread/",
            Some(c.alice.as_str()),
            "text/plain",
            r#"{"user1": "alice", "user2": "carol"}"#.to_owned(),
        ),
    ];

    for (path, token, content_type, body) in cases {
        let response = app
            .request(Method::POST, path, token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("send the request");
        let (status, body) = parts(response).await;

        assert_eq!(status, 415, "POST {path} as {content_type}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("Unsupported media type"),
            "POST {path}: {body}"
        );
    }
    // Nothing was created: Alice still has only her thread with Bob.
    assert_eq!(app.thread_ids(&c.alice, c.alice_id).await, [c.thread_id]);
}

#[tokio::test]
async fn json_with_a_charset_parameter_is_accepted() {
    let app = spawn_app().await;

    let response = app
        .request(Method::POST, "/api/token/", None)
        .header("content-type", "application/json; charset=utf-8")
        .body(format!(
            "{{\"username\": \"{ADMIN}\", \"password\": \"{ADMIN_PASSWORD}\"}}"
        ))
        .send()
        .await
        .expect("send the request");
    let (status, body) = parts(response).await;

    assert_eq!(status, 200, "{body}");
    assert!(body["access"].is_string(), "{body}");
}

#[tokio::test]
async fn malformed_json_is_a_400_with_a_parse_error() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let messages = format!("/thread/{}/message/", c.thread_id);
    let cases = [
        ("/api/token/", None, r#"{"username": "admin","#),
        (
            "/chat/thread/",
            Some(c.alice.as_str()),
            r#"{"user1": "alice" "user2": "bob"}"#,
        ),
        (
            messages.as_str(),
            Some(c.alice.as_str()),
            r#"{"messages": [{"text": "hi"}"#,
        ),
        ("/message/", Some(c.bob.as_str()), "not json at all"),
    ];

    for (path, token, raw) in cases {
        let response = app
            .request(Method::POST, path, token)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("send the request");
        let (status, body) = parts(response).await;

        assert_eq!(status, 400, "POST {path} with {raw:?}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.starts_with("JSON parse error"),
            "POST {path}: {body}"
        );
    }
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_json_body_that_is_not_an_object_is_a_400() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    for raw in [json!([1, 2]), json!("text"), json!(42), Value::Null] {
        let path = format!("/thread/{}/message/", c.thread_id);
        let (status, body) = parts(app.post_json(&path, Some(&c.alice), &raw).await).await;

        assert_eq!(status, 400, "POST {raw}: {body}");
        assert!(body.is_object(), "a JSON error object: {body}");
    }
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_missing_field_is_reported_as_required() {
    let app = spawn_app().await;

    let (status, body) = parts(
        app.post_json("/api/token/", None, &json!({"username": ADMIN}))
            .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_eq!(body, json!({"password": ["This field is required."]}));
}

#[tokio::test]
async fn a_field_of_the_wrong_type_is_a_400_on_that_field() {
    let app = spawn_app().await;

    let (status, body) = parts(
        app.post_json(
            "/api/token/",
            None,
            &json!({"username": ADMIN, "password": ["not", "a", "string"]}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "password");
}

#[tokio::test]
async fn an_oversized_body_is_a_413_before_authentication() {
    let app = spawn_app().await;
    let huge = "x".repeat(2 * 1024 * 1024);

    for path in ["/chat/thread/", "/api/token/", "/thread/1/message/"] {
        let (status, body) = parts(
            app.post_json(
                path,
                None,
                &json!({"user1": huge, "user2": "bob", "username": "u"}),
            )
            .await,
        )
        .await;

        assert_eq!(status, 413, "POST {path}");
        assert_detail(&body);
    }
}

#[tokio::test]
async fn a_batch_of_maximal_four_byte_messages_is_a_413_and_stores_nothing() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    // 100 messages of 10,000 four-byte characters: each item is valid, the body is ~4 MB.
    let text = "😀".repeat(10_000);
    let messages: Vec<Value> = (0..100).map(|_| json!({"text": text})).collect();

    let path = format!("/thread/{}/message/", c.thread_id);
    let (status, body) = parts(
        app.post_json(&path, Some(&c.alice), &json!({"messages": messages}))
            .await,
    )
    .await;

    assert_eq!(status, 413);
    assert_detail(&body);
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let app = spawn_app_with(|config| config.body_limit = 4096).await;
    let c = app.conversation().await;
    let path = format!("/thread/{}/message/", c.thread_id);

    let (small_status, small_body) = parts(
        app.post_json(
            &path,
            Some(&c.alice),
            &json!({"messages": [{"text": "a".repeat(1000)}]}),
        )
        .await,
    )
    .await;
    let (big_status, big_body) = parts(
        app.post_json(
            &path,
            Some(&c.alice),
            &json!({"messages": [{"text": "a".repeat(5000)}]}),
        )
        .await,
    )
    .await;

    assert_eq!(small_status, 201, "{small_body}");
    assert_eq!(big_status, 413, "{big_body}");
    assert_detail(&big_body);
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 1);
}

#[tokio::test]
async fn ids_that_are_not_positive_integers_are_json_404s() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;
    let bad_ids = [
        "abc",
        "0",
        "-1",
        "1.5",
        "1e3",
        "99999999999999999999999",
        "9223372036854775808",
        "9223372036854775807",
    ];
    let templates = [
        "/chat/thread/{}/",
        "/thread/{}/message/",
        "/chat/thread/{}/message/",
        "/chat/user/{}/thread/",
        "/user/{}/message/",
        "/chat/user/{}/message/",
        "/api/users/{}/",
    ];

    for template in templates {
        for bad_id in bad_ids {
            let path = template.replace("{}", bad_id);

            let (status, body) = parts(app.get(&path, Some(&admin)).await).await;

            assert_eq!(status, 404, "GET {path}: {body}");
            assert_eq!(body, json!({"detail": "Not found."}), "GET {path}");
        }
    }
}

#[tokio::test]
async fn writes_to_bad_ids_are_json_404s() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    for bad_id in ["abc", "0", "-5", "99999999999999999999999"] {
        let messages = format!("/thread/{bad_id}/message/");
        let (post_status, post_body) = parts(
            app.post_json(
                &messages,
                Some(&admin),
                &json!({"messages": [{"text": "hi"}]}),
            )
            .await,
        )
        .await;
        let thread = format!("/chat/thread/{bad_id}/");
        let (delete_status, delete_body) = parts(app.delete(&thread, Some(&admin)).await).await;
        let user = format!("/api/users/{bad_id}/");
        let (patch_status, patch_body) = parts(
            app.patch_json(&user, Some(&admin), &json!({"first_name": "X"}))
                .await,
        )
        .await;

        assert_eq!(post_status, 404, "POST {messages}: {post_body}");
        assert_eq!(post_body, json!({"detail": "Not found."}));
        assert_eq!(delete_status, 404, "DELETE {thread}: {delete_body}");
        assert_eq!(delete_body, json!({"detail": "Not found."}));
        assert_eq!(patch_status, 404, "PATCH {user}: {patch_body}");
        assert_eq!(patch_body, json!({"detail": "Not found."}));
    }
}

#[tokio::test]
async fn every_get_url_answers_with_and_without_its_trailing_slash_without_redirecting() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["hello"]).await;
    let admin = app.admin_token().await;
    let cases = [
        ("/api/me/".to_owned(), c.alice.as_str()),
        (format!("/chat/thread/{}/", c.thread_id), c.alice.as_str()),
        (
            format!("/thread/{}/message/", c.thread_id),
            c.alice.as_str(),
        ),
        (
            format!("/chat/thread/{}/message/", c.thread_id),
            c.alice.as_str(),
        ),
        (
            format!("/chat/user/{}/thread/", c.alice_id),
            c.alice.as_str(),
        ),
        (format!("/user/{}/message/", c.bob_id), c.bob.as_str()),
        (format!("/chat/user/{}/message/", c.bob_id), c.bob.as_str()),
        ("/api/users/?search=al".to_owned(), admin.as_str()),
        (format!("/api/users/{}/", c.alice_id), admin.as_str()),
    ];

    for (path, token) in cases {
        let without_slash = path.replacen("/?", "?", 1);
        let without_slash = without_slash.strip_suffix('/').unwrap_or(&without_slash);

        let (with_status, with_body) = parts(app.get(&path, Some(token)).await).await;
        let (without_status, without_body) = parts(app.get(without_slash, Some(token)).await).await;

        assert_eq!(with_status, 200, "GET {path}: {with_body}");
        assert_eq!(without_status, 200, "GET {without_slash}: {without_body}");
        assert_eq!(with_body, without_body, "GET {path} and {without_slash}");
    }
}

#[tokio::test]
async fn every_write_url_answers_without_its_trailing_slash_without_redirecting() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (access, refresh) = app.token_pair("alice", PASSWORD).await;

    let (login, _) = parts(
        app.post_json(
            "/api/token",
            None,
            &json!({"username": "alice", "password": PASSWORD}),
        )
        .await,
    )
    .await;
    let (refreshed, _) = parts(
        app.post_json("/api/token/refresh", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;
    let (verified, _) = parts(
        app.post_json("/api/token/verify", None, &json!({"token": access}))
            .await,
    )
    .await;
    let (thread, _) = parts(
        app.post_json(
            "/chat/thread",
            Some(&c.alice),
            &json!({"user1": "alice", "user2": "bob"}),
        )
        .await,
    )
    .await;
    let (posted, posted_body) = parts(
        app.post_json(
            &format!("/thread/{}/message", c.thread_id),
            Some(&c.alice),
            &json!({"messages": [{"text": "a"}]}),
        )
        .await,
    )
    .await;
    let (posted_again, _) = parts(
        app.post_json(
            &format!("/chat/thread/{}/message", c.thread_id),
            Some(&c.alice),
            &json!({"messages": [{"text": "b"}]}),
        )
        .await,
    )
    .await;
    let first = posted_body[0]["id"].clone();
    let (marked, marked_body) = parts(
        app.post_json("/message", Some(&c.bob), &json!({"messages_ids": [first]}))
            .await,
    )
    .await;
    let (marked_again, _) = parts(
        app.post_json(
            "/chat/messages",
            Some(&c.bob),
            &json!({"messages_ids": [first]}),
        )
        .await,
    )
    .await;

    assert_eq!(login, 200);
    assert_eq!(refreshed, 200);
    assert_eq!(verified, 200);
    assert_eq!(thread, 200);
    assert_eq!(posted, 201);
    assert_eq!(posted_again, 201);
    assert_eq!(marked, 200);
    assert_eq!(marked_body, json!({"marked": 1}));
    assert_eq!(marked_again, 200);
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 2);
}
