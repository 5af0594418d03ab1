//! Typing and presence: ephemeral frames (no `seq`, not on long poll) for conversation partners
//! only, on one instance and across two real `serve` instances on one PostgreSQL — including an
//! instance killed with SIGKILL, whose users must not stay "online".

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::{
    helpers::{Conversation, TestApp, parts, serve_database, serve_process, spawn_app},
    realtime::{Socket, connect, next_any_frame},
};

async fn typing(socket: &mut Socket, thread: i64) {
    let frame = json!({"type": "typing", "thread": thread}).to_string();
    socket.send(Message::text(frame)).await.unwrap();
}

/// The next frame of `type` within `within`, skipping others; `None` if none came.
async fn wait_for(socket: &mut Socket, kind: &str, within: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let message = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()?;
        match message.expect("the socket is open").expect("a valid frame") {
            Message::Text(text) => {
                let frame: Value = serde_json::from_str(&text).expect("a JSON frame");
                if frame["type"] == kind {
                    return Some(frame);
                }
            }
            Message::Ping(_) | Message::Pong(_) => {}
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

#[tokio::test]
async fn typing_reaches_the_other_participant_only_and_at_most_every_two_seconds() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;
    let (mut alice, _) = connect(&app, &chat.alice, None).await;
    let (mut alice_phone, _) = connect(&app, &chat.alice, None).await;
    let (mut carol_socket, _) = connect(&app, &carol, None).await;

    typing(&mut alice, chat.thread_id).await;
    let frame = wait_for(&mut bob, "typing", Duration::from_secs(2))
        .await
        .unwrap();
    assert_eq!(
        frame,
        json!({"type": "typing", "thread": chat.thread_id, "user": chat.alice_id})
    );
    // Within two seconds, more typing frames of alice in that thread are dropped.
    typing(&mut alice, chat.thread_id).await;
    typing(&mut alice_phone, chat.thread_id).await;
    assert!(
        wait_for(&mut bob, "typing", Duration::from_millis(800))
            .await
            .is_none()
    );
    // Neither alice's other socket nor an outsider hears it; an outsider's typing goes nowhere.
    assert!(
        wait_for(&mut alice_phone, "typing", Duration::from_millis(300))
            .await
            .is_none()
    );
    typing(&mut carol_socket, chat.thread_id).await;
    assert!(
        wait_for(&mut bob, "typing", Duration::from_millis(500))
            .await
            .is_none()
    );
    assert!(
        wait_for(&mut carol_socket, "typing", Duration::from_millis(100))
            .await
            .is_none()
    );
    // Not in the log, not on long poll.
    let log = app
        .get_ok("/api/events/?since=0&timeout=0", &chat.bob)
        .await;
    assert!(!log.to_string().contains("typing"), "{log}");
    // After the two seconds, typing gets through again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    typing(&mut alice, chat.thread_id).await;
    assert!(
        wait_for(&mut bob, "typing", Duration::from_secs(2))
            .await
            .is_some()
    );
}

async fn presence_of(app: &TestApp, token: &str, users: &[i64]) -> Value {
    let list: Vec<String> = users.iter().map(i64::to_string).collect();
    app.get_ok(&format!("/api/presence/?users={}", list.join(",")), token)
        .await
}

#[tokio::test]
async fn partners_see_each_other_come_and_go_and_nobody_else_does() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (carol_id, carol) = app.login_new_user("carol").await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;
    let before = presence_of(&app, &chat.bob, &[chat.alice_id, carol_id]).await;
    assert_eq!(
        before,
        json!({chat.alice_id.to_string(): {"online": false, "last_seen": null}})
    );

    let (alice, _) = connect(&app, &chat.alice, None).await;
    let online = wait_for(&mut bob, "presence", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        online,
        json!({"type": "presence", "user": chat.alice_id, "online": true, "last_seen": null})
    );
    let now = presence_of(&app, &chat.bob, &[chat.alice_id]).await;
    assert_eq!(now[chat.alice_id.to_string()]["online"], true);
    // A second socket of alice changes nothing.
    let (second, _) = connect(&app, &chat.alice, None).await;
    drop(second);
    assert!(
        wait_for(&mut bob, "presence", Duration::from_millis(500))
            .await
            .is_none()
    );

    drop(alice);
    let offline = wait_for(&mut bob, "presence", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(offline["online"], false);
    assert!(offline["last_seen"].is_string(), "{offline}");
    let after = presence_of(&app, &chat.bob, &[chat.alice_id]).await;
    assert_eq!(after[chat.alice_id.to_string()]["online"], false);
    assert_eq!(
        after[chat.alice_id.to_string()]["last_seen"],
        offline["last_seen"]
    );
    // And it is what the database holds soon after (SQLite writes it every few seconds).
    let store = app.app().store();
    let stored = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let states = store
                .presence_of(chat.bob_id, &[chat.alice_id])
                .await
                .expect("read presence");
            if json!(states[0].last_seen) == offline["last_seen"] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(stored.is_ok(), "last seen not stored within 10 s");

    // An outsider learns nothing, and bad lists are refused.
    assert_eq!(
        presence_of(&app, &carol, &[chat.alice_id, chat.bob_id]).await,
        json!({})
    );
    for bad in ["", "1,x", "-1"] {
        let (status, _) = parts(
            app.get(&format!("/api/presence/?users={bad}"), Some(&carol))
                .await,
        )
        .await;
        assert_eq!(status, 400, "{bad:?}");
    }
}

#[tokio::test]
async fn when_a_partner_was_last_seen_outlives_a_restart() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (mut bob, _) = connect(&app, &chat.bob, None).await;
    let (alice, _) = connect(&app, &chat.alice, None).await;
    wait_for(&mut bob, "presence", Duration::from_secs(5))
        .await
        .expect("alice online");
    drop(alice);
    let offline = wait_for(&mut bob, "presence", Duration::from_secs(5))
        .await
        .expect("alice offline");
    // Stopped at once: sooner than SQLite's periodic write of last seen times.
    let database_url = app.database_url.clone();
    let dir = app.stop().await;
    let again = serve_database(simple_chat::Config::new(database_url), dir).await;
    let after = presence_of(&again, &chat.bob, &[chat.alice_id]).await;
    assert_eq!(
        after,
        json!({chat.alice_id.to_string(): {"online": false, "last_seen": offline["last_seen"]}})
    );
}

