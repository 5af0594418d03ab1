//! Every limit that keeps the server up, triggered while the server keeps serving everyone
//! else: password checks, the login throttle (per username and address, per address), slow and
//! idle connections, the connection cap, sockets per user, socket renewal and expiry, client
//! frame size, and the posting and thread rates.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use tokio_tungstenite::tungstenite::{Message, protocol::frame::coding::CloseCode};

use crate::{
    helpers::{PASSWORD, TestApp, parts, spawn_app_with},
    realtime::{Socket, connect, next_frame, refused_status, ws_url},
};

const TOKEN: &str = "/api/token/";

fn address(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_owned()
}

/// `/healthz` answers promptly: the server is serving others.
async fn assert_serving(app: &TestApp) {
    let started = Instant::now();
    let (status, _) = parts(app.get("/healthz", None).await).await;
    assert_eq!(status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "healthz took {:?}",
        started.elapsed()
    );
}

async fn login(app: &TestApp, username: &str, password: &str, from: Option<&str>) -> u16 {
    let mut request = app
        .request(reqwest::Method::POST, TOKEN, None)
        .json(&json!({"username": username, "password": password}));
    if let Some(from) = from {
        request = request.header("x-forwarded-for", from);
    }
    let response = request.send().await.expect("send");
    let status = response.status().as_u16();
    if status == 429 || status == 503 {
        assert!(
            response.headers().contains_key("retry-after"),
            "{status} without Retry-After"
        );
    }
    status
}

#[tokio::test]
async fn a_flood_of_logins_waits_its_turn_and_is_refused_with_503_past_the_queue() {
    let app = spawn_app_with(|config| {
        config.max_password_checks = 1;
        config.login_failures_per_address = 1_000_000;
    })
    .await;
    let logins = (0..300).map(|i| {
        let app = &app;
        async move { login(app, &format!("nobody{i}"), "wrong-password", None).await }
    });
    let flood = futures_util::future::join_all(logins);
    let serving = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_serving(&app).await;
    };
    let (statuses, ()) = tokio::join!(flood, serving);
    let refused = statuses.iter().filter(|s| **s == 503).count();
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(refused + checked, statuses.len(), "{statuses:?}");
    assert!(refused > 0, "no login was refused: {statuses:?}");
    assert!(checked > 0, "no login was checked: {statuses:?}");
    // Once the flood is over, logins are checked again.
    assert_eq!(login(&app, "nobody", "wrong-password", None).await, 401);
}

#[tokio::test]
async fn a_username_longer_than_any_valid_one_is_refused_before_hashing_or_counting() {
    let app = spawn_app_with(|config| config.login_failures_per_address = 6).await;
    let checks = app.app().password_checks();
    // An unknown but valid username costs a check (a dummy hash, so it takes as long as a
    // known one)...
    let before = checks.ran();
    assert_eq!(login(&app, "nobody", "whatever-password", None).await, 401);
    assert_eq!(checks.ran(), before + 1);
    // ...and one longer than any valid username costs none.
    let long = "a".repeat(151);
    for _ in 0..5 {
        assert_eq!(login(&app, &long, "whatever-password", None).await, 401);
    }
    assert_eq!(checks.ran(), before + 1);
    // None of them counted against the address.
    app.create_user("alice", PASSWORD).await;
    assert_eq!(login(&app, "alice", PASSWORD, None).await, 200);
}

