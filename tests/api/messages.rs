//! Messages: batches posted all-or-nothing, idempotent retries, and listing with offset and
//! keyset pagination.

use serde_json::{Value, json};

use crate::helpers::{
    MESSAGE_KEYS, PAGE_KEYS, PASSWORD, TestApp, assert_detail, assert_field_error, assert_keys,
    assert_timestamp, id, parts, results, spawn_app,
};

fn messages_path(thread_id: i64) -> String {
    format!("/thread/{thread_id}/message/")
}

/// Posts `{"messages": items}` as `token`; returns status and body.
async fn post_batch(app: &TestApp, token: &str, thread_id: i64, items: Value) -> (u16, Value) {
    parts(
        app.post_json(
            &messages_path(thread_id),
            Some(token),
            &json!({"messages": items}),
        )
        .await,
    )
    .await
}

/// Ids in one page of a message list.
fn page_ids(page: &Value) -> Vec<i64> {
    results(page).iter().map(id).collect()
}

#[tokio::test]
async fn posting_a_batch_stores_every_message_in_order() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts = ["hi", "how are you?", "🙂 ünïcödé"];

    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"sender": c.alice_id, "text": texts[0]}, {"text": texts[1]}, {"sender": c.alice_id, "text": texts[2]}]),
    )
    .await;

    assert_eq!(status, 201, "{body}");
    let stored = body.as_array().expect("an array of messages");
    assert_eq!(stored.len(), 3);
    for (message, text) in stored.iter().zip(texts) {
        assert_keys(message, MESSAGE_KEYS);
        assert_eq!(message["thread"], json!(c.thread_id));
        assert_eq!(message["sender"], json!(c.alice_id));
        assert_eq!(message["text"], text);
        assert_eq!(message["is_read"], json!(false));
        assert_eq!(message["client_id"], Value::Null);
        assert_timestamp(&message["created"]);
    }
    let ids: Vec<i64> = stored.iter().map(id).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids follow the order sent: {ids:?}"
    );
    let listed = app.get_ok(&messages_path(c.thread_id), &c.bob).await;
    assert_eq!(results(&listed), stored);
}

#[tokio::test]
async fn the_sender_defaults_to_the_requester() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let posted = app.post_messages(&c.bob, c.thread_id, &["from bob"]).await;

    assert_eq!(posted[0]["sender"], json!(c.bob_id));
}

#[tokio::test]
async fn posting_as_someone_else_is_forbidden_and_stores_nothing() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "mine"}, {"sender": c.bob_id, "text": "forged"}]),
    )
    .await;

    assert_eq!(status, 403, "{body}");
    assert_detail(&body);
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn staff_cannot_post_as_someone_else_either() {
    let app = spawn_app().await;
    let (bob_id, bob) = app.login_new_user("bob").await;
    let admin = app.admin_token().await;
    let thread_id = id(&app.create_thread(&admin, "admin", "bob").await);

    let (status, body) = post_batch(
        &app,
        &admin,
        thread_id,
        json!([{"sender": bob_id, "text": "forged"}]),
    )
    .await;

    assert_eq!(status, 403, "{body}");
    assert_detail(&body);
    assert_eq!(app.message_count(&bob, thread_id).await, 0);
}

#[tokio::test]
async fn an_outsider_cannot_post_into_a_thread() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (carol_id, carol) = app.login_new_user("carol").await;

    for items in [
        json!([{"text": "let me in"}]),
        json!([{"sender": carol_id, "text": "let me in"}]),
    ] {
        let (status, body) = post_batch(&app, &carol, c.thread_id, items).await;

        assert_eq!(status, 404, "{body}");
        assert_eq!(body, json!({"detail": "Not found."}));
    }
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn posting_to_an_unknown_thread_is_404() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;

    let (status, body) = post_batch(&app, &alice, 31337, json!([{"text": "anyone?"}])).await;

    assert_eq!(status, 404, "{body}");
    assert_eq!(body, json!({"detail": "Not found."}));
}

#[tokio::test]
async fn an_empty_batch_is_refused() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let (status, body) = post_batch(&app, &c.alice, c.thread_id, json!([])).await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "messages");
}

