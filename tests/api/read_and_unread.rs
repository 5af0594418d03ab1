//! Read flags and unread counts: only a message's recipient marks it read, and every count a
//! user sees agrees.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_detail, assert_field_error, id, parts, results, spawn_app};

/// `POST /message/ {"messages_ids": ids}` as `token`; returns status and body.
async fn mark_read(app: &TestApp, token: &str, ids: &Value) -> (u16, Value) {
    parts(
        app.post_json("/message/", Some(token), &json!({"messages_ids": ids}))
            .await,
    )
    .await
}

fn ids_of(messages: &[Value]) -> Value {
    json!(messages.iter().map(id).collect::<Vec<i64>>())
}

#[tokio::test]
async fn the_recipient_marks_messages_read() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app
        .post_messages(&c.alice, c.thread_id, &["one", "two", "three"])
        .await;

    let (status, body) = mark_read(&app, &c.bob, &ids_of(&posted)).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"marked": 3}));
    for token in [&c.alice, &c.bob] {
        let page = app
            .get_ok(&format!("/thread/{}/message/", c.thread_id), token)
            .await;
        assert!(
            results(&page)
                .iter()
                .all(|message| message["is_read"] == json!(true)),
            "{page}"
        );
    }
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
}

#[tokio::test]
async fn marked_counts_only_messages_newly_read() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app
        .post_messages(&c.alice, c.thread_id, &["one", "two", "three"])
        .await;

    let (_, first) = mark_read(&app, &c.bob, &json!([id(&posted[0])])).await;
    let (_, second) = mark_read(&app, &c.bob, &ids_of(&posted)).await;
    let (_, third) = mark_read(&app, &c.bob, &ids_of(&posted)).await;

    assert_eq!(first, json!({"marked": 1}));
    assert_eq!(second, json!({"marked": 2}));
    assert_eq!(third, json!({"marked": 0}));
}

/// On SQLite a reader whose unread total is kept as 0 is answered without a write: what
/// arrives after that total was read, in the same thread or a new one, is still marked.
#[tokio::test]
async fn marking_read_after_nothing_was_unread_finds_what_arrived_since() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
    let (_, nothing) = mark_read(&app, &c.bob, &json!([1, 2, 3])).await;
    assert_eq!(nothing, json!({"marked": 0}));

    let first = app.post_messages(&c.alice, c.thread_id, &["one"]).await;
    let (_, marked) = mark_read(&app, &c.bob, &ids_of(&first)).await;
    let (_, again) = mark_read(&app, &c.bob, &ids_of(&first)).await;
    assert_eq!(
        (marked, again),
        (json!({"marked": 1}), json!({"marked": 0}))
    );

    let (_, carol) = app.login_new_user("carol").await;
    let pair = json!({"user1": "carol", "user2": "bob"});
    let (_, thread) = parts(app.post_json("/chat/thread/", Some(&carol), &pair).await).await;
    let hello = app.post_messages(&carol, id(&thread), &["hello"]).await;
    let (_, marked) = mark_read(&app, &c.bob, &ids_of(&hello)).await;
    assert_eq!(marked, json!({"marked": 1}));
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
}

#[tokio::test]
async fn both_paths_accept_post_and_patch() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts = ["one", "two", "three", "four", "five", "six"];
    let posted = app.post_messages(&c.alice, c.thread_id, &texts).await;
    let cases = [
        (Method::POST, "/message/"),
        (Method::PATCH, "/message/"),
        (Method::POST, "/chat/messages/"),
        (Method::PATCH, "/chat/messages/"),
        (Method::POST, "/chat/messages"),
        (Method::PATCH, "/message"),
    ];

    for ((method, path), message) in cases.into_iter().zip(&posted) {
        let response = app
            .request(method.clone(), path, Some(&c.bob))
            .json(&json!({"messages_ids": [id(message)]}))
            .send()
            .await
            .expect("send the request");
        let (status, body) = parts(response).await;

        assert_eq!(status, 200, "{method} {path}: {body}");
        assert_eq!(body, json!({"marked": 1}), "{method} {path}");
    }
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
}

#[tokio::test]
async fn a_sender_cannot_mark_its_own_messages_read() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app
        .post_messages(&c.alice, c.thread_id, &["unread by bob"])
        .await;

    let (status, body) = mark_read(&app, &c.alice, &ids_of(&posted)).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"marked": 0}));
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 1);
    let page = app
        .get_ok(&format!("/thread/{}/message/", c.thread_id), &c.bob)
        .await;
    assert_eq!(results(&page)[0]["is_read"], json!(false));
}

#[tokio::test]
async fn an_outsider_marks_nothing() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app
        .post_messages(&c.bob, c.thread_id, &["for alice only"])
        .await;
    let (_, carol) = app.login_new_user("carol").await;

    let (status, body) = mark_read(&app, &carol, &ids_of(&posted)).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"marked": 0}));
    assert_eq!(app.unread_count(&c.alice, c.alice_id).await, 1);
    let page = app
        .get_ok(&format!("/thread/{}/message/", c.thread_id), &c.alice)
        .await;
    assert_eq!(results(&page)[0]["is_read"], json!(false));
}

