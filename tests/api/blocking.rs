//! Blocking, in both directions: no new thread, no post, no typing, no presence between the two;
//! history stays readable; the blocked user is not told.

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::{
    helpers::{PASSWORD, TestApp, parts, results, spawn_app},
    realtime::{assert_quiet, connect},
};

const CANNOT: &str = "You cannot message this user.";

async fn block(app: &TestApp, token: &str, user: i64, on: bool) -> u16 {
    let path = format!("/api/me/blocks/{user}/");
    let method = if on {
        reqwest::Method::PUT
    } else {
        reqwest::Method::DELETE
    };
    parts(
        app.request(method, &path, Some(token))
            .send()
            .await
            .unwrap(),
    )
    .await
    .0
}

async fn post(app: &TestApp, token: &str, thread: i64) -> (u16, serde_json::Value) {
    let path = format!("/thread/{thread}/message/");
    parts(
        app.post_json(
            &path,
            Some(token),
            &json!({"messages": [{"text": "hello?"}]}),
        )
        .await,
    )
    .await
}

#[tokio::test]
async fn blocks_are_listed_and_checked() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let bob_id = app.create_user("bob", PASSWORD).await;
    assert_eq!(block(&app, &alice, bob_id, true).await, 204);
    assert_eq!(
        block(&app, &alice, bob_id, true).await,
        204,
        "again changes nothing"
    );
    assert_eq!(block(&app, &alice, 999_999, true).await, 404);
    assert_eq!(block(&app, &alice, alice_id, true).await, 400);
    let list = app.get_ok("/api/me/blocks/", &alice).await;
    assert_eq!(list["count"], 1);
    assert_eq!(results(&list)[0], json!({"id": bob_id, "username": "bob"}));
    assert_eq!(block(&app, &alice, bob_id, false).await, 204);
    assert_eq!(app.get_ok("/api/me/blocks/", &alice).await["count"], 0);
}

#[tokio::test]
async fn either_block_stops_posting_both_ways_but_history_stays() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    app.post_messages(&chat.alice, chat.thread_id, &["before"])
        .await;
    for (blocker, blocker_token) in [(chat.alice_id, &chat.alice), (chat.bob_id, &chat.bob)] {
        let blocked = if blocker == chat.alice_id {
            chat.bob_id
        } else {
            chat.alice_id
        };
        assert_eq!(block(&app, blocker_token, blocked, true).await, 204);
        for token in [&chat.alice, &chat.bob] {
            let (status, body) = post(&app, token, chat.thread_id).await;
            assert_eq!((status, body["detail"].as_str()), (403, Some(CANNOT)));
            // The history is still there for both.
            assert_eq!(app.message_count(token, chat.thread_id).await, 1);
        }
        assert_eq!(block(&app, blocker_token, blocked, false).await, 204);
    }
    let (status, _) = post(&app, &chat.bob, chat.thread_id).await;
    assert_eq!(status, 201, "unblocked: posting works again");
}

#[tokio::test]
async fn a_blocked_pair_cannot_start_a_thread_and_the_blocked_one_is_not_told_who() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;
    let (_, bob) = app.login_new_user("bob").await;
    let bob_id = app.get_ok("/api/me/", &bob).await["id"].as_i64().unwrap();
    assert_eq!(block(&app, &alice, bob_id, true).await, 204);
    for token in [&alice, &bob] {
        let request = json!({"user1": "alice", "user2": "bob"});
        let (status, body) =
            parts(app.post_json("/chat/thread/", Some(token), &request).await).await;
        assert_eq!((status, body["detail"].as_str()), (403, Some(CANNOT)));
    }
    // Bob sees nothing of the block: not in his list, no event.
    assert_eq!(app.get_ok("/api/me/blocks/", &bob).await["count"], 0);
    let events = app.get_ok("/api/events/?since=0&timeout=0", &bob).await;
    assert_eq!(events["events"], json!([]));
}

#[tokio::test]
async fn no_typing_and_no_presence_between_a_blocked_pair() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    assert_eq!(block(&app, &chat.bob, chat.alice_id, true).await, 204);
    let (mut bob_socket, _) = connect(&app, &chat.bob, None).await;
    let (mut alice_socket, _) = connect(&app, &chat.alice, None).await;
    let frame = json!({"type": "typing", "thread": chat.thread_id}).to_string();
    alice_socket.send(Message::text(frame)).await.unwrap();
    // Neither typing nor alice's coming online reaches bob.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(700);
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout_at(deadline, futures_util::StreamExt::next(&mut bob_socket)).await
    {
        if let Message::Text(text) = message {
            panic!("bob received {text}");
        }
    }
    let path = format!("/api/presence/?users={}", chat.alice_id);
    assert_eq!(app.get_ok(&path, &chat.bob).await, json!({}));
    let path = format!("/api/presence/?users={}", chat.bob_id);
    assert_eq!(app.get_ok(&path, &chat.alice).await, json!({}));
    assert_quiet(&mut alice_socket).await;
}
