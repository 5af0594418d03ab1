//! Real time: the per-user event log over WebSocket (`/ws`) and long poll (`/api/events/`).

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::{
    MaybeTlsStream, WebSocketStream, connect_async,
    tungstenite::{Error as WsError, Message},
};

use crate::helpers::{TestApp, id, parts, spawn_app, spawn_app_with};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Opens `/ws` with a token (and `since`), and reads the hello frame; returns the socket and
/// the hello's seq.
pub async fn connect(app: &TestApp, token: &str, since: Option<i64>) -> (Socket, i64) {
    let mut url = format!(
        "{}/ws?token={token}",
        app.address.replace("http://", "ws://")
    );
    if let Some(since) = since {
        url.push_str(&format!("&since={since}"));
    }
    let (mut socket, _) = connect_async(url).await.expect("open the WebSocket");
    let hello = next_frame(&mut socket).await;
    assert_eq!(hello["type"], "hello", "first frame: {hello}");
    let seq = hello["seq"].as_i64().expect("hello states the seq");
    (socket, seq)
}

/// The next JSON frame of the log (skipping pings and the ephemeral `presence` and `typing`
/// frames); panics after 5 s.
pub async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let frame = next_any_frame(socket).await;
        if frame["type"] != "presence" && frame["type"] != "typing" {
            return frame;
        }
    }
}

/// The next JSON frame, ephemeral ones included (skipping pings); panics after 5 s.
pub async fn next_any_frame(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
            .expect("the socket is open")
            .expect("a valid frame");
        match message {
            Message::Text(text) => return serde_json::from_str(&text).expect("a JSON frame"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Asserts that no JSON frame of the log arrives within a short while.
pub async fn assert_quiet(socket: &mut Socket) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Err(_) => return,
            Ok(Some(Ok(Message::Ping(_)))) => {}
            Ok(Some(Ok(Message::Text(text))))
                if text.contains(r#""type":"presence""#) || text.contains(r#""type":"typing""#) => {
            }
            Ok(other) => panic!("expected no frame, got {other:?}"),
        }
    }
}

/// The HTTP status a refused WebSocket handshake answered.
pub async fn refused_status(url: String) -> u16 {
    match connect_async(url).await {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("the WebSocket was accepted"),
    }
}

pub fn ws_url(app: &TestApp, query: &str) -> String {
    format!("{}/ws{query}", app.address.replace("http://", "ws://"))
}

#[tokio::test]
async fn the_first_frame_states_the_current_seq() {
    let app = spawn_app().await;
    let (_, carol) = app.login_new_user("carol").await;
    let (_, fresh) = connect(&app, &carol, None).await;
    assert_eq!(fresh, 0, "a user without events is at seq 0");

    let chat = app.conversation().await;
    let (_, bob_seq) = connect(&app, &chat.bob, None).await;
    assert_eq!(bob_seq, 1, "thread.created is bob's first event");
}

#[tokio::test]
async fn bob_receives_message_created_when_alice_posts() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut bob, seq) = connect(&app, &chat.bob, None).await;

    let posted = app
        .post_messages(&chat.alice, chat.thread_id, &["hi bob"])
        .await;

    let frame = next_frame(&mut bob).await;
    assert_eq!(frame["type"], "message.created");
    assert_eq!(frame["seq"], seq + 1);
    assert_eq!(frame["message"], posted[0]);
    assert_eq!(frame["unread_count"], 1);
    assert_eq!(app.unread_count(&chat.bob, chat.bob_id).await, 1);
}

#[tokio::test]
async fn the_sender_sees_their_own_message_on_other_devices() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut alice, _) = connect(&app, &chat.alice, None).await;

    app.post_messages(&chat.alice, chat.thread_id, &["from my phone"])
        .await;

    let frame = next_frame(&mut alice).await;
    assert_eq!(frame["type"], "message.created");
    assert_eq!(frame["message"]["text"], "from my phone");
    assert_eq!(frame["unread_count"], 0, "own messages are never unread");
}

