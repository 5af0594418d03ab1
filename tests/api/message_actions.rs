//! Edit, delete, reply and react: every permission case (sender, other participant, outsider,
//! staff), the exact events in both logs, exact counters, and bad input refused with nothing
//! changed.

use serde_json::{Value, json};

use crate::helpers::{
    Conversation, MESSAGE_KEYS, TestApp, assert_keys, id, parts, results, spawn_app, spawn_app_with,
};

/// Every event of a user's log, from the start.
pub async fn whole_log(app: &TestApp, token: &str) -> Vec<Value> {
    let (status, answer) =
        parts(app.get("/api/events/?since=0&timeout=0", Some(token)).await).await;
    assert_eq!(status, 200);
    answer["events"].as_array().unwrap().clone()
}

/// Alice and Bob's conversation, Carol (an outsider) and a staff member who is not in it.
struct Cast {
    chat: Conversation,
    carol: String,
    staff: String,
}

async fn cast(app: &TestApp) -> Cast {
    let chat = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let (_, staff) = app.login_new_staff("stella").await;
    Cast { chat, carol, staff }
}

async fn post_one(app: &TestApp, chat: &Conversation, token: &str, text: &str) -> Value {
    app.post_messages(token, chat.thread_id, &[text])
        .await
        .remove(0)
}

async fn edit(app: &TestApp, token: &str, message: i64, text: &str) -> (u16, Value) {
    let path = format!("/api/messages/{message}/");
    parts(
        app.patch_json(&path, Some(token), &json!({"text": text}))
            .await,
    )
    .await
}

async fn page(app: &TestApp, token: &str, thread: i64) -> Vec<Value> {
    let page = app
        .get_ok(&format!("/thread/{thread}/message/"), token)
        .await;
    results(&page).clone()
}

#[tokio::test]
async fn only_the_sender_edits_and_both_logs_hear_of_it() {
    let app = spawn_app().await;
    let Cast { chat, carol, staff } = cast(&app).await;
    let message = post_one(&app, &chat, &chat.alice, "helo").await;
    let id = id(&message);
    assert_eq!(edit(&app, &chat.bob, id, "hacked").await.0, 403);
    assert_eq!(edit(&app, &carol, id, "hacked").await.0, 404);
    assert_eq!(
        edit(&app, &staff, id, "hacked").await.0,
        404,
        "staff outside the thread"
    );
    assert_eq!(edit(&app, &chat.alice, 999_999, "x").await.0, 404);

    let (status, edited) = edit(&app, &chat.alice, id, "hello").await;
    assert_eq!(status, 200, "{edited}");
    assert_keys(&edited, MESSAGE_KEYS);
    assert_eq!(edited["text"], "hello");
    assert!(edited["edited"].is_string());
    assert_eq!(edited["created"], message["created"]);
    assert_eq!(page(&app, &chat.bob, chat.thread_id).await[0], edited);

    for token in [&chat.alice, &chat.bob] {
        let log = whole_log(&app, token).await;
        let last = log.last().unwrap();
        assert_eq!(last["type"], "message.updated");
        assert_eq!(last["message"], edited);
        assert_keys(last, &["seq", "type", "message"]);
        // The old text is kept in no stored event.
        assert!(
            !log.iter().any(|e| e.to_string().contains("helo")),
            "{log:?}"
        );
    }
}

#[tokio::test]
async fn an_edit_keeps_the_text_rules() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let message = post_one(&app, &chat, &chat.alice, "keep me").await;
    for bad in ["", "   ", "a\u{0}b"] {
        let (status, body) = edit(&app, &chat.alice, id(&message), bad).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert!(body["text"].is_array(), "{body}");
    }
    let (status, _) = edit(&app, &chat.alice, id(&message), &"x".repeat(10_001)).await;
    assert_eq!(status, 400);
    assert_eq!(
        page(&app, &chat.alice, chat.thread_id).await[0]["text"],
        "keep me"
    );
}

async fn delete(app: &TestApp, token: &str, message: i64) -> u16 {
    parts(
        app.delete(&format!("/api/messages/{message}/"), Some(token))
            .await,
    )
    .await
    .0
}