#[tokio::test]
async fn unknown_ids_are_ignored() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;

    let (status, body) = mark_read(&app, &alice, &json!([999_999, 123_456_789])).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"marked": 0}));
}

#[tokio::test]
async fn a_mixed_list_marks_only_what_the_requester_received() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let carol_thread = id(&app.create_thread(&carol, "carol", "alice").await);
    let received = app.post_messages(&c.alice, c.thread_id, &["to bob"]).await;
    let sent = app.post_messages(&c.bob, c.thread_id, &["to alice"]).await;
    let elsewhere = app
        .post_messages(&carol, carol_thread, &["to alice from carol"])
        .await;

    let (status, body) = mark_read(
        &app,
        &c.bob,
        &json!([id(&received[0]), id(&sent[0]), id(&elsewhere[0]), 888_888]),
    )
    .await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"marked": 1}));
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
    assert_eq!(app.unread_count(&c.alice, c.alice_id).await, 2);
}

#[tokio::test]
async fn messages_ids_must_be_a_list_of_integers() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app.post_messages(&c.alice, c.thread_id, &["one"]).await;
    let message_id = id(&posted[0]);

    for bad in [
        json!(message_id),
        json!(message_id.to_string()),
        json!(["a", "b"]),
        json!([1.5]),
        json!([message_id, "x"]),
        json!({"id": message_id}),
        json!([[message_id]]),
        Value::Null,
    ] {
        let (status, body) = mark_read(&app, &c.bob, &bad).await;

        assert_eq!(status, 400, "messages_ids = {bad}: {body}");
        assert!(
            body.get("messages_ids").is_some(),
            "errors on messages_ids: {body}"
        );
    }
    let (missing, missing_body) =
        parts(app.post_json("/message/", Some(&c.bob), &json!({})).await).await;
    assert_eq!(missing, 400);
    assert_eq!(
        missing_body,
        json!({"messages_ids": ["This field is required."]})
    );
    assert_eq!(
        app.unread_count(&c.bob, c.bob_id).await,
        1,
        "nothing was marked"
    );
}

/// `5.0` is a whole number: JSON Schema calls it an integer, and so did the original app.
#[tokio::test]
async fn ids_written_as_whole_decimals_are_ids() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app
        .post_messages(&c.alice, c.thread_id, &["one", "two"])
        .await;

    let (status, body) = mark_read(&app, &c.bob, &json!([id(&posted[0]) as f64])).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"marked": 1}));
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 1);
}

#[tokio::test]
async fn an_empty_list_is_refused() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;

    let (status, body) = mark_read(&app, &alice, &json!([])).await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "messages_ids");
}

#[tokio::test]
async fn at_most_1000_ids_are_accepted() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app.post_messages(&c.alice, c.thread_id, &["one"]).await;
    let mut ids: Vec<i64> = (1_000_000..1_000_999).collect();
    ids.push(id(&posted[0]));
    let mut too_many = ids.clone();
    too_many.push(2_000_000);

    let (refused, refused_body) = mark_read(&app, &c.bob, &json!(too_many)).await;
    let unread_after_refusal = app.unread_count(&c.bob, c.bob_id).await;
    let (accepted, accepted_body) = mark_read(&app, &c.bob, &json!(ids)).await;

    assert_eq!(refused, 400, "{refused_body}");
    assert_field_error(&refused_body, "messages_ids");
    assert_eq!(unread_after_refusal, 1, "a refused request marks nothing");
    assert_eq!(accepted, 200, "{accepted_body}");
    assert_eq!(accepted_body, json!({"marked": 1}));
}

#[tokio::test]
async fn unread_count_counts_only_messages_received() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.bob, c.thread_id, &["b1", "b2"]).await;
    let to_bob = app
        .post_messages(&c.alice, c.thread_id, &["a1", "a2", "a3"])
        .await;

    let bob_before = app.unread_count(&c.bob, c.bob_id).await;
    let alice_before = app.unread_count(&c.alice, c.alice_id).await;
    mark_read(&app, &c.bob, &ids_of(&to_bob[..2])).await;
    let bob_after = app.unread_count(&c.bob, c.bob_id).await;

    assert_eq!(bob_before, 3);
    assert_eq!(alice_before, 2);
    assert_eq!(bob_after, 1);
}

#[tokio::test]
async fn a_user_without_messages_has_nothing_unread() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;

    let body = app
        .get_ok(&format!("/user/{alice_id}/message/"), &alice)
        .await;

    assert_eq!(body, json!({"unread_count": 0}));
}

