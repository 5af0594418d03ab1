//! What an attacker or an unlucky client could do to the data, made impossible: NUL characters
//! (PostgreSQL cannot store them), links that copy the `Host` header or overflow, refresh tokens
//! that cannot be revoked, weak signing keys, deleted text lingering in event logs, and
//! transactions too large for a PostgreSQL notification.

use serde_json::{Value, json};
use simple_chat::{App, Config, store::NewUser};

use crate::helpers::{PASSWORD, TestApp, id, parts, spawn_app, spawn_app_with};

const NUL: &str = "Null characters are not allowed.";

#[tokio::test]
async fn a_nul_character_in_any_text_is_a_400_and_nothing_is_stored() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let path = format!("/thread/{}/message/", chat.thread_id);
    let cases = [
        (path.as_str(), json!({"messages": [{"text": "a\u{0}b"}]})),
        (
            path.as_str(),
            json!({"messages": [{"text": "ok", "client_id": "x\u{0}"}]}),
        ),
        (
            "/chat/thread/",
            json!({"user1": "alice", "user2": "b\u{0}ob"}),
        ),
        (
            "/api/token/",
            json!({"username": "al\u{0}ice", "password": PASSWORD}),
        ),
    ];
    for (path, body) in cases {
        let (status, answer) = parts(app.post_json(path, Some(&chat.alice), &body).await).await;
        assert_eq!(status, 400, "{path} {body}: {answer}");
        assert!(answer.to_string().contains(NUL), "{answer}");
    }
    assert_eq!(app.message_count(&chat.alice, chat.thread_id).await, 0);
    let (status, answer) =
        parts(app.get("/api/users/?search=a%00b", Some(&chat.alice)).await).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["search"], json!([NUL]));
}

#[tokio::test]
async fn links_start_with_the_public_url_whatever_the_host_header_says() {
    let app =
        spawn_app_with(|config| config.public_url = Some("https://chat.example.org".into())).await;
    let chat = app.conversation().await;
    app.post_messages(&chat.alice, chat.thread_id, &["1", "2", "3"])
        .await;
    let response = app
        .request(
            reqwest::Method::GET,
            &format!("/thread/{}/message/?limit=1", chat.thread_id),
            Some(&chat.alice),
        )
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    let (status, page) = parts(response).await;
    assert_eq!(status, 200);
    let next = page["next"].as_str().unwrap();
    assert!(
        next.starts_with(&format!(
            "https://chat.example.org/thread/{}/message",
            chat.thread_id
        )),
        "{next}"
    );
}

#[tokio::test]
async fn a_huge_offset_gives_an_empty_page_and_no_overflowed_link() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    app.post_messages(&chat.alice, chat.thread_id, &["1", "2"])
        .await;
    for path in [
        format!(
            "/thread/{}/message/?offset=9223372036854775807",
            chat.thread_id
        ),
        format!(
            "/chat/user/{}/thread/?offset=9223372036854775807&limit=200",
            chat.alice_id
        ),
        "/api/users/?offset=9223372036854775807".to_owned(),
    ] {
        let (status, page) = parts(app.get(&path, Some(&chat.alice)).await).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(page["results"], json!([]), "{path}");
        assert_eq!(page["next"], Value::Null, "{path}");
        let previous = page["previous"].as_str().unwrap_or_default();
        assert!(!previous.contains("offset=-"), "{previous}");
    }
}

#[tokio::test]
async fn a_blacklisted_refresh_token_never_works_again() {
    let app = spawn_app().await;
    app.create_user("alice", PASSWORD).await;
    let (_, refresh) = app.token_pair("alice", PASSWORD).await;
    let body = json!({"refresh": refresh});
    let (status, answer) = parts(app.post_json("/api/token/blacklist/", None, &body).await).await;
    assert_eq!((status, answer), (200, json!({})));
    let (status, _) = parts(app.post_json("/api/token/refresh/", None, &body).await).await;
    assert_eq!(status, 401);
    // Not a refresh token, or garbage: 401, and nothing is blacklisted.
    let (access, _) = app.token_pair("alice", PASSWORD).await;
    for bad in [access.as_str(), "garbage"] {
        let body = json!({"refresh": bad});
        let (status, _) = parts(app.post_json("/api/token/blacklist/", None, &body).await).await;
        assert_eq!(status, 401);
    }
    // Signing in again works.
    app.token_pair("alice", PASSWORD).await;
}