#[tokio::test]
async fn alice_receives_messages_read_when_bob_marks() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let posted = app
        .post_messages(&chat.alice, chat.thread_id, &["one", "two"])
        .await;
    let ids: Vec<i64> = posted.iter().map(id).collect();
    let (mut alice, _) = connect(&app, &chat.alice, None).await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;

    let (status, body) = parts(
        app.post_json("/message/", Some(&chat.bob), &json!({"messages_ids": ids}))
            .await,
    )
    .await;
    assert_eq!((status, &body["marked"]), (200, &json!(2)));

    let receipt = next_frame(&mut alice).await;
    assert_eq!(receipt["type"], "messages.read");
    assert_eq!(receipt["thread"], chat.thread_id);
    assert_eq!(receipt["ids"], json!(ids));
    assert_eq!(receipt["reader"], chat.bob_id);
    assert_eq!(receipt["unread_count"], 0);
    let own_copy = next_frame(&mut bob).await;
    assert_eq!(own_copy["type"], "messages.read");
    assert_eq!(
        own_copy["unread_count"], 0,
        "bob's badge clears on his other devices"
    );
    assert_eq!(app.unread_count(&chat.bob, chat.bob_id).await, 0);
}

#[tokio::test]
async fn marking_nothing_new_emits_no_event() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let posted = app
        .post_messages(&chat.alice, chat.thread_id, &["one"])
        .await;
    let body = json!({"messages_ids": [id(&posted[0])]});
    app.post_json("/message/", Some(&chat.bob), &body).await;
    let (mut alice, _) = connect(&app, &chat.alice, None).await;

    let (status, again) = parts(app.post_json("/message/", Some(&chat.bob), &body).await).await;

    assert_eq!((status, &again["marked"]), (200, &json!(0)));
    assert_quiet(&mut alice).await;
}

#[tokio::test]
async fn an_outsider_receives_nothing() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let (mut carol_socket, _) = connect(&app, &carol, None).await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;

    app.post_messages(&chat.alice, chat.thread_id, &["private"])
        .await;

    assert_eq!(next_frame(&mut bob).await["type"], "message.created");
    assert_quiet(&mut carol_socket).await;
}

#[tokio::test]
async fn every_connection_of_a_user_receives_every_event() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut laptop, _) = connect(&app, &chat.bob, None).await;
    let (mut phone, _) = connect(&app, &chat.bob, None).await;

    app.post_messages(&chat.alice, chat.thread_id, &["to both"])
        .await;

    for socket in [&mut laptop, &mut phone] {
        let frame = next_frame(socket).await;
        assert_eq!(frame["message"]["text"], "to both");
    }
}

#[tokio::test]
async fn thread_creation_and_deletion_reach_both_participants() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;
    let (_, bob) = app.login_new_user("bob").await;
    let (mut alice_socket, _) = connect(&app, &alice, None).await;
    let (mut bob_socket, _) = connect(&app, &bob, None).await;

    let thread = app.create_thread(&alice, "alice", "bob").await;
    for socket in [&mut alice_socket, &mut bob_socket] {
        let frame = next_frame(socket).await;
        assert_eq!(frame["type"], "thread.created");
        assert_eq!(frame["thread"]["id"], thread["id"]);
        assert_eq!(
            frame["thread"]["participants_list"],
            json!(["alice", "bob"])
        );
    }

    let deleted = app
        .delete(&format!("/chat/thread/{}/", id(&thread)), Some(&bob))
        .await;
    assert_eq!(deleted.status(), 204);
    for socket in [&mut alice_socket, &mut bob_socket] {
        let frame = next_frame(socket).await;
        assert_eq!(frame["type"], "thread.deleted");
        assert_eq!(frame["thread"], thread["id"]);
    }
}

#[tokio::test]
async fn bad_tokens_and_bad_since_are_refused_before_the_upgrade() {
    let app = spawn_app().await;
    let (_, refresh) = app
        .token_pair("admin", crate::helpers::ADMIN_PASSWORD)
        .await;
    let chat = app.conversation().await;

    assert_eq!(refused_status(ws_url(&app, "")).await, 401);
    assert_eq!(refused_status(ws_url(&app, "?token=garbage")).await, 401);
    assert_eq!(
        refused_status(ws_url(&app, &format!("?token={refresh}"))).await,
        401
    );
    let alice = &chat.alice;
    assert_eq!(
        refused_status(ws_url(&app, &format!("?token={alice}&since=abc"))).await,
        400
    );
    assert_eq!(
        refused_status(ws_url(&app, &format!("?token={alice}&since=-1"))).await,
        400
    );
    assert_eq!(
        refused_status(ws_url(&app, &format!("?token={alice}&since=99"))).await,
        400
    );
}