#[tokio::test]
async fn unread_count_spans_all_threads() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let carol_thread = id(&app.create_thread(&carol, "carol", "bob").await);
    app.post_messages(&c.alice, c.thread_id, &["a1", "a2"])
        .await;
    app.post_messages(&carol, carol_thread, &["c1", "c2", "c3"])
        .await;

    for path in [
        format!("/user/{}/message/", c.bob_id),
        format!("/chat/user/{}/message/", c.bob_id),
        format!("/user/{}/message", c.bob_id),
        format!("/chat/user/{}/message", c.bob_id),
    ] {
        let body = app.get_ok(&path, &c.bob).await;

        assert_eq!(body, json!({"unread_count": 5}), "GET {path}");
    }
}

#[tokio::test]
async fn unread_count_permission_matrix() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["a1", "a2"])
        .await;
    let (_, staff) = app.login_new_staff("sam").await;

    for path in [
        format!("/user/{}/message/", c.bob_id),
        format!("/chat/user/{}/message/", c.bob_id),
    ] {
        let (other, other_body) = parts(app.get(&path, Some(&c.alice)).await).await;
        let (by_staff, by_staff_body) = parts(app.get(&path, Some(&staff)).await).await;
        let (anonymous, _) = parts(app.get(&path, None).await).await;

        assert_eq!(other, 403, "another user, GET {path}: {other_body}");
        assert_detail(&other_body);
        assert_eq!(by_staff, 200, "staff, GET {path}: {by_staff_body}");
        assert_eq!(by_staff_body, json!({"unread_count": 2}));
        assert_eq!(anonymous, 401);
    }
    for path in ["/user/555555/message/", "/chat/user/555555/message/"] {
        let (unknown, unknown_body) = parts(app.get(path, Some(&staff)).await).await;

        assert_eq!(unknown, 404, "staff, GET {path}: {unknown_body}");
        assert_eq!(unknown_body, json!({"detail": "Not found."}));
    }
}

#[tokio::test]
async fn thread_and_list_unread_counts_agree_with_the_total() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let carol_thread = id(&app.create_thread(&carol, "carol", "bob").await);
    let from_alice = app
        .post_messages(&c.alice, c.thread_id, &["a1", "a2", "a3"])
        .await;
    app.post_messages(&carol, carol_thread, &["c1"]).await;
    app.post_messages(&c.bob, c.thread_id, &["b1"]).await;
    mark_read(&app, &c.bob, &json!([id(&from_alice[0])])).await;

    let total = app.unread_count(&c.bob, c.bob_id).await;
    let with_alice = app
        .get_ok(&format!("/chat/thread/{}/", c.thread_id), &c.bob)
        .await;
    let with_carol = app
        .get_ok(&format!("/chat/thread/{carol_thread}/"), &c.bob)
        .await;
    let list = app
        .get_ok(&format!("/chat/user/{}/thread/", c.bob_id), &c.bob)
        .await;

    assert_eq!(total, 3);
    assert_eq!(with_alice["unread_count"], json!(2));
    assert_eq!(with_carol["unread_count"], json!(1));
    let listed_sum: i64 = results(&list)
        .iter()
        .map(|thread| thread["unread_count"].as_i64().unwrap())
        .sum();
    assert_eq!(listed_sum, total);
    let for_alice = app
        .get_ok(&format!("/chat/thread/{}/", c.thread_id), &c.alice)
        .await;
    assert_eq!(for_alice["unread_count"], json!(1));
    assert_eq!(app.unread_count(&c.alice, c.alice_id).await, 1);
}

#[tokio::test]
async fn marking_read_does_not_move_the_thread_updated() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let posted = app.post_messages(&c.alice, c.thread_id, &["hello"]).await;
    let carol_thread = id(&app.create_thread(&carol, "carol", "bob").await);
    let path = format!("/chat/thread/{}/", c.thread_id);
    let before = app.get_ok(&path, &c.bob).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let (status, _) = mark_read(&app, &c.bob, &ids_of(&posted)).await;

    assert_eq!(status, 200);
    let after = app.get_ok(&path, &c.bob).await;
    assert_eq!(after["updated"], before["updated"]);
    assert_eq!(after["unread_count"], json!(0));
    assert_eq!(after["last_message"]["is_read"], json!(true));
    // The newer thread with Carol stays on top of Bob's list.
    assert_eq!(
        app.thread_ids(&c.bob, c.bob_id).await,
        [carol_thread, c.thread_id]
    );
}

#[tokio::test]
async fn deleting_a_thread_clears_its_unread_messages() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["a1", "a2"])
        .await;
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 2);

    let (status, _) = parts(
        app.delete(&format!("/chat/thread/{}/", c.thread_id), Some(&c.alice))
            .await,
    )
    .await;

    assert_eq!(status, 204);
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
}

#[tokio::test]
async fn marking_read_needs_authentication() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app.post_messages(&c.alice, c.thread_id, &["one"]).await;

    let (status, body) = parts(
        app.post_json("/message/", None, &json!({"messages_ids": ids_of(&posted)}))
            .await,
    )
    .await;

    assert_eq!(status, 401, "{body}");
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 1);
}
