//! Threads: two-person conversations, who may create, read, list and delete them.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{
    PAGE_KEYS, PASSWORD, THREAD_KEYS, assert_detail, assert_field_error, assert_keys,
    assert_timestamp, id, parts, results, spawn_app,
};

#[tokio::test]
async fn creating_a_thread_answers_201_with_the_thread() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    let bob_id = app.create_user("bob", PASSWORD).await;

    let (status, thread) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&alice),
            &json!({"user1": "alice", "user2": "bob"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 201, "{thread}");
    assert_keys(&thread, THREAD_KEYS);
    assert!(id(&thread) > 0);
    assert_eq!(thread["participants_list"], json!(["alice", "bob"]));
    let participants = thread["participants"].as_array().expect("participants");
    assert_eq!(participants.len(), 2);
    assert!(
        participants.contains(&json!({"id": alice_id, "username": "alice"})),
        "{thread}"
    );
    assert!(
        participants.contains(&json!({"id": bob_id, "username": "bob"})),
        "{thread}"
    );
    assert_timestamp(&thread["created"]);
    assert_timestamp(&thread["updated"]);
    assert_eq!(thread["last_message"], Value::Null);
    assert_eq!(thread["unread_count"], json!(0));
}

#[tokio::test]
async fn participants_list_is_ordered_by_user_id() {
    let app = spawn_app().await;
    app.create_user("zoe", PASSWORD).await;
    let (_, adam) = app.login_new_user("adam").await;

    let (status, thread) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&adam),
            &json!({"user1": "adam", "user2": "zoe"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 201, "{thread}");
    // zoe was created first, so she has the lower id.
    assert_eq!(thread["participants_list"], json!(["zoe", "adam"]));
}

#[tokio::test]
async fn asking_again_for_the_same_pair_returns_the_existing_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    for (token, user1, user2) in [
        (&c.alice, "alice", "bob"),
        (&c.alice, "bob", "alice"),
        (&c.bob, "bob", "alice"),
    ] {
        let (status, thread) = parts(
            app.post_json(
                "/chat/thread/",
                Some(token),
                &json!({"user1": user1, "user2": user2}),
            )
            .await,
        )
        .await;

        assert_eq!(status, 200, "{user1}/{user2}: {thread}");
        assert_eq!(id(&thread), c.thread_id);
    }
    assert_eq!(app.thread_ids(&c.alice, c.alice_id).await, [c.thread_id]);
}

#[tokio::test]
async fn an_unknown_username_is_a_400_on_that_field() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;

    let (second, second_body) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&alice),
            &json!({"user1": "alice", "user2": "ghost"}),
        )
        .await,
    )
    .await;
    let (first, first_body) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&alice),
            &json!({"user1": "ghost", "user2": "alice"}),
        )
        .await,
    )
    .await;

    assert_eq!(second, 400, "{second_body}");
    assert_field_error(&second_body, "user2");
    assert_eq!(first, 400, "{first_body}");
    assert_field_error(&first_body, "user1");
    assert!(app.thread_ids(&alice, alice_id).await.is_empty());
}