#[tokio::test]
async fn a_batch_of_more_than_100_messages_is_refused() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let items: Vec<Value> = (0..101)
        .map(|n| json!({"text": format!("message {n}")}))
        .collect();

    let (status, body) = post_batch(&app, &c.alice, c.thread_id, json!(items)).await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body, "messages");
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_batch_of_100_messages_is_accepted() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..100).map(|n| format!("message {n}")).collect();

    let posted = app.post_messages(&c.alice, c.thread_id, &texts).await;

    assert_eq!(posted.len(), 100);
    assert_eq!(posted[99]["text"], "message 99");
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 100);
}

#[tokio::test]
async fn the_messages_field_is_required_and_must_be_a_list() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let path = messages_path(c.thread_id);

    let (missing, missing_body) =
        parts(app.post_json(&path, Some(&c.alice), &json!({})).await).await;
    assert_eq!(missing, 400);
    assert_eq!(
        missing_body,
        json!({"messages": ["This field is required."]})
    );
    for not_a_list in [json!("hi"), json!({"text": "hi"}), json!(7), Value::Null] {
        let (status, body) = post_batch(&app, &c.alice, c.thread_id, not_a_list.clone()).await;

        assert_eq!(status, 400, "messages = {not_a_list}: {body}");
        assert_field_error(&body, "messages");
    }
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_blank_message_refuses_the_whole_batch() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "fine"}, {"text": ""}, {"text": "also fine"}]),
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"messages": [{}, {"text": ["This field may not be blank."]}, {}]})
    );
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_message_of_only_whitespace_is_blank() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let (status, body) =
        post_batch(&app, &c.alice, c.thread_id, json!([{"text": "  \n\t "}])).await;

    assert_eq!(status, 400, "{body}");
    assert_field_error(&body["messages"][0], "text");
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

/// Asserts `{"messages": [{}, {"<field>": [...]}, {}]}`.
fn assert_second_item_refused(body: &Value, field: &str) {
    let items = body["messages"]
        .as_array()
        .unwrap_or_else(|| panic!("errors per item: {body}"));
    assert_eq!(items.len(), 3, "one entry per item: {body}");
    assert_eq!(items[0], json!({}), "{body}");
    assert_eq!(items[2], json!({}), "{body}");
    assert_keys(&items[1], &[field]);
    assert_field_error(&items[1], field);
}

#[tokio::test]
async fn a_bad_text_refuses_the_whole_batch_and_names_its_index() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let too_long = "a".repeat(10_001);
    let bad_items = [
        json!({"text": too_long}),
        json!({"text": 42}),
        json!({"text": true}),
        json!({"text": null}),
        json!({"text": ["a"]}),
    ];

    for bad in bad_items {
        let (status, body) = post_batch(
            &app,
            &c.alice,
            c.thread_id,
            json!([{"text": "ok"}, bad, {"text": "ok too"}]),
        )
        .await;

        assert_eq!(status, 400, "{body}");
        assert_second_item_refused(&body, "text");
    }
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_missing_text_is_required() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "ok"}, {"sender": c.alice_id}, {"text": "ok"}]),
    )
    .await;

    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"messages": [{}, {"text": ["This field is required."]}, {}]})
    );
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn an_item_that_is_not_an_object_refuses_the_batch() {
    let app = spawn_app().await;
    let c = app.conversation().await;

    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "ok"}, "just text"]),
    )
    .await;

    assert_eq!(status, 400, "{body}");
    assert!(body["messages"].is_array(), "{body}");
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
}

#[tokio::test]
async fn a_text_of_exactly_10000_characters_is_accepted() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let ascii = "a".repeat(10_000);
    let four_byte = "😀".repeat(10_000);

    let posted = app
        .post_messages(&c.alice, c.thread_id, &[ascii.as_str(), four_byte.as_str()])
        .await;

    assert_eq!(posted[0]["text"], ascii.as_str());
    assert_eq!(posted[1]["text"], four_byte.as_str());
    let listed = app.get_ok(&messages_path(c.thread_id), &c.bob).await;
    assert_eq!(results(&listed)[1]["text"], four_byte.as_str());
}

#[tokio::test]
async fn a_client_id_is_stored_and_a_retry_returns_the_stored_message() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let item = json!([{"text": "sent once", "client_id": "device-1-msg-1"}]);
    let (first_status, first) = post_batch(&app, &c.alice, c.thread_id, item.clone()).await;
    assert_eq!(first_status, 201, "{first}");
    assert_eq!(first[0]["client_id"], "device-1-msg-1");

    let (retry_status, retry) = post_batch(&app, &c.alice, c.thread_id, item).await;

    assert!(
        retry_status == 200 || retry_status == 201,
        "{retry_status}: {retry}"
    );
    assert_eq!(retry, first, "the stored message, not a duplicate");
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 1);
}