fn serve_command(app: &TestApp) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simple-chat"));
    command.env("DATABASE_URL", &app.database_url);
    command
}

async fn connect_to(address: &str, token: &str) -> Socket {
    let url = format!("{}/ws?token={token}", address.replace("http://", "ws://"));
    let (mut socket, _) = connect_async(url).await.expect("open the WebSocket");
    let hello = next_any_frame(&mut socket).await;
    assert_eq!(hello["type"], "hello");
    socket
}

/// Two `serve` processes on the suite's PostgreSQL database, alice on one, bob on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_presence_cross_instances_and_a_killed_instance_goes_offline() {
    if !crate::postgres::on_postgres() {
        return; // several instances need PostgreSQL: this runs in the PostgreSQL re-run
    }
    let app = spawn_app().await;
    let Conversation {
        alice,
        alice_id,
        bob,
        thread_id,
        ..
    } = app.conversation().await;
    let (mut first, first_address) = serve_process(serve_command(&app)).await;
    let (_second, second_address) = serve_process(serve_command(&app)).await;
    let mut bob_socket = connect_to(&second_address, &bob).await;
    let mut alice_socket = connect_to(&first_address, &alice).await;

    let online = wait_for(&mut bob_socket, "presence", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        (online["user"].as_i64(), &online["online"]),
        (Some(alice_id), &json!(true))
    );
    typing(&mut alice_socket, thread_id).await;
    let frame = wait_for(&mut bob_socket, "typing", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(frame["user"], alice_id);

    // Alice's instance dies without closing her socket.
    first.kill();
    let started = Instant::now();
    let offline = wait_for(&mut bob_socket, "presence", Duration::from_secs(40))
        .await
        .expect("alice goes offline once her instance stops beating");
    assert_eq!(offline["online"], false);
    assert!(started.elapsed() < Duration::from_secs(40));
    let presence = reqwest::Client::new()
        .get(format!("{second_address}/api/presence/?users={alice_id}"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(presence[alice_id.to_string()]["online"], false);
    drop(alice_socket);
}