/// Users named in a thread creation are remembered by name: a rename or a deletion must be
/// seen by the next creation all the same.
#[tokio::test]
async fn a_renamed_or_deleted_user_is_seen_by_the_next_creation() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let admin = app.admin_token().await;
    let create = |user1: &'static str, user2: &'static str| {
        let body = json!({"user1": user1, "user2": user2});
        let (app, token) = (&app, c.alice.clone());
        async move { parts(app.post_json("/chat/thread/", Some(&token), &body).await).await }
    };
    for _ in 0..2 {
        let (status, body) = create("alice", "bob").await;
        assert_eq!((status, id(&body)), (200, c.thread_id), "{body}");
    }

    let renamed = app
        .patch_json(
            &format!("/api/users/{}/", c.bob_id),
            Some(&admin),
            &json!({"username": "robert"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let (new_name, new_body) = create("alice", "robert").await;
    let (old_name, old_body) = create("alice", "bob").await;
    assert_eq!(old_name, 400, "{old_body}");
    assert_field_error(&old_body, "user2");
    assert_eq!((new_name, id(&new_body)), (200, c.thread_id), "{new_body}");
    assert_eq!(new_body["participants_list"], json!(["alice", "robert"]));

    let deleted = app
        .delete(&format!("/api/users/{}/", c.bob_id), Some(&admin))
        .await;
    assert_eq!(deleted.status(), 204);
    let (gone, gone_body) = create("alice", "robert").await;
    assert_eq!(gone, 400, "{gone_body}");
    assert_field_error(&gone_body, "user2");
}

#[tokio::test]
async fn the_same_user_twice_is_a_400() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;

    let (status, body) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&alice),
            &json!({"user1": "alice", "user2": "alice"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "non_field_errors");
    assert!(app.thread_ids(&alice, alice_id).await.is_empty());
}

#[tokio::test]
async fn both_usernames_are_required_and_must_be_strings() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    app.create_user("bob", PASSWORD).await;

    let (missing, missing_body) = parts(
        app.post_json("/chat/thread/", Some(&alice), &json!({"user1": "alice"}))
            .await,
    )
    .await;
    let (empty, empty_body) = parts(
        app.post_json("/chat/thread/", Some(&alice), &json!({}))
            .await,
    )
    .await;
    let (wrong_type, wrong_type_body) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&alice),
            &json!({"user1": "alice", "user2": ["bob"]}),
        )
        .await,
    )
    .await;

    assert_eq!(missing, 400);
    assert_eq!(missing_body, json!({"user2": ["This field is required."]}));
    assert_eq!(empty, 400);
    assert_eq!(
        empty_body,
        json!({"user1": ["This field is required."], "user2": ["This field is required."]})
    );
    assert_eq!(wrong_type, 400, "{wrong_type_body}");
    assert_field_error(&wrong_type_body, "user2");
    assert!(app.thread_ids(&alice, alice_id).await.is_empty());
}

#[tokio::test]
async fn a_user_cannot_create_a_thread_between_two_other_users() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    app.create_user("bob", PASSWORD).await;
    let (_, carol) = app.login_new_user("carol").await;

    let (status, body) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&carol),
            &json!({"user1": "alice", "user2": "bob"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 403, "{body}");
    assert_detail(&body);
    assert!(app.thread_ids(&alice, alice_id).await.is_empty());
}

#[tokio::test]
async fn staff_can_create_a_thread_between_two_other_users() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    app.create_user("bob", PASSWORD).await;
    let (_, staff) = app.login_new_staff("sam").await;

    let (status, thread) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&staff),
            &json!({"user1": "alice", "user2": "bob"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 201, "{thread}");
    assert_eq!(thread["participants_list"], json!(["alice", "bob"]));
    assert_eq!(app.thread_ids(&alice, alice_id).await, [id(&thread)]);
}

#[tokio::test]
async fn a_participant_reads_the_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let created = app
        .get_ok(&format!("/chat/thread/{}/", c.thread_id), &c.alice)
        .await;

    let seen_by_bob = app
        .get_ok(&format!("/chat/thread/{}/", c.thread_id), &c.bob)
        .await;

    assert_keys(&created, THREAD_KEYS);
    assert_eq!(id(&created), c.thread_id);
    assert_eq!(
        seen_by_bob, created,
        "nothing unread yet, so both see the same thread"
    );
}

#[tokio::test]
async fn an_outsider_cannot_read_a_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;

    let (status, body) = parts(
        app.get(&format!("/chat/thread/{}/", c.thread_id), Some(&carol))
            .await,
    )
    .await;

    assert_eq!(status, 404);
    assert_eq!(body, json!({"detail": "Not found."}));
}

#[tokio::test]
async fn staff_can_read_any_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, staff) = app.login_new_staff("sam").await;

    let thread = app
        .get_ok(&format!("/chat/thread/{}/", c.thread_id), &staff)
        .await;

    assert_eq!(id(&thread), c.thread_id);
    assert_eq!(thread["participants_list"], json!(["alice", "bob"]));
}

#[tokio::test]
async fn an_unknown_thread_is_404() {
    let app = spawn_app().await;
    let admin = app.admin_token().await;

    let (status, body) = parts(app.get("/chat/thread/987654/", Some(&admin)).await).await;

    assert_eq!(status, 404);
    assert_eq!(body, json!({"detail": "Not found."}));
}

