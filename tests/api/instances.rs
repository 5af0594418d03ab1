//! Several instances on one database behave as one service: the same tokens, one thread per
//! pair, atomic batches, and (on PostgreSQL) real-time frames across instances.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};
use simple_chat::Config;
use tokio::sync::Barrier;
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::helpers::{TestApp, id, parts, serve_database, serve_process, spawn_app};

async fn two_instances() -> (TestApp, TestApp) {
    let first = spawn_app().await;
    let second = serve_database(Config::new(first.database_url.clone()), None).await;
    (first, second)
}

/// Sends the POSTs together, each to its own instance; returns (status, body) in order.
async fn post_together(requests: Vec<(&TestApp, String, String, Value)>) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(app, token, path, body)| {
            let request = app
                .client
                .post(format!("{}{path}", app.address))
                .bearer_auth(token)
                .json(&body);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                parts(request.send().await.expect("send")).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("a request task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_thread_creation_over_two_instances_makes_one_thread() {
    let (first, second) = two_instances().await;
    let (alice_id, alice) = first.login_new_user("alice").await;
    let (_, bob) = second.login_new_user("bob").await;
    let requests = (0..20)
        .map(|n| {
            let (app, token, body) = if n % 2 == 0 {
                (&first, &alice, json!({"user1": "alice", "user2": "bob"}))
            } else {
                (&second, &bob, json!({"user1": "bob", "user2": "alice"}))
            };
            (app, token.clone(), "/chat/thread/".to_owned(), body)
        })
        .collect();

    let answers = post_together(requests).await;

    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let ids: BTreeSet<i64> = answers.iter().map(|(_, body)| id(body)).collect();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 201 || *status == 200)
    );
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(first.thread_ids(&alice, alice_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_two_instances_are_stored_whole_or_not_at_all() {
    let (first, second) = two_instances().await;
    let chat = first.conversation().await;
    let path = format!("/thread/{}/message/", chat.thread_id);
    let batch = |tag: &str, bad: bool| {
        let mut messages: Vec<Value> = (0..10)
            .map(|i| json!({"text": format!("{tag} {i}")}))
            .collect();
        if bad {
            messages[7] = json!({"text": ""});
        }
        json!({ "messages": messages })
    };
    let mut requests = Vec::new();
    for n in 0..8 {
        let app = if n % 2 == 0 { &first } else { &second };
        let token = if n % 4 < 2 { &chat.alice } else { &chat.bob };
        requests.push((
            app,
            token.clone(),
            path.clone(),
            batch(&format!("batch {n}"), n == 5),
        ));
    }

    let answers = post_together(requests).await;

    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 201, 201, 201, 201, 400, 201, 201]);
    assert_eq!(first.message_count(&chat.alice, chat.thread_id).await, 70);
    assert_eq!(second.message_count(&chat.bob, chat.thread_id).await, 70);
    let page = first
        .get_ok(&format!("{path}?limit=200"), &chat.alice)
        .await;
    let texts: Vec<&str> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert!(
        !texts.iter().any(|t| t.starts_with("batch 5 ")),
        "nothing of the bad batch"
    );
}

/// Two `simple-chat serve` processes on one PostgreSQL database: a WebSocket client on one
/// receives what is posted through the other.
#[tokio::test]
async fn a_client_on_one_serve_process_receives_what_is_posted_through_the_other() {
    if !crate::postgres::on_postgres() {
        // One SQLite file is served by one instance; cross-instance delivery is PostgreSQL's.
        return;
    }
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let command = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simple-chat"));
        command.env("DATABASE_URL", &app.database_url);
        command
    };
    let (_first, first) = serve_process(command()).await;
    let (_second, second) = serve_process(command()).await;
    let url = format!(
        "{}/ws?token={}",
        first.replace("http://", "ws://"),
        chat.bob
    );
    let (mut bob, _) = connect_async(url).await.expect("open the WebSocket");
    let hello = bob.next().await.unwrap().unwrap();
    assert!(matches!(hello, Message::Text(ref t) if t.contains("hello")));

    let response = app
        .client
        .post(format!("{second}/thread/{}/message/", chat.thread_id))
        .bearer_auth(&chat.alice)
        .json(&json!({"messages": [{"text": "across instances"}]}))
        .send()
        .await
        .expect("post through the second process");
    let (status, posted) = parts(response).await;
    assert_eq!(status, 201, "{posted}");

    let frame = loop {
        let message = tokio::time::timeout(Duration::from_secs(5), bob.next())
            .await
            .expect("a frame within 5 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(frame["type"], "message.created");
    assert_eq!(frame["message"], posted[0]);
}
