//! Concurrent requests: one thread per pair, every message of concurrent batches stored once,
//! retries and read marks that race stay exact.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::Barrier;
use tokio::task::JoinHandle;

use crate::helpers::{PASSWORD, TestApp, id, parts, results, spawn_app};

/// Starts `requests` POSTs together (they wait on one barrier); each is (token, path, body).
fn post_together(
    app: &TestApp,
    requests: Vec<(String, String, Value)>,
) -> Vec<JoinHandle<(u16, Value)>> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    requests
        .into_iter()
        .map(|(token, path, body)| {
            let client = app.client.clone();
            let url = format!("{}{path}", app.address);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("send the request");
                parts(response).await
            })
        })
        .collect()
}

/// Waits for every task; returns their (status, body) in order.
async fn outcomes(tasks: Vec<JoinHandle<(u16, Value)>>) -> Vec<(u16, Value)> {
    let mut all = Vec::with_capacity(tasks.len());
    for task in tasks {
        all.push(task.await.expect("the request task panicked"));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_requests_for_one_pair_create_a_single_thread() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let (bob_id, bob) = app.login_new_user("bob").await;
    let requests = (0..20)
        .map(|n| {
            if n % 2 == 0 {
                (
                    alice.clone(),
                    "/chat/thread/".to_owned(),
                    json!({"user1": "alice", "user2": "bob"}),
                )
            } else {
                (
                    bob.clone(),
                    "/chat/thread/".to_owned(),
                    json!({"user1": "bob", "user2": "alice"}),
                )
            }
        })
        .collect();

    let answers = outcomes(post_together(&app, requests)).await;

    let created = answers.iter().filter(|(status, _)| *status == 201).count();
    let found = answers.iter().filter(|(status, _)| *status == 200).count();
    let ids: BTreeSet<i64> = answers.iter().map(|(_, body)| id(body)).collect();
    assert_eq!(
        created, 1,
        "exactly one request creates the thread: {answers:?}"
    );
    assert_eq!(found, 19, "the others find it: {answers:?}");
    assert_eq!(ids.len(), 1, "one thread id: {ids:?}");
    let thread_id = *ids.first().expect("a thread id");
    assert_eq!(app.thread_ids(&alice, alice_id).await, [thread_id]);
    assert_eq!(app.thread_ids(&bob, bob_id).await, [thread_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_threads_with_different_people_are_all_created() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let names: Vec<String> = (0..8).map(|n| format!("friend{n}")).collect();
    for name in &names {
        app.create_user(name, PASSWORD).await;
    }
    let requests = names
        .iter()
        .map(|name| {
            (
                alice.clone(),
                "/chat/thread/".to_owned(),
                json!({"user1": "alice", "user2": name}),
            )
        })
        .collect();

    let answers = outcomes(post_together(&app, requests)).await;

    assert!(
        answers.iter().all(|(status, _)| *status == 201),
        "{answers:?}"
    );
    let ids: BTreeSet<i64> = answers.iter().map(|(_, body)| id(body)).collect();
    assert_eq!(ids.len(), names.len());
    let listed: BTreeSet<i64> = app.thread_ids(&alice, alice_id).await.into_iter().collect();
    assert_eq!(listed, ids);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_batches_from_both_participants_are_all_stored() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let path = format!("/thread/{}/message/", c.thread_id);
    let requests = (0..10)
        .map(|n| {
            let (who, token) = if n % 2 == 0 {
                ("alice", &c.alice)
            } else {
                ("bob", &c.bob)
            };
            let messages: Vec<Value> = (0..5)
                .map(|k| json!({"text": format!("{who} batch {n} #{k}")}))
                .collect();
            (token.clone(), path.clone(), json!({"messages": messages}))
        })
        .collect();

    let answers = outcomes(post_together(&app, requests)).await;

    let mut stored = BTreeSet::new();
    for (status, body) in &answers {
        assert_eq!(*status, 201, "{body}");
        let batch = body.as_array().expect("an array of messages");
        assert_eq!(batch.len(), 5);
        let batch_ids: Vec<i64> = batch.iter().map(id).collect();
        assert!(
            batch_ids.windows(2).all(|pair| pair[0] < pair[1]),
            "a batch keeps its order: {batch_ids:?}"
        );
        stored.extend(batch_ids);
    }
    assert_eq!(stored.len(), 50, "every message stored once");
    let page = app.get_ok(&format!("{path}?limit=200"), &c.alice).await;
    assert_eq!(page["count"], json!(50));
    let listed: Vec<i64> = results(&page).iter().map(id).collect();
    assert_eq!(
        listed,
        stored.into_iter().collect::<Vec<i64>>(),
        "listed oldest first, by id"
    );
    assert_eq!(app.unread_count(&c.alice, c.alice_id).await, 25);
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 25);
    let thread = app
        .get_ok(&format!("/chat/thread/{}/", c.thread_id), &c.bob)
        .await;
    assert_eq!(thread["unread_count"], json!(25));
    assert_eq!(
        thread["last_message"],
        *results(&page).last().expect("a newest message")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_retries_with_one_client_id_store_one_message() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let path = format!("/thread/{}/message/", c.thread_id);
    let body = json!({"messages": [{"text": "only once", "client_id": "flaky-network-1"}]});
    let requests = (0..10)
        .map(|_| (c.alice.clone(), path.clone(), body.clone()))
        .collect();

    let answers = outcomes(post_together(&app, requests)).await;

    let mut ids = BTreeSet::new();
    for (status, body) in &answers {
        assert!(*status == 200 || *status == 201, "{status}: {body}");
        ids.insert(id(&body[0]));
    }
    assert_eq!(
        ids.len(),
        1,
        "every retry answers the same message: {ids:?}"
    );
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 1);
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_read_marks_count_each_message_once() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let ids: Vec<i64> = app
        .post_messages(&c.alice, c.thread_id, &texts)
        .await
        .iter()
        .map(id)
        .collect();
    let requests = (0..5)
        .map(|_| {
            (
                c.bob.clone(),
                "/message/".to_owned(),
                json!({"messages_ids": ids}),
            )
        })
        .collect();

    let answers = outcomes(post_together(&app, requests)).await;

    let mut marked = 0;
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        marked += body["marked"].as_i64().expect("a marked count");
    }
    assert_eq!(
        marked, 10,
        "each message is newly marked exactly once: {answers:?}"
    );
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
}