#[tokio::test]
async fn with_rotation_a_refresh_token_is_good_for_one_use() {
    let app = spawn_app_with(|config| config.rotate_refresh_tokens = true).await;
    app.create_user("alice", PASSWORD).await;
    let (_, refresh) = app.token_pair("alice", PASSWORD).await;
    let body = json!({"refresh": refresh});
    let (status, first) = parts(app.post_json("/api/token/refresh/", None, &body).await).await;
    assert_eq!(status, 200);
    let (status, _) = parts(app.post_json("/api/token/refresh/", None, &body).await).await;
    assert_eq!(status, 401, "the used token works a second time");
    let next = json!({"refresh": first["refresh"]});
    let (status, _) = parts(app.post_json("/api/token/refresh/", None, &next).await).await;
    assert_eq!(status, 200, "the rotated token works");
}

#[tokio::test]
async fn a_short_signing_key_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::new(crate::helpers::database_url(dir.path()));
    config.secret_key = Some("x".into());
    let error = App::build(config)
        .await
        .err()
        .expect("a 1-byte key is refused");
    assert!(error.to_string().contains("at least 32 bytes"), "{error}");
}

/// Every event of a user's log, from the start.
async fn whole_log(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, answer) =
        parts(app.get("/api/events/?since=0&timeout=0", Some(token)).await).await;
    assert_eq!(status, 200);
    answer["events"].as_array().unwrap().clone()
}

fn mentions(log: &[Value], text: &str) -> bool {
    log.iter().any(|event| event.to_string().contains(text))
}

#[tokio::test]
async fn deleting_a_thread_or_a_user_removes_their_text_from_every_stored_log() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    app.post_messages(&chat.alice, chat.thread_id, &["secret one"])
        .await;
    app.post_messages(&chat.bob, chat.thread_id, &["secret two"])
        .await;
    let before = whole_log(&app, &chat.bob).await;
    assert!(mentions(&before, "secret one"));
    let (status, _) = parts(
        app.delete(
            &format!("/chat/thread/{}/", chat.thread_id),
            Some(&chat.alice),
        )
        .await,
    )
    .await;
    assert_eq!(status, 204);
    for token in [&chat.alice, &chat.bob] {
        let log = whole_log(&app, token).await;
        assert_eq!(log.len(), before.len() + 1, "the seqs stay: {log:?}");
        assert!(
            !mentions(&log, "secret one") && !mentions(&log, "secret two"),
            "{log:?}"
        );
        assert_eq!(log.last().unwrap()["type"], "thread.deleted");
    }

    // A user deleted: the text of their threads leaves their partners' logs.
    let (_, carol) = app.login_new_user("carol").await;
    let thread = app.create_thread(&carol, "carol", "bob").await;
    app.post_messages(&carol, id(&thread), &["carol's secret"])
        .await;
    assert!(mentions(
        &whole_log(&app, &chat.bob).await,
        "carol's secret"
    ));
    let admin = app.admin_token().await;
    let carol_id = thread["participants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["username"] == "carol")
        .map(id)
        .unwrap();
    let (status, _) = parts(
        app.delete(&format!("/api/users/{carol_id}/"), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(status, 204);
    let log = whole_log(&app, &chat.bob).await;
    assert!(!mentions(&log, "carol's secret"), "{log:?}");
    assert_eq!(log.last().unwrap()["type"], "thread.deleted");
}

#[tokio::test]
async fn deleting_a_user_with_1200_threads_tells_every_partner() {
    let app = spawn_app().await;
    let store = app.app().store();
    let hash = store
        .user_by_username("admin")
        .await
        .unwrap()
        .unwrap()
        .password;
    let new_user = |name: String| NewUser {
        username: name,
        password_hash: hash.clone(),
        email: String::new(),
        first_name: String::new(),
        last_name: String::new(),
        is_active: true,
        is_staff: false,
        is_superuser: false,
    };
    let hub = store.create_user(new_user("hub".into())).await.unwrap();
    let mut last_partner = 0;
    for i in 0..1_200 {
        let partner = store.create_user(new_user(format!("p{i}"))).await.unwrap();
        store
            .create_thread(hub.id, partner.id, hub.id)
            .await
            .unwrap();
        last_partner = partner.id;
    }
    let admin = app.admin_token().await;
    let (status, body) = parts(
        app.delete(&format!("/api/users/{}/", hub.id), Some(&admin))
            .await,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (head, events) = store.events_after(last_partner, 0, 10).await.unwrap();
    assert_eq!(head, 2, "thread.created then thread.deleted");
    assert!(events[1].payload.contains("thread.deleted"));
}

#[tokio::test]
async fn readiness_states_the_version_and_schema() {
    let app = spawn_app().await;
    let (status, body) = parts(app.get("/readyz", None).await).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(body["schema"].as_str().unwrap().starts_with("00"), "{body}");
}

#[tokio::test]
async fn a_nul_character_in_an_admin_form_is_refused_before_anything_else() {
    let app = spawn_app().await;
    let response = app
        .request(reqwest::Method::POST, "/admin/login/", None)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("username=ad%00min&password=x&csrf_token=x")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("NUL"));
}