#[tokio::test]
async fn the_authorization_header_works_too() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url(
            &app, "?since=0",
        ))
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", chat.bob).parse().unwrap(),
    );
    let (mut socket, _) = connect_async(request).await.expect("open the WebSocket");
    assert_eq!(next_frame(&mut socket).await["type"], "hello");
    assert_eq!(next_frame(&mut socket).await["type"], "thread.created");
}

#[tokio::test]
async fn deactivating_a_user_closes_their_sockets() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;
    let admin = app.admin_token().await;

    let response = app
        .patch_json(
            &format!("/api/users/{}/", chat.bob_id),
            Some(&admin),
            &json!({"is_active": false}),
        )
        .await;
    assert_eq!(response.status(), 200);

    let closed = tokio::time::timeout(Duration::from_secs(5), bob.next())
        .await
        .expect("the socket closes within 5 s");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 4001),
        other => panic!("expected a close frame with 4001, got {other:?}"),
    }
}

/// Posts `per_task` messages from each of several concurrent clients (alice and bob in turn),
/// in batches of ten.
async fn post_concurrently(
    app: &TestApp,
    tokens: [&str; 2],
    thread: i64,
    tasks: usize,
    per_task: usize,
) {
    let mut handles = Vec::new();
    for task in 0..tasks {
        let client = app.client.clone();
        let url = format!("{}/thread/{thread}/message/", app.address);
        let token = tokens[task % 2].to_owned();
        handles.push(tokio::spawn(async move {
            for batch in 0..per_task / 10 {
                let messages: Vec<Value> = (0..10)
                    .map(|i| json!({"text": format!("task {task} batch {batch} #{i}")}))
                    .collect();
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"messages": messages}))
                    .send()
                    .await
                    .expect("post a batch");
                assert_eq!(response.status(), 201);
            }
        }));
    }
    for handle in handles {
        handle.await.expect("a posting task");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_reconnects_receives_every_missed_event_once_in_order() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (socket, last_seen) = connect(&app, &chat.bob, None).await;
    drop(socket);

    post_concurrently(&app, [&chat.alice, &chat.bob], chat.thread_id, 5, 100).await;

    let (mut bob, head) = connect(&app, &chat.bob, Some(last_seen)).await;
    assert_eq!(head, last_seen + 500);
    let mut message_ids = Vec::new();
    for expected in last_seen + 1..=head {
        let frame = next_frame(&mut bob).await;
        assert_eq!(frame["seq"], expected, "no gap, no reordering");
        assert_eq!(frame["type"], "message.created");
        message_ids.push(frame["message"]["id"].as_i64().unwrap());
    }
    assert_quiet(&mut bob).await;
    let mut unique = message_ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 500, "each message exactly once");
    assert_eq!(message_ids, unique, "in the order they were stored");

    // The long poll serves the same log.
    let (status, body) = parts(
        app.get(&format!("/api/events/?since={last_seen}"), Some(&chat.bob))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 500);
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (last_seen + 1..=head).collect::<Vec<_>>());
    let polled: Vec<i64> = events
        .iter()
        .map(|e| e["message"]["id"].as_i64().unwrap())
        .collect();
    assert_eq!(polled, message_ids);
    assert_eq!(body["seq"], head);
}