#[tokio::test]
async fn a_retried_batch_stores_only_the_new_messages() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let (_, first) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "a", "client_id": "x"}]),
    )
    .await;

    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "a", "client_id": "x"}, {"text": "b", "client_id": "y"}]),
    )
    .await;

    assert!(status == 200 || status == 201, "{status}: {body}");
    assert_eq!(id(&body[0]), id(&first[0]));
    assert_ne!(id(&body[1]), id(&first[0]));
    assert_eq!(body[1]["client_id"], "y");
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 2);
}

#[tokio::test]
async fn the_same_client_id_from_another_sender_is_a_new_message() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let item = json!([{"text": "hello", "client_id": "shared-id"}]);
    let (_, from_alice) = post_batch(&app, &c.alice, c.thread_id, item.clone()).await;

    let (status, from_bob) = post_batch(&app, &c.bob, c.thread_id, item).await;

    assert_eq!(status, 201, "{from_bob}");
    assert_ne!(id(&from_bob[0]), id(&from_alice[0]));
    assert_eq!(from_bob[0]["sender"], json!(c.bob_id));
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 2);
}

#[tokio::test]
async fn a_client_id_must_be_a_string_of_at_most_64_characters() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let longest = "c".repeat(64);
    let too_long = "c".repeat(65);

    for bad in [json!(too_long), json!(12), json!({"id": 1})] {
        let (status, body) = post_batch(
            &app,
            &c.alice,
            c.thread_id,
            json!([{"text": "ok"}, {"text": "x", "client_id": bad}, {"text": "ok"}]),
        )
        .await;

        assert_eq!(status, 400, "client_id = {bad}: {body}");
        assert_second_item_refused(&body, "client_id");
    }
    assert_eq!(app.message_count(&c.alice, c.thread_id).await, 0);
    let (status, body) = post_batch(
        &app,
        &c.alice,
        c.thread_id,
        json!([{"text": "x", "client_id": longest}]),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body[0]["client_id"], longest.as_str());
}

#[tokio::test]
async fn messages_are_listed_oldest_first_from_both_participants() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let mut expected = Vec::new();
    expected.extend(
        app.post_messages(&c.alice, c.thread_id, &["a1", "a2"])
            .await,
    );
    expected.extend(app.post_messages(&c.bob, c.thread_id, &["b1"]).await);
    expected.extend(app.post_messages(&c.alice, c.thread_id, &["a3"]).await);

    let page = app.get_ok(&messages_path(c.thread_id), &c.alice).await;

    assert_keys(&page, PAGE_KEYS);
    assert_eq!(page["count"], json!(4));
    assert_eq!(page["next"], Value::Null);
    assert_eq!(page["previous"], Value::Null);
    assert_eq!(results(&page), &expected);
    let texts: Vec<&str> = results(&page)
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["a1", "a2", "b1", "a3"]);
}

#[tokio::test]
async fn a_thread_lists_only_its_own_messages() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.create_user("carol", PASSWORD).await;
    let other = id(&app.create_thread(&c.alice, "alice", "carol").await);
    app.post_messages(&c.alice, other, &["to carol"]).await;
    let mine = app.post_messages(&c.alice, c.thread_id, &["to bob"]).await;

    let page = app.get_ok(&messages_path(c.thread_id), &c.bob).await;

    assert_eq!(page["count"], json!(1));
    assert_eq!(results(&page), &mine);
}