#[tokio::test]
async fn thread_endpoints_permission_matrix() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["hello"]).await;
    let (_, carol) = app.login_new_user("carol").await;
    let (_, staff) = app.login_new_staff("sam").await;
    let who = [
        ("anonymous", None),
        ("alice (participant)", Some(c.alice.as_str())),
        ("bob (participant)", Some(c.bob.as_str())),
        ("carol (outsider)", Some(carol.as_str())),
        ("sam (staff)", Some(staff.as_str())),
    ];
    let rows = [
        (
            format!("/chat/thread/{}/", c.thread_id),
            [401, 200, 200, 404, 200],
        ),
        (
            format!("/chat/thread/{}", c.thread_id),
            [401, 200, 200, 404, 200],
        ),
        (
            format!("/chat/user/{}/thread/", c.alice_id),
            [401, 200, 403, 403, 200],
        ),
        (
            format!("/chat/user/{}/thread/", c.bob_id),
            [401, 403, 200, 403, 200],
        ),
    ];

    for (path, expected) in rows {
        for ((label, token), expected_status) in who.iter().zip(expected) {
            let (status, body) = parts(app.get(&path, *token).await).await;

            assert_eq!(status, expected_status, "GET {path} as {label}: {body}");
            if status >= 400 {
                assert_detail(&body);
            }
        }
    }
}

#[tokio::test]
async fn a_participant_deletes_a_thread_and_its_messages() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["one", "two"])
        .await;
    let thread = format!("/chat/thread/{}/", c.thread_id);

    let (status, body) = parts(app.delete(&thread, Some(&c.bob)).await).await;

    assert_eq!(status, 204);
    assert_eq!(body, Value::Null, "no body");
    let (read, read_body) = parts(app.get(&thread, Some(&c.alice)).await).await;
    assert_eq!(read, 404);
    assert_eq!(read_body, json!({"detail": "Not found."}));
    let (messages, _) = parts(
        app.get(&format!("/thread/{}/message/", c.thread_id), Some(&c.alice))
            .await,
    )
    .await;
    assert_eq!(messages, 404);
    assert!(app.thread_ids(&c.alice, c.alice_id).await.is_empty());
    assert!(app.thread_ids(&c.bob, c.bob_id).await.is_empty());
    assert_eq!(app.unread_count(&c.bob, c.bob_id).await, 0);
    assert_eq!(
        app.posts_to_a_gone_thread(&c.alice, c.thread_id).await,
        [404, 404]
    );
    let (again, _) = parts(app.delete(&thread, Some(&c.alice)).await).await;
    assert_eq!(again, 404);
}

#[tokio::test]
async fn an_outsider_cannot_delete_a_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["keep me"]).await;
    let (_, carol) = app.login_new_user("carol").await;
    let thread = format!("/chat/thread/{}/", c.thread_id);

    let (status, body) = parts(app.delete(&thread, Some(&carol)).await).await;
    let (anonymous, _) = parts(app.delete(&thread, None).await).await;

    assert_eq!(status, 404);
    assert_eq!(body, json!({"detail": "Not found."}));
    assert_eq!(anonymous, 401);
    app.get_ok(&thread, &c.alice).await;
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 1);
}

#[tokio::test]
async fn staff_can_delete_any_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, staff) = app.login_new_staff("sam").await;
    let thread = format!("/chat/thread/{}/", c.thread_id);

    let (status, _) = parts(app.delete(&thread, Some(&staff)).await).await;

    assert_eq!(status, 204);
    let (read, _) = parts(app.get(&thread, Some(&c.alice)).await).await;
    assert_eq!(read, 404);
}

#[tokio::test]
async fn after_deletion_the_same_pair_starts_a_new_empty_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["old"]).await;
    let (deleted, _) = parts(
        app.delete(&format!("/chat/thread/{}/", c.thread_id), Some(&c.alice))
            .await,
    )
    .await;
    assert_eq!(deleted, 204);

    let (status, thread) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&c.bob),
            &json!({"user1": "bob", "user2": "alice"}),
        )
        .await,
    )
    .await;

    assert_eq!(status, 201, "{thread}");
    assert_ne!(id(&thread), c.thread_id);
    assert_eq!(thread["last_message"], Value::Null);
    assert_eq!(app.message_count(&c.bob, id(&thread)).await, 0);
}