#[tokio::test]
async fn the_sender_or_staff_delete_and_nobody_else() {
    let app = spawn_app().await;
    let Cast { chat, carol, staff } = cast(&app).await;
    let first = id(&post_one(&app, &chat, &chat.alice, "one").await);
    let second = id(&post_one(&app, &chat, &chat.alice, "two").await);
    assert_eq!(delete(&app, &chat.bob, first).await, 403);
    assert_eq!(delete(&app, &carol, first).await, 404);
    assert_eq!(delete(&app, &chat.alice, first).await, 204);
    assert_eq!(delete(&app, &chat.alice, first).await, 404, "already gone");
    assert_eq!(
        delete(&app, &staff, second).await,
        204,
        "staff, even outside the thread"
    );
    assert!(page(&app, &chat.alice, chat.thread_id).await.is_empty());
}

#[tokio::test]
async fn deleting_read_and_unread_messages_keeps_every_counter_exact() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let sent = app
        .post_messages(&chat.alice, chat.thread_id, &["a", "b", "c", "d"])
        .await;
    let ids: Vec<i64> = sent.iter().map(id).collect();
    // Bob reads the first two.
    let (status, _) = parts(
        app.post_json(
            "/message/",
            Some(&chat.bob),
            &json!({"messages_ids": &ids[..2]}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(app.unread_count(&chat.bob, chat.bob_id).await, 2);

    // A read one and an unread one go; the last message goes too.
    assert_eq!(delete(&app, &chat.alice, ids[0]).await, 204);
    assert_eq!(delete(&app, &chat.alice, ids[3]).await, 204);
    assert_eq!(app.unread_count(&chat.bob, chat.bob_id).await, 1);
    assert_eq!(app.message_count(&chat.bob, chat.thread_id).await, 2);
    let thread = app
        .get_ok(&format!("/chat/thread/{}/", chat.thread_id), &chat.bob)
        .await;
    assert_eq!(thread["unread_count"], 1);
    assert_eq!(thread["last_message"]["id"], ids[2]);
    let list = app
        .get_ok(&format!("/chat/user/{}/thread/", chat.bob_id), &chat.bob)
        .await;
    assert_eq!(results(&list)[0]["unread_count"], 1);

    for (token, unread) in [(&chat.alice, 0), (&chat.bob, 1)] {
        let log = whole_log(&app, token).await;
        let last = log.last().unwrap();
        assert_eq!(
            *last,
            json!({"seq": last["seq"], "type": "message.deleted", "thread": chat.thread_id,
                   "message": ids[3], "unread_count": unread})
        );
        let text = serde_json::to_string(&log).unwrap();
        assert!(
            !text.contains(r#""text":"a""#) && !text.contains(r#""text":"d""#),
            "{text}"
        );
    }
}

fn item_error(body: &Value, index: usize, field: &str) -> bool {
    body["messages"][index][field].is_array()
}

#[tokio::test]
async fn a_reply_names_a_message_of_the_same_thread_and_survives_its_deletion() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let original = id(&post_one(&app, &chat, &chat.alice, "lunch?").await);
    let (_, carol) = app.login_new_user("carol").await;
    let elsewhere = app.create_thread(&carol, "carol", "alice").await;
    let foreign = id(&app.post_messages(&carol, id(&elsewhere), &["hi"]).await[0]);

    let path = format!("/thread/{}/message/", chat.thread_id);
    for bad in [json!(foreign), json!(999_999), json!("x")] {
        let body = json!({"messages": [{"text": "fine"}, {"text": "yes", "reply_to": bad}]});
        let (status, answer) = parts(app.post_json(&path, Some(&chat.bob), &body).await).await;
        assert_eq!(status, 400, "{answer}");
        assert!(item_error(&answer, 1, "reply_to"), "{answer}");
        assert_eq!(answer["messages"][0], json!({}));
    }
    assert_eq!(
        app.message_count(&chat.bob, chat.thread_id).await,
        1,
        "nothing stored"
    );

    let body = json!({"messages": [{"text": "yes!", "reply_to": original}]});
    let (status, answer) = parts(app.post_json(&path, Some(&chat.bob), &body).await).await;
    assert_eq!(status, 201);
    assert_eq!(answer[0]["reply_to"], original);
    assert_eq!(delete(&app, &chat.alice, original).await, 204);
    let messages = page(&app, &chat.alice, chat.thread_id).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["reply_to"], original, "kept, dangling");
}

async fn react(app: &TestApp, token: &str, message: i64, emoji: &str, on: bool) -> (u16, Value) {
    // Percent-encoded for a path segment (a space is %20 here, not +).
    let encoded: String = emoji
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let path = format!("/api/messages/{message}/reactions/{encoded}/");
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
}

#[tokio::test]
async fn reactions_group_by_emoji_keep_modifiers_and_are_idempotent() {
    let app = spawn_app().await;
    let Cast { chat, carol, staff } = cast(&app).await;
    let message = id(&post_one(&app, &chat, &chat.alice, "good news").await);
    let (status, answer) = react(&app, &chat.bob, message, "👍🏽", true).await;
    assert_eq!(status, 200, "{answer}");
    react(&app, &chat.alice, message, "👩‍💻", true).await;
    react(&app, &chat.alice, message, "👍🏽", true).await;
    let (_, twice) = react(&app, &chat.alice, message, "👍🏽", true).await;
    assert_eq!(
        twice["reactions"],
        json!([{"emoji": "👍🏽", "users": [chat.bob_id, chat.alice_id]},
               {"emoji": "👩‍💻", "users": [chat.alice_id]}])
    );
    assert_eq!(page(&app, &chat.bob, chat.thread_id).await[0], twice);
    for token in [&chat.alice, &chat.bob] {
        let last = whole_log(&app, token).await.pop().unwrap();
        assert_eq!(last["type"], "message.updated");
        assert_eq!(last["message"]["reactions"], twice["reactions"]);
    }

    // Outsiders (staff too) cannot react; the reactions stay as they were.
    assert_eq!(react(&app, &carol, message, "😀", true).await.0, 404);
    assert_eq!(react(&app, &staff, message, "😀", true).await.0, 404);

    // Taking back: twice is fine, and an emoji nobody uses leaves.
    let (_, after) = react(&app, &chat.alice, message, "👩‍💻", false).await;
    let (status, again) = react(&app, &chat.alice, message, "👩‍💻", false).await;
    assert_eq!(status, 200);
    assert_eq!(again, after);
    assert_eq!(
        after["reactions"],
        json!([{"emoji": "👍🏽", "users": [chat.bob_id, chat.alice_id]}])
    );
}

#[tokio::test]
async fn bad_emoji_and_a_21st_reaction_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let message = id(&post_one(&app, &chat, &chat.alice, "react!").await);
    for bad in [" ", "👍 👍", "a\tb", "\u{7}", &"x".repeat(33)] {
        let (status, body) = react(&app, &chat.bob, message, bad, true).await;
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
    for i in 0..20 {
        assert_eq!(
            react(&app, &chat.bob, message, &format!("e{i}"), true)
                .await
                .0,
            200
        );
    }
    let (status, body) = react(&app, &chat.bob, message, "one-more", true).await;
    assert_eq!(status, 400, "{body}");
    let stored = &page(&app, &chat.bob, chat.thread_id).await[0];
    assert_eq!(stored["reactions"].as_array().unwrap().len(), 20);
    assert_eq!(react(&app, &chat.bob, 999_999, "👍", true).await.0, 404);
}

/// The latest page (what opening a conversation reads), read before and again after every
/// kind of change: each shows at once to both participants (a server may answer it from
/// memory), and the page stays closed to outsiders.
#[tokio::test]
async fn the_latest_page_read_again_shows_every_change_since() {
    latest_page_shows_every_change(spawn_app().await).await;
}

/// The same with nothing kept in memory (`serve --kept-answers-mb 0`).
#[tokio::test]
async fn the_latest_page_with_nothing_kept_shows_every_change_too() {
    let app = spawn_app_with(|config| config.database.kept_answers_bytes = 0).await;
    latest_page_shows_every_change(app).await;
}

async fn latest_page_shows_every_change(app: TestApp) {
    let Cast { chat, carol, staff } = cast(&app).await;
    let latest = |limit: i64| {
        format!(
            "/thread/{}/message/?before=9007199254740991&limit={limit}",
            chat.thread_id
        )
    };
    let texts = |page: &Value| -> Vec<String> {
        results(page)
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let both_see = async |expected: &[&str]| {
        for token in [&chat.alice, &chat.bob] {
            for _ in 0..2 {
                let page = app.get_ok(&latest(2), token).await;
                assert_eq!(texts(&page), expected);
            }
        }
        app.get_ok(&latest(2), &chat.bob).await
    };
    both_see(&[]).await;

    let first = post_one(&app, &chat, &chat.alice, "one").await;
    both_see(&["one"]).await;
    let second = post_one(&app, &chat, &chat.bob, "two").await;
    let third = post_one(&app, &chat, &chat.alice, "three").await;
    let page = both_see(&["two", "three"]).await;
    assert_eq!(page["count"], json!(3));
    assert!(
        page["previous"]
            .as_str()
            .unwrap()
            .contains(&format!("before={}", id(&second)))
    );
    assert_eq!(
        texts(&app.get_ok(&latest(3), &chat.bob).await),
        ["one", "two", "three"]
    );
    // A page before an id that is not past the newest is its own page.
    let before_third = format!(
        "/thread/{}/message/?before={}&limit=2",
        chat.thread_id,
        id(&third)
    );
    assert_eq!(
        texts(&app.get_ok(&before_third, &chat.bob).await),
        ["one", "two"]
    );

    assert_eq!(edit(&app, &chat.alice, id(&third), "three!").await.0, 200);
    both_see(&["two", "three!"]).await;

    assert_eq!(react(&app, &chat.bob, id(&third), "👍", true).await.0, 200);
    let page = both_see(&["two", "three!"]).await;
    assert_eq!(results(&page)[1]["reactions"][0]["emoji"], "👍");

    let read = app
        .post_json(
            "/message/",
            Some(&chat.bob),
            &json!({"messages_ids": [id(&third)]}),
        )
        .await;
    assert_eq!(read.status(), 200);
    let page = both_see(&["two", "three!"]).await;
    assert_eq!(results(&page)[1]["is_read"], json!(true));

    assert_eq!(delete(&app, &chat.alice, id(&third)).await, 204);
    let page = both_see(&["one", "two"]).await;
    assert_eq!(page["count"], json!(2));
    assert_eq!(id(&results(&page)[0]), id(&first));

    // Outsiders are refused the page kept for the participants; staff may read it.
    let (status, _) = parts(app.get(&latest(2), Some(&carol)).await).await;
    assert_eq!(status, 404);
    assert_eq!(texts(&app.get_ok(&latest(2), &staff).await), ["one", "two"]);

    let gone = app
        .delete(
            &format!("/chat/thread/{}/", chat.thread_id),
            Some(&chat.bob),
        )
        .await;
    assert_eq!(gone.status(), 204);
    let (status, _) = parts(app.get(&latest(2), Some(&chat.bob)).await).await;
    assert_eq!(status, 404, "the deleted thread's page is not answered");
}

/// A user's unread total read again after each kind of change shows it at once (a server
/// may answer it from memory).
#[tokio::test]
async fn the_unread_total_read_again_shows_every_change_since() {
    unread_total_shows_every_change(spawn_app().await).await;
}

/// The same with nothing kept in memory (`serve --kept-answers-mb 0`).
#[tokio::test]
async fn the_unread_total_with_nothing_kept_shows_every_change_too() {
    let app = spawn_app_with(|config| config.database.kept_answers_bytes = 0).await;
    unread_total_shows_every_change(app).await;
}

async fn unread_total_shows_every_change(app: TestApp) {
    let Cast { chat, carol, staff } = cast(&app).await;
    let unread_is = async |alice: i64, bob: i64| {
        for _ in 0..2 {
            assert_eq!(app.unread_count(&chat.alice, chat.alice_id).await, alice);
            assert_eq!(app.unread_count(&chat.bob, chat.bob_id).await, bob);
        }
    };
    unread_is(0, 0).await;

    let first = post_one(&app, &chat, &chat.alice, "one").await;
    let second = post_one(&app, &chat, &chat.alice, "two").await;
    unread_is(0, 2).await;
    let read = app
        .post_json(
            "/message/",
            Some(&chat.bob),
            &json!({"messages_ids": [id(&first)]}),
        )
        .await;
    assert_eq!(read.status(), 200);
    unread_is(0, 1).await;
    assert_eq!(delete(&app, &chat.alice, id(&second)).await, 204);
    unread_is(0, 0).await;
    post_one(&app, &chat, &chat.bob, "three").await;
    unread_is(1, 0).await;

    // Staff may read anyone's total; an outsider is refused it.
    assert_eq!(app.unread_count(&staff, chat.alice_id).await, 1);
    let (status, _) = parts(
        app.get(&format!("/user/{}/message/", chat.alice_id), Some(&carol))
            .await,
    )
    .await;
    assert_eq!(status, 403);

    // Bob's account goes, and with it the thread and what Alice had not read.
    let gone = app
        .delete(&format!("/api/users/{}/", chat.bob_id), Some(&staff))
        .await;
    assert_eq!(gone.status(), 204);
    for _ in 0..2 {
        assert_eq!(app.unread_count(&chat.alice, chat.alice_id).await, 0);
    }
}
