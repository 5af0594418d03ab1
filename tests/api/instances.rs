//! Several `simple-chat serve` processes on one database behave as one service: the same
//! tokens, one thread per pair, atomic batches, and (on PostgreSQL) real-time frames across
//! instances.

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio_tungstenite::{connect_async, tungstenite::Message};

use crate::helpers::{ServerProcess, TestApp, id, parts, serve_process, spawn_app};

/// A test server (for arranging data) and two `serve` processes on its database.
struct Instances {
    app: TestApp,
    _processes: [ServerProcess; 2],
    addresses: [String; 2],
}

async fn two_instances() -> Instances {
    let app = spawn_app().await;
    let command = || {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_simple-chat"));
        command.env("DATABASE_URL", &app.database_url);
        command
    };
    let (first, first_address) = serve_process(command()).await;
    let (second, second_address) = serve_process(command()).await;
    Instances {
        app,
        _processes: [first, second],
        addresses: [first_address, second_address],
    }
}

/// Sends the POSTs together, each to its own address; returns (status, body) in order.
async fn post_together(
    client: &reqwest::Client,
    requests: Vec<(String, String, String, Value)>,
) -> Vec<(u16, Value)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(address, token, path, body)| {
            let request = client
                .post(format!("{address}{path}"))
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

#[tokio::test]
async fn a_token_issued_by_one_instance_is_accepted_by_the_other() {
    let instances = two_instances().await;
    let alice_id = instances
        .app
        .create_user("alice", crate::helpers::PASSWORD)
        .await;
    let client = &instances.app.client;
    let [first, second] = &instances.addresses;
    let credentials = json!({"username": "alice", "password": crate::helpers::PASSWORD});

    let (status, tokens) = parts(
        client
            .post(format!("{first}/api/token/"))
            .json(&credentials)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let access = tokens["access"].as_str().unwrap();
    let (status, me) = me_on(client, second, access).await;

    assert_eq!((status, id(&me)), (200, alice_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_thread_creation_over_two_instances_makes_one_thread() {
    let instances = two_instances().await;
    let app = &instances.app;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let (_, bob) = app.login_new_user("bob").await;
    let requests = (0..20)
        .map(|n| {
            let (token, body) = if n % 2 == 0 {
                (&alice, json!({"user1": "alice", "user2": "bob"}))
            } else {
                (&bob, json!({"user1": "bob", "user2": "alice"}))
            };
            let address = instances.addresses[n % 2].clone();
            (address, token.clone(), "/chat/thread/".to_owned(), body)
        })
        .collect();

    let answers = post_together(&app.client, requests).await;

    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let ids: BTreeSet<i64> = answers.iter().map(|(_, body)| id(body)).collect();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|(status, _)| *status == 201 || *status == 200)
    );
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(app.thread_ids(&alice, alice_id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_over_two_instances_are_stored_whole_or_not_at_all() {
    let instances = two_instances().await;
    let app = &instances.app;
    let chat = app.conversation().await;
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
    let requests = (0..8)
        .map(|n| {
            let token = if n % 4 < 2 { &chat.alice } else { &chat.bob };
            let address = instances.addresses[n % 2].clone();
            (
                address,
                token.clone(),
                path.clone(),
                batch(&format!("batch {n}"), n == 5),
            )
        })
        .collect();

    let answers = post_together(&app.client, requests).await;

    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [201, 201, 201, 201, 201, 400, 201, 201]);
    assert_eq!(app.message_count(&chat.alice, chat.thread_id).await, 70);
    let page = app.get_ok(&format!("{path}?limit=200"), &chat.alice).await;
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

/// A WebSocket client on one `serve` process receives what is posted through the other.
#[tokio::test]
async fn a_client_on_one_serve_process_receives_what_is_posted_through_the_other() {
    if !crate::postgres::on_postgres() {
        // One SQLite file is served by one instance; cross-instance delivery is PostgreSQL's.
        return;
    }
    let instances = two_instances().await;
    let app = &instances.app;
    let chat = app.conversation().await;
    let [first, second] = &instances.addresses;
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

/// The connection an instance LISTENs on is cut: it comes back by itself, and what was posted
/// through another instance meanwhile still reaches the client (the log is the truth).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_notification_connection_is_re_established_without_losing_frames() {
    if !crate::postgres::on_postgres() {
        return; // SQLite has no notification connection
    }
    let first = spawn_app().await;
    let second =
        crate::helpers::serve_database(simple_chat::Config::new(first.database_url.clone()), None)
            .await;
    let chat = first.conversation().await;
    let url = format!(
        "{}/ws?token={}",
        first.address.replace("http://", "ws://"),
        chat.bob
    );
    let (mut bob, _) = connect_async(url).await.expect("open the WebSocket");
    bob.next().await.unwrap().unwrap(); // hello
    let (admin, connection) = tokio_postgres::connect(&first.database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // Wait until both instances listen, then cut every listening connection.
    let listening = "SELECT pid FROM pg_stat_activity
                     WHERE query = 'LISTEN simple_chat' AND datname = current_database()";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admin.query(listening, &[]).await.unwrap().len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the instances never listened"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cut = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE query = 'LISTEN simple_chat' AND datname = current_database()",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(cut.len(), 2);

    let posted = second
        .post_messages(&chat.alice, chat.thread_id, &["while nobody listened"])
        .await;

    let frame = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), bob.next())
            .await
            .expect("the frame arrives once the instance listens again")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = message {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
    };
    assert_eq!(frame["message"], posted[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while admin.query(listening, &[]).await.unwrap().len() < 2 {
        assert!(std::time::Instant::now() < deadline, "not listening again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each instance keeps signed-in users in memory: a change made through one instance must
/// reach the other's copy (PostgreSQL: the commit's notification; SQLite: the writer notices
/// another process wrote the file).
#[tokio::test]
async fn a_user_changed_through_one_instance_is_seen_by_the_other() {
    let instances = two_instances().await;
    let alice = instances
        .app
        .create_user("alice", crate::helpers::PASSWORD)
        .await;
    let client = &instances.app.client;
    let [first, second] = &instances.addresses;
    let staff = instances.app.admin_token().await;
    let token = instances.app.token("alice", crate::helpers::PASSWORD).await;
    let (status, me) = me_on(client, second, &token).await;
    assert_eq!((status, me["is_staff"].clone()), (200, json!(false)));

    for (change, seen_as) in [
        (json!({"is_staff": true}), (200, json!(true))),
        (json!({"is_active": false}), (401, Value::Null)),
    ] {
        let (status, body) = parts(
            client
                .patch(format!("{first}/api/users/{alice}/"))
                .bearer_auth(&staff)
                .json(&change)
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let (status, me) = me_on(client, second, &token).await;
            if (status, me["is_staff"].clone()) == seen_as {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{change} not seen on the other instance after 5 s: {status} {me}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn me_on(client: &reqwest::Client, address: &str, token: &str) -> (u16, Value) {
    parts(
        client
            .get(format!("{address}/api/me/"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap(),
    )
    .await
}