#[tokio::test]
async fn the_thread_list_shows_most_recent_activity_first() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.create_user("carol", PASSWORD).await;
    let newer = id(&app.create_thread(&c.alice, "alice", "carol").await);
    assert_eq!(
        app.thread_ids(&c.alice, c.alice_id).await,
        [newer, c.thread_id]
    );

    app.post_messages(&c.bob, c.thread_id, &["bump"]).await;

    assert_eq!(
        app.thread_ids(&c.alice, c.alice_id).await,
        [c.thread_id, newer]
    );
    assert_eq!(app.thread_ids(&c.bob, c.bob_id).await, [c.thread_id]);
}

#[tokio::test]
async fn the_thread_list_is_paginated() {
    let app = spawn_app().await;
    let (alice_id, alice) = app.login_new_user("alice").await;
    for name in ["bob", "carol", "dave"] {
        app.create_user(name, PASSWORD).await;
        app.create_thread(&alice, "alice", name).await;
    }

    let first = app
        .get_ok(&format!("/chat/user/{alice_id}/thread/?limit=2"), &alice)
        .await;

    assert_keys(&first, PAGE_KEYS);
    assert_eq!(first["count"], json!(3));
    assert_eq!(results(&first).len(), 2);
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().expect("a next page");
    assert!(
        next.contains("limit=2") && next.contains("offset=2"),
        "{next}"
    );
    let path = next
        .strip_prefix(app.address.as_str())
        .expect("an absolute URL on this server");
    let second = app.get_ok(path, &alice).await;
    assert_eq!(results(&second).len(), 1);
    assert_eq!(second["next"], Value::Null);
    assert!(second["previous"].is_string(), "{second}");
    for thread in results(&first).iter().chain(results(&second)) {
        assert_keys(thread, THREAD_KEYS);
    }
}

#[tokio::test]
async fn staff_can_list_any_users_threads_but_not_an_unknown_users() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, staff) = app.login_new_staff("sam").await;

    let listed = app.thread_ids(&staff, c.alice_id).await;
    let (unknown, unknown_body) =
        parts(app.get("/chat/user/777777/thread/", Some(&staff)).await).await;

    assert_eq!(listed, [c.thread_id]);
    assert_eq!(unknown, 404);
    assert_eq!(unknown_body, json!({"detail": "Not found."}));
}

#[tokio::test]
async fn posting_a_message_moves_updated_and_sets_last_message() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let path = format!("/chat/thread/{}/", c.thread_id);
    let before = app.get_ok(&path, &c.alice).await;
    tokio::time::sleep(Duration::from_millis(5)).await;

    let posted = app
        .post_messages(&c.alice, c.thread_id, &["first", "second"])
        .await;

    let after = app.get_ok(&path, &c.alice).await;
    assert_eq!(after["created"], before["created"]);
    let (before_updated, after_updated) = (
        before["updated"].as_str().unwrap(),
        after["updated"].as_str().unwrap(),
    );
    assert!(
        after_updated > before_updated,
        "updated moved from {before_updated} to {after_updated}"
    );
    assert_eq!(after["last_message"], posted[1], "the newest message");
}

#[tokio::test]
async fn unread_count_in_a_thread_is_per_requester() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["one", "two", "three"])
        .await;
    app.post_messages(&c.bob, c.thread_id, &["reply"]).await;
    let path = format!("/chat/thread/{}/", c.thread_id);

    let for_alice = app.get_ok(&path, &c.alice).await;
    let for_bob = app.get_ok(&path, &c.bob).await;

    assert_eq!(for_alice["unread_count"], json!(1));
    assert_eq!(for_bob["unread_count"], json!(3));
    assert_eq!(for_alice["last_message"]["text"], "reply");
    assert_eq!(for_bob["last_message"], for_alice["last_message"]);
}

#[tokio::test]
async fn the_thread_list_shows_each_threads_last_message_and_unread_count() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let with_carol = id(&app.create_thread(&carol, "carol", "bob").await);
    app.post_messages(&c.alice, c.thread_id, &["a1", "a2"])
        .await;
    let from_carol = app.post_messages(&carol, with_carol, &["c1"]).await;

    let page = app
        .get_ok(&format!("/chat/user/{}/thread/", c.bob_id), &c.bob)
        .await;

    assert_eq!(page["count"], json!(2));
    let threads = results(&page);
    assert_eq!(id(&threads[0]), with_carol, "most recent activity first");
    assert_eq!(threads[0]["unread_count"], json!(1));
    assert_eq!(threads[0]["last_message"], from_carol[0]);
    assert_eq!(id(&threads[1]), c.thread_id);
    assert_eq!(threads[1]["unread_count"], json!(2));
    assert_eq!(threads[1]["last_message"]["text"], "a2");
}