#[tokio::test]
async fn both_path_spellings_list_and_post_messages() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let original = format!("/chat/thread/{}/message/", c.thread_id);
    let (status, posted) = parts(
        app.post_json(
            &original,
            Some(&c.alice),
            &json!({"messages": [{"text": "via the original path"}]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 201, "{posted}");

    let readme = app.get_ok(&messages_path(c.thread_id), &c.bob).await;
    let code = app.get_ok(&original, &c.bob).await;

    assert_eq!(readme, code);
    assert_eq!(results(&readme), posted.as_array().unwrap());
}

#[tokio::test]
async fn the_default_page_is_50_messages_with_links_to_the_rest() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..60).map(|n| format!("m{n}")).collect();
    let posted = app.post_messages(&c.alice, c.thread_id, &texts).await;

    let first = app.get_ok(&messages_path(c.thread_id), &c.alice).await;

    assert_eq!(first["count"], json!(60));
    assert_eq!(results(&first).len(), 50);
    assert_eq!(results(&first)[0], posted[0]);
    assert_eq!(first["previous"], Value::Null);
    let next = first["next"].as_str().expect("a next page");
    assert!(next.starts_with("http://"), "an absolute URL: {next}");
    assert!(
        next.contains("limit=50") && next.contains("offset=50"),
        "{next}"
    );
    let path = next
        .strip_prefix(app.address.as_str())
        .expect("a URL on this server");
    let second = app.get_ok(path, &c.alice).await;
    assert_eq!(results(&second), &posted[50..]);
    assert_eq!(second["next"], Value::Null);
    let previous = second["previous"].as_str().expect("a previous page");
    assert!(previous.contains("limit=50"), "{previous}");
}

#[tokio::test]
async fn limit_and_offset_select_a_page() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app
        .post_messages(&c.alice, c.thread_id, &["m0", "m1", "m2", "m3", "m4", "m5"])
        .await;

    let page = app
        .get_ok(
            &format!("{}?limit=2&offset=2", messages_path(c.thread_id)),
            &c.bob,
        )
        .await;

    assert_eq!(page["count"], json!(6));
    assert_eq!(results(&page), &posted[2..4]);
    let next = page["next"].as_str().expect("a next page");
    assert!(
        next.contains("limit=2") && next.contains("offset=4"),
        "{next}"
    );
    let previous = page["previous"].as_str().expect("a previous page");
    assert!(previous.contains("limit=2"), "{previous}");
}

#[tokio::test]
async fn a_limit_above_200_is_clamped_to_200() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    for batch in 0..3 {
        let size = if batch < 2 { 100 } else { 1 };
        let texts: Vec<String> = (0..size).map(|n| format!("b{batch}-{n}")).collect();
        app.post_messages(&c.alice, c.thread_id, &texts).await;
    }

    let page = app
        .get_ok(
            &format!("{}?limit=500", messages_path(c.thread_id)),
            &c.alice,
        )
        .await;
    let exact = app
        .get_ok(
            &format!("{}?limit=200", messages_path(c.thread_id)),
            &c.alice,
        )
        .await;

    assert_eq!(page["count"], json!(201));
    assert_eq!(results(&page).len(), 200);
    assert!(page["next"].is_string(), "{}", page["next"]);
    assert_eq!(page_ids(&page), page_ids(&exact));
}

#[tokio::test]
async fn after_gives_the_next_messages_oldest_first() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let ids: Vec<i64> = app
        .post_messages(&c.alice, c.thread_id, &texts)
        .await
        .iter()
        .map(id)
        .collect();

    let page = app
        .get_ok(
            &format!("{}?after={}&limit=3", messages_path(c.thread_id), ids[3]),
            &c.bob,
        )
        .await;

    assert_eq!(page_ids(&page), ids[4..7]);
    assert_eq!(page["count"], json!(6), "messages after that id");
}

#[tokio::test]
async fn before_gives_the_messages_just_before_oldest_first() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let ids: Vec<i64> = app
        .post_messages(&c.alice, c.thread_id, &texts)
        .await
        .iter()
        .map(id)
        .collect();

    let page = app
        .get_ok(
            &format!("{}?before={}&limit=3", messages_path(c.thread_id), ids[6]),
            &c.bob,
        )
        .await;

    assert_eq!(page_ids(&page), ids[3..6]);
    assert_eq!(page["count"], json!(6), "messages before that id");
}

#[tokio::test]
async fn the_latest_page_counts_every_message_before_it() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..10).map(|n| format!("m{n}")).collect();
    let ids: Vec<i64> = app
        .post_messages(&c.alice, c.thread_id, &texts)
        .await
        .iter()
        .map(id)
        .collect();
    let before = |id: i64| format!("{}?before={id}&limit=3", messages_path(c.thread_id));

    // Past the newest message: the latest page, and all ten counted.
    let latest = app.get_ok(&before(i64::MAX / 2), &c.bob).await;
    assert_eq!(page_ids(&latest), ids[7..10]);
    assert_eq!(latest["count"], json!(10));
    // Before the newest itself: it is not counted.
    let page = app.get_ok(&before(ids[9]), &c.bob).await;
    assert_eq!(page_ids(&page), ids[6..9]);
    assert_eq!(page["count"], json!(9));
    // The newest deleted: the latest page ends one earlier and counts nine.
    let path = format!("/api/messages/{}/", ids[9]);
    assert_eq!(app.delete(&path, Some(&c.alice)).await.status(), 204);
    let latest = app.get_ok(&before(i64::MAX / 2), &c.bob).await;
    assert_eq!(page_ids(&latest), ids[6..9]);
    assert_eq!(latest["count"], json!(9));
    let page = app.get_ok(&before(ids[9]), &c.bob).await;
    assert_eq!(page["count"], json!(9), "before the deleted id: {page}");
}