#[tokio::test]
async fn parallel_guesses_for_one_username_get_at_most_five_checks() {
    let app = spawn_app_with(|config| config.max_password_checks = 2).await;
    app.create_user("alice", PASSWORD).await;
    let guesses = (0..40).map(|i| {
        let app = &app;
        async move { login(app, "alice", &format!("guess-{i}"), None).await }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let wrong = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(wrong <= 5, "{wrong} guesses were checked: {statuses:?}");
    assert_eq!(wrong + throttled, 40, "{statuses:?}");
    // The right password from here is throttled too.
    assert_eq!(login(&app, "alice", PASSWORD, None).await, 429);
    assert_serving(&app).await;
}

#[tokio::test]
async fn nobody_locks_a_user_out_from_another_address() {
    let app = spawn_app_with(|config| {
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    app.create_user("alice", PASSWORD).await;
    for _ in 0..5 {
        assert_eq!(
            login(&app, "alice", "wrong-password", Some("203.0.113.66")).await,
            401
        );
    }
    assert_eq!(
        login(&app, "alice", PASSWORD, Some("203.0.113.66")).await,
        429
    );
    // Alice, from her own address, signs in.
    assert_eq!(
        login(&app, "alice", PASSWORD, Some("198.51.100.7")).await,
        200
    );
}

#[tokio::test]
async fn forwarded_for_is_ignored_unless_the_proxy_is_trusted() {
    let app = spawn_app_with(|_| {}).await;
    app.create_user("alice", PASSWORD).await;
    for i in 0..5 {
        let from = format!("203.0.113.{i}");
        assert_eq!(
            login(&app, "alice", "wrong-password", Some(&from)).await,
            401
        );
    }
    // Claiming yet another address does not help: the header is not believed.
    assert_eq!(
        login(&app, "alice", PASSWORD, Some("198.51.100.7")).await,
        429
    );
}

#[tokio::test]
async fn one_address_is_limited_across_usernames() {
    let app = spawn_app_with(|config| config.login_failures_per_address = 3).await;
    app.create_user("alice", PASSWORD).await;
    for name in ["x1", "x2", "x3"] {
        assert_eq!(login(&app, name, "wrong-password", None).await, 401);
    }
    assert_eq!(login(&app, "x4", "wrong-password", None).await, 429);
    assert_eq!(login(&app, "alice", PASSWORD, None).await, 429);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let app =
        spawn_app_with(|config| config.connections.header_timeout = Duration::from_secs(1)).await;
    let mut slow = TcpStream::connect(address(&app)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    assert_serving(&app).await;
    let mut buffer = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buffer))
        .await
        .expect("the server closes the connection in time");
    assert_eq!(read.unwrap_or(0), 0, "the slow client got an answer");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_a_slow_answer_is_not() {
    let app =
        spawn_app_with(|config| config.connections.idle_timeout = Duration::from_secs(1)).await;
    let mut client = TcpStream::connect(address(&app)).await.unwrap();
    client
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let n = client.read(&mut buffer).await.unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
    let closed = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buffer))
        .await
        .expect("the idle connection is closed in time");
    assert_eq!(closed.unwrap_or(0), 0);
    // A request that takes longer than the idle timeout is not cut (a 2 s long poll).
    let (_, token) = app.login_new_user("carol").await;
    let (status, _) = parts(app.get("/api/events/?timeout=2", Some(&token)).await).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_a_place_frees() {
    let app = spawn_app_with(|config| config.connections.max_connections = 3).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut socket = TcpStream::connect(address(&app)).await.unwrap();
        socket
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buffer = [0u8; 512];
        let _ = socket.read(&mut buffer).await.unwrap();
        held.push(socket);
    }
    let mut waiting = TcpStream::connect(address(&app)).await.unwrap();
    waiting
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 512];
    let early = tokio::time::timeout(Duration::from_millis(500), waiting.read(&mut buffer)).await;
    assert!(
        early.is_err(),
        "a fourth connection was served while three were open"
    );
    held.pop();
    let n = tokio::time::timeout(Duration::from_secs(5), waiting.read(&mut buffer))
        .await
        .expect("served once a place is free")
        .unwrap();
    assert!(String::from_utf8_lossy(&buffer[..n]).starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn one_socket_too_many_is_refused_with_429_before_the_upgrade() {
    let app = spawn_app_with(|config| config.max_websockets_per_user = 2).await;
    let (_, alice) = app.login_new_user("alice").await;
    let (_, bob) = app.login_new_user("bob").await;
    let first = connect(&app, &alice, None).await;
    let second = connect(&app, &alice, None).await;
    assert_eq!(
        refused_status(ws_url(&app, &format!("?token={alice}"))).await,
        429
    );
    let _bobs = connect(&app, &bob, None).await;
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _third = connect(&app, &alice, None).await;
    drop(second);
}

/// The close frame's code, waiting at most `within`.
async fn close_code(socket: &mut Socket, within: Duration) -> CloseCode {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .expect("closed in time");
        match message {
            Some(Ok(Message::Close(Some(frame)))) => return frame.code,
            Some(Ok(Message::Close(None))) | None => panic!("closed without a code"),
            Some(Ok(_)) => continue,
            Some(Err(error)) => panic!("socket error {error}"),
        }
    }
}

#[tokio::test]
async fn a_socket_closes_when_its_token_expires_unless_renewed() {
    let app = spawn_app_with(|config| config.access_token_lifetime = Duration::from_secs(4)).await;
    app.create_user("alice", PASSWORD).await;
    let (access, refresh) = app.token_pair("alice", PASSWORD).await;
    let (mut unrenewed, _) = connect(&app, &access, None).await;
    let (mut renewed, _) = connect(&app, &access, None).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (status, body) = parts(
        app.post_json("/api/token/refresh/", None, &json!({"refresh": refresh}))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let fresh = body["access"].as_str().unwrap();
    renewed
        .send(Message::text(
            json!({"type": "auth", "token": fresh}).to_string(),
        ))
        .await
        .unwrap();
    assert_eq!(next_frame(&mut renewed).await, json!({"type": "auth.ok"}));
    assert_eq!(
        close_code(&mut unrenewed, Duration::from_secs(6)).await,
        CloseCode::Library(4001)
    );
    // The renewed socket outlives the first token and still streams.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, bob) = app.login_new_user("bob").await;
    app.create_thread(&bob, "alice", "bob").await;
    assert_eq!(next_frame(&mut renewed).await["type"], "thread.created");
    assert_eq!(
        close_code(&mut renewed, Duration::from_secs(6)).await,
        CloseCode::Library(4001)
    );
}

#[tokio::test]
async fn an_invalid_auth_frame_closes_the_socket_at_once() {
    let app = spawn_app_with(|_| {}).await;
    let (_, alice) = app.login_new_user("alice").await;
    let (_, bob) = app.login_new_user("bob").await;
    for bad in ["not-a-token".to_owned(), bob] {
        let (mut socket, _) = connect(&app, &alice, None).await;
        let frame = json!({"type": "auth", "token": bad}).to_string();
        socket.send(Message::text(frame)).await.unwrap();
        assert_eq!(
            close_code(&mut socket, Duration::from_secs(2)).await,
            CloseCode::Library(4001)
        );
    }
}

#[tokio::test]
async fn a_client_frame_over_16_kib_closes_the_socket_with_1009() {
    let app = spawn_app_with(|_| {}).await;
    let (_, alice) = app.login_new_user("alice").await;
    let (mut socket, _) = connect(&app, &alice, None).await;
    let big = json!({"type": "typing", "padding": "x".repeat(17 * 1024)}).to_string();
    socket.send(Message::text(big)).await.unwrap();
    assert_eq!(
        close_code(&mut socket, Duration::from_secs(2)).await,
        CloseCode::Size
    );
    // A frame at the limit is fine.
    let (mut fine, _) = connect(&app, &alice, None).await;
    let small = json!({"type": "noop", "padding": "x".repeat(15 * 1024)}).to_string();
    fine.send(Message::text(small)).await.unwrap();
    crate::realtime::assert_quiet(&mut fine).await;
}

#[tokio::test]
async fn posting_faster_than_the_post_rate_gets_429_and_stores_nothing() {
    // 6 a minute: the burst (one full batch) comes back one message every 10 s, so even a slow
    // machine cannot earn one back between the batch and the next post (at 600 a minute, a
    // batch that took over 100 ms on a loaded PostgreSQL did).
    let app = spawn_app_with(|config| config.post_rate = 6).await;
    let chat = app.conversation().await;
    let texts: Vec<String> = (0..100).map(|i| format!("m{i}")).collect();
    app.post_messages(&chat.alice, chat.thread_id, &texts).await;
    let path = format!("/thread/{}/message/", chat.thread_id);
    let response = app
        .post_json(
            &path,
            Some(&chat.alice),
            &json!({"messages": [{"text": "one more"}]}),
        )
        .await;
    assert!(response.headers().contains_key("retry-after"));
    let (status, _) = parts(response).await;
    assert_eq!(status, 429);
    assert_eq!(app.message_count(&chat.alice, chat.thread_id).await, 100);
    // Bob is not held back by Alice's pace.
    app.post_messages(&chat.bob, chat.thread_id, &["hi"]).await;
}

#[tokio::test]
async fn starting_threads_faster_than_the_thread_rate_gets_429_but_existing_ones_open() {
    let app = spawn_app_with(|config| config.thread_rate = 2).await;
    let (_, alice) = app.login_new_user("alice").await;
    for name in ["bob", "carol", "dave"] {
        app.create_user(name, PASSWORD).await;
    }
    app.create_thread(&alice, "alice", "bob").await;
    app.create_thread(&alice, "alice", "carol").await;
    let request = json!({"user1": "alice", "user2": "dave"});
    let response = app.post_json("/chat/thread/", Some(&alice), &request).await;
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(parts(response).await.0, 429);
    let again = json!({"user1": "alice", "user2": "bob"});
    let (status, _) = parts(app.post_json("/chat/thread/", Some(&alice), &again).await).await;
    assert_eq!(status, 200, "an existing thread still opens");
}