/// A list already read shows what changed since: a new username of the other participant, a
/// message read by them, a thread gone with a deleted user.
#[tokio::test]
async fn a_thread_list_read_again_shows_what_changed_since() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let admin = app.admin_token().await;
    let sent = app.post_messages(&c.bob, c.thread_id, &["hi"]).await;
    let list = format!("/chat/user/{}/thread/", c.bob_id);
    let first = app.get_ok(&list, &c.bob).await;
    assert_eq!(
        results(&first)[0]["participants_list"],
        json!(["alice", "bob"])
    );
    assert_eq!(results(&first)[0]["last_message"]["is_read"], json!(false));

    let renamed = app
        .patch_json(
            &format!("/api/users/{}/", c.alice_id),
            Some(&admin),
            &json!({"username": "alicia"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let again = app.get_ok(&list, &c.bob).await;
    assert_eq!(
        results(&again)[0]["participants_list"],
        json!(["alicia", "bob"])
    );

    let read = app
        .post_json(
            "/message/",
            Some(&c.alice),
            &json!({"messages_ids": [id(&sent[0])]}),
        )
        .await;
    assert_eq!(read.status(), 200);
    let again = app.get_ok(&list, &c.bob).await;
    assert_eq!(results(&again)[0]["last_message"]["is_read"], json!(true));

    let (carol_id, carol) = app.login_new_user("carol").await;
    app.create_thread(&carol, "carol", "bob").await;
    assert_eq!(app.get_ok(&list, &c.bob).await["count"], json!(2));
    let gone = app
        .delete(&format!("/api/users/{carol_id}/"), Some(&admin))
        .await;
    assert_eq!(gone.status(), 204);
    assert_eq!(app.get_ok(&list, &c.bob).await["count"], json!(1));
}

/// Creating a thread that exists answers it as it is now, read before and again after each
/// change (a server may answer it from memory): a message posted, read, a participant
/// renamed, the thread deleted.
#[tokio::test]
async fn an_existing_thread_created_again_shows_what_changed_since() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let admin = app.admin_token().await;
    let again = async |token: &str| {
        let first = app.create_thread(token, "alice", "bob").await;
        let second = app.create_thread(token, "bob", "alice").await;
        assert_eq!(first, second);
        second
    };
    assert_eq!(again(&c.bob).await["last_message"], Value::Null);

    let sent = app.post_messages(&c.alice, c.thread_id, &["hi"]).await;
    let thread = again(&c.bob).await;
    assert_eq!(thread["last_message"], sent[0]);
    assert_eq!(thread["unread_count"], json!(1));
    assert_eq!(again(&c.alice).await["unread_count"], json!(0));

    let read = app
        .post_json(
            "/message/",
            Some(&c.bob),
            &json!({"messages_ids": [id(&sent[0])]}),
        )
        .await;
    assert_eq!(read.status(), 200);
    let thread = again(&c.bob).await;
    assert_eq!(thread["unread_count"], json!(0));
    assert_eq!(thread["last_message"]["is_read"], json!(true));

    let renamed = app
        .patch_json(
            &format!("/api/users/{}/", c.alice_id),
            Some(&admin),
            &json!({"username": "alicia"}),
        )
        .await;
    assert_eq!(renamed.status(), 200);
    let thread = app.create_thread(&c.bob, "alicia", "bob").await;
    assert_eq!(thread["participants_list"], json!(["alicia", "bob"]));
    assert_eq!(id(&thread), c.thread_id);

    let gone = app
        .delete(&format!("/chat/thread/{}/", c.thread_id), Some(&c.bob))
        .await;
    assert_eq!(gone.status(), 204);
    let (status, fresh) = parts(
        app.post_json(
            "/chat/thread/",
            Some(&c.bob),
            &json!({"user1": "alicia", "user2": "bob"}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "a new thread, not the deleted one: {fresh}");
    assert_ne!(id(&fresh), c.thread_id);
}