#[tokio::test]
async fn after_the_newest_message_there_is_nothing() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let posted = app.post_messages(&c.alice, c.thread_id, &["only"]).await;

    let page = app
        .get_ok(
            &format!("{}?after={}", messages_path(c.thread_id), id(&posted[0])),
            &c.bob,
        )
        .await;

    assert!(results(&page).is_empty(), "{page}");
    assert_eq!(page["count"], json!(0));
}

#[tokio::test]
async fn keyset_pages_cover_the_thread_without_gaps() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    let texts: Vec<String> = (0..7).map(|n| format!("m{n}")).collect();
    let ids: Vec<i64> = app
        .post_messages(&c.alice, c.thread_id, &texts)
        .await
        .iter()
        .map(id)
        .collect();
    let first = app
        .get_ok(&format!("{}?limit=3", messages_path(c.thread_id)), &c.bob)
        .await;
    let mut seen = page_ids(&first);

    loop {
        let cursor = *seen.last().expect("a first page");
        let page = app
            .get_ok(
                &format!("{}?after={cursor}&limit=3", messages_path(c.thread_id)),
                &c.bob,
            )
            .await;
        let batch = page_ids(&page);
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3, "at most `limit` messages: {page}");
        seen.extend(batch);
    }

    assert_eq!(seen, ids);
}

#[tokio::test]
async fn message_endpoints_permission_matrix() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["hello"]).await;
    let (_, carol) = app.login_new_user("carol").await;
    let (_, staff) = app.login_new_staff("sam").await;
    let who = [
        ("alice (participant)", c.alice.as_str(), 200),
        ("bob (participant)", c.bob.as_str(), 200),
        ("carol (outsider)", carol.as_str(), 404),
        ("sam (staff)", staff.as_str(), 200),
    ];

    for path in [
        messages_path(c.thread_id),
        format!("/chat/thread/{}/message/", c.thread_id),
        format!("/thread/{}/message", c.thread_id),
        format!("/chat/thread/{}/message", c.thread_id),
    ] {
        for (label, token, expected) in who {
            let (status, body) = parts(app.get(&path, Some(token)).await).await;

            assert_eq!(status, expected, "GET {path} as {label}: {body}");
            if expected == 200 {
                assert_eq!(body["count"], json!(1));
            } else {
                assert_eq!(body, json!({"detail": "Not found."}));
            }
        }
        let (anonymous, _) = parts(app.get(&path, None).await).await;
        assert_eq!(anonymous, 401, "GET {path} anonymously");
    }
}

#[tokio::test]
async fn cursors_that_are_not_ids_are_refused_in_drf_words() {
    let app = spawn_app().await;
    let c = app.conversation().await;
    app.post_messages(&c.alice, c.thread_id, &["kept"]).await;
    let below_zero = "Ensure this value is greater than or equal to 0.";
    let not_an_integer = "A valid integer is required.";
    for (query, field, message) in [
        ("after=-1", "after", below_zero),
        ("before=-20", "before", below_zero),
        ("after=abc", "after", not_an_integer),
        ("before=1.5", "before", not_an_integer),
        ("after=99999999999999999999", "after", not_an_integer),
    ] {
        let path = format!("{}?{query}", messages_path(c.thread_id));
        let (status, body) = parts(app.get(&path, Some(&c.bob)).await).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body, json!({ field: [message] }), "{query}");
    }
    let (status, body) = parts(app.get("/api/events/?since=-3", Some(&c.bob)).await).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body, json!({ "since": [below_zero] }));
    // Nothing was changed by them: the page is as it was.
    let page = app.get_ok(&messages_path(c.thread_id), &c.bob).await;
    assert_eq!(page["count"], json!(1));
}