#[tokio::test]
async fn the_long_poll_answers_as_soon_as_an_event_arrives() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let poll = {
        let request = app
            .client
            .get(format!("{}/api/events/?timeout=30", app.address))
            .bearer_auth(&chat.bob);
        tokio::spawn(async move { request.send().await.expect("poll") })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();

    app.post_messages(&chat.alice, chat.thread_id, &["wake up"])
        .await;

    let (status, body) = parts(poll.await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(body["events"][0]["type"], "message.created");
    assert_eq!(body["events"][0]["message"]["text"], "wake up");
    assert_eq!(body["seq"], body["events"][0]["seq"]);
}

#[tokio::test]
async fn the_long_poll_times_out_with_no_events() {
    let app = spawn_app().await;
    let chat = app.conversation().await;

    let (status, body) = parts(
        app.get("/api/events/?since=1&timeout=1", Some(&chat.bob))
            .await,
    )
    .await;

    assert_eq!(status, 200);
    assert_eq!(body, json!({"events": [], "seq": 1}));
}

#[tokio::test]
async fn the_long_poll_checks_its_input() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    for query in ["?since=abc", "?since=-3", "?since=50", "?timeout=soon"] {
        let (status, body) = parts(
            app.get(&format!("/api/events/{query}"), Some(&chat.bob))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{query}: {body}");
    }
    let (status, _) = parts(app.get("/api/events/", None).await).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_since_older_than_the_kept_log_asks_for_a_resync() {
    let app = spawn_app_with(|config| config.event_retention = Duration::ZERO).await;
    let chat = app.conversation().await;
    app.post_messages(&chat.alice, chat.thread_id, &["soon forgotten"])
        .await;
    let pruned = app.app().prune_events_now().await.expect("prune");
    assert!(
        pruned >= 4,
        "thread.created and message.created for both: {pruned}"
    );

    let (mut bob, head) = connect(&app, &chat.bob, Some(0)).await;
    assert_eq!(head, 2);
    let frame = next_frame(&mut bob).await;
    assert_eq!(frame, json!({"type": "resync_required", "seq": 2}));

    let (status, body) = parts(app.get("/api/events/?since=0", Some(&chat.bob)).await).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["events"],
        json!([{"type": "resync_required", "seq": 2}])
    );

    // Live events still flow after the resync.
    app.post_messages(&chat.alice, chat.thread_id, &["new"])
        .await;
    let live = next_frame(&mut bob).await;
    assert_eq!(
        (live["type"].as_str(), live["seq"].as_i64()),
        (Some("message.created"), Some(3))
    );
}

#[tokio::test]
async fn shutting_down_closes_sockets_with_going_away() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;

    drop(app); // stops the server

    let closed = tokio::time::timeout(Duration::from_secs(5), bob.next())
        .await
        .expect("the socket closes within 5 s");
    match closed {
        Some(Ok(Message::Close(Some(frame)))) => assert_eq!(u16::from(frame.code), 1001),
        other => panic!("expected a close frame with 1001, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_cannot_keep_up_is_closed_and_resumes_without_loss() {
    let app = spawn_app_with(|config| {
        config.websocket_send_timeout = Duration::from_millis(500);
    })
    .await;
    let chat = app.conversation().await;
    // A client with a tiny receive window that stops reading after the hello.
    let address: std::net::SocketAddr = app.address.trim_start_matches("http://").parse().unwrap();
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(4096).unwrap();
    let stream = tcp.connect(address).await.unwrap();
    let url = ws_url(&app, &format!("?token={}", chat.bob));
    let (mut slow, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
        .await
        .expect("open the WebSocket");
    let hello = next_frame(&mut slow).await;
    let start = hello["seq"].as_i64().unwrap();

    // About 12 MB of frames: far more than the socket buffers between server and client hold.
    let text = "x".repeat(10_000);
    let batch: Vec<Value> = (0..100).map(|_| json!({"text": text})).collect();
    for _ in 0..12 {
        let response = app
            .post_json(
                &format!("/thread/{}/message/", chat.thread_id),
                Some(&chat.alice),
                &json!({ "messages": batch }),
            )
            .await;
        assert_eq!(response.status(), 201);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // What reached the client is contiguous; then the server has given up on it.
    let mut last_seen = start;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(frame["seq"], last_seen + 1);
                last_seen += 1;
            }
            Ok(Some(Ok(Message::Close(Some(frame))))) => {
                assert_eq!(u16::from(frame.code), 4008);
                break;
            }
            Ok(Some(Err(_)) | None | Some(Ok(Message::Close(None)))) => break,
            Ok(Some(Ok(_))) => {}
            Err(_) => panic!("the server kept the slow socket open"),
        }
    }
    assert!(
        last_seen < start + 1200,
        "the slow client was cut off: {last_seen}"
    );

    // Resuming from the last frame it saw delivers the rest, in order, once.
    let (mut resumed, head) = connect(&app, &chat.bob, Some(last_seen)).await;
    assert_eq!(head, start + 1200);
    for expected in last_seen + 1..=head {
        assert_eq!(next_frame(&mut resumed).await["seq"], expected);
    }
}
