//! Search: every word, case-insensitive, in any script that separates words with spaces, the
//! last word as a prefix; newest first; only the requester's own threads, ever.

use serde_json::{Value, json};

use simple_chat::Config;

use crate::helpers::{TestApp, id, parts, results, serve_database, spawn_app};

async fn search(app: &TestApp, token: &str, query: &str) -> Value {
    let query: String = form_urlencoded::byte_serialize(query.as_bytes()).collect();
    app.get_ok(&format!("/api/search/?q={query}"), token).await
}

fn texts(page: &Value) -> Vec<String> {
    results(page)
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_word_counts_case_and_script_aside_and_the_last_is_a_prefix() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let said = [
        "Lunch at noon on Friday?",
        "Привет, как дела?",
        "Un café crème, s'il te plaît",
        "The meeting moved to Monday",
    ];
    app.post_messages(&chat.alice, chat.thread_id, &said).await;
    app.post_messages(&chat.bob, chat.thread_id, &["lunch? sure"])
        .await;
    assert_eq!(
        texts(&search(&app, &chat.bob, "LUNCH noon").await),
        ["Lunch at noon on Friday?"]
    );
    assert_eq!(
        texts(&search(&app, &chat.bob, "lun").await),
        ["lunch? sure", "Lunch at noon on Friday?"],
        "newest first, last word as a prefix"
    );
    assert!(texts(&search(&app, &chat.bob, "lunch tomorrow").await).is_empty());
    assert_eq!(
        texts(&search(&app, &chat.alice, "привет").await),
        ["Привет, как дела?"]
    );
    assert_eq!(
        texts(&search(&app, &chat.alice, "ДЕЛА").await),
        ["Привет, как дела?"]
    );
    assert_eq!(
        texts(&search(&app, &chat.alice, "CAFÉ crè").await),
        ["Un café crème, s'il te plaît"]
    );
    assert_eq!(search(&app, &chat.alice, "meeting").await["count"], 1);
}

#[tokio::test]
async fn nobody_finds_anyone_elses_messages() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let (_, carol) = app.login_new_user("carol").await;
    let (_, staff) = app.login_new_staff("stella").await;
    let other = app.create_thread(&carol, "carol", "alice").await;
    app.post_messages(&chat.alice, chat.thread_id, &["secret plans"])
        .await;
    app.post_messages(&carol, id(&other), &["my secret recipe"])
        .await;
    assert_eq!(
        texts(&search(&app, &chat.bob, "secret").await),
        ["secret plans"]
    );
    assert_eq!(
        texts(&search(&app, &carol, "secret").await),
        ["my secret recipe"]
    );
    assert_eq!(search(&app, &chat.alice, "secret").await["count"], 2);
    assert_eq!(
        search(&app, &staff, "secret").await["count"],
        0,
        "staff search their own"
    );
    // Narrowed to one thread; someone else's thread gives nothing.
    let path = format!("/api/search/?q=secret&thread={}", chat.thread_id);
    assert_eq!(
        texts(&app.get_ok(&path, &chat.alice).await),
        ["secret plans"]
    );
    let path = format!("/api/search/?q=secret&thread={}", id(&other));
    assert_eq!(app.get_ok(&path, &chat.bob).await["count"], 0);
}

#[tokio::test]
async fn edits_and_deletes_are_searched_at_once_and_pages_are_newest_first() {
    let app = spawn_app().await;
    let chat = app.conversation().await;
    let posted = app
        .post_messages(
            &chat.alice,
            chat.thread_id,
            &["orange one", "orange two", "orange three"],
        )
        .await;
    let page = app.get_ok("/api/search/?q=orange&limit=2", &chat.bob).await;
    assert_eq!(page["count"], 3);
    assert_eq!(texts(&page), ["orange three", "orange two"]);
    assert!(page["next"].is_string());
    let next = page["next"].as_str().unwrap();
    let next = next.strip_prefix(app.address.as_str()).unwrap();
    let second = app.get_ok(next, &chat.bob).await;
    assert_eq!(second["count"], 3);
    assert_eq!(texts(&second), ["orange one"]);
    // Past the last match the page is empty and still says how many there are.
    let past = app
        .get_ok("/api/search/?q=orange&limit=2&offset=5", &chat.bob)
        .await;
    assert_eq!(past["count"], 3);
    assert_eq!(texts(&past), Vec::<String>::new());
    let edit = json!({"text": "apple two"});
    let path = format!("/api/messages/{}/", id(&posted[1]));
    assert_eq!(
        app.patch_json(&path, Some(&chat.alice), &edit)
            .await
            .status(),
        200
    );
    app.delete(
        &format!("/api/messages/{}/", id(&posted[2])),
        Some(&chat.alice),
    )
    .await;
    assert_eq!(
        texts(&search(&app, &chat.bob, "orange").await),
        ["orange one"]
    );
    assert_eq!(
        texts(&search(&app, &chat.bob, "apple").await),
        ["apple two"]
    );
}

#[tokio::test]
async fn a_blank_or_missing_query_is_a_400() {
    let app = spawn_app().await;
    let (_, alice) = app.login_new_user("alice").await;
    for path in [
        "/api/search/",
        "/api/search/?q=",
        "/api/search/?q=%20%3F!",
        "/api/search/?q=x&thread=abc",
    ] {
        let (status, body) = parts(app.get(path, Some(&alice)).await).await;
        assert_eq!(status, 400, "{path}: {body}");
    }
    // Characters that mean something to a query language are just not words.
    let page = search(&app, &alice, "\" OR * NEAR( -- ").await;
    assert_eq!(page["count"], 0);
}

#[tokio::test]
async fn a_database_without_the_current_index_is_indexed_when_the_server_opens_it() {
    // As an older binary (or a crash in the middle of a bulk load) would leave it: messages,
    // but no search index and no record of one. SQLite only: PostgreSQL keeps its own column.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.sqlite3").display());
    let before = serve_database(Config::new(url.clone()), None).await;
    let (_, alice) = before.login_new_user("alice").await;
    let (_, bob) = before.login_new_user("bob").await;
    let thread = id(&before.create_thread(&alice, "alice", "bob").await);
    before
        .post_messages(&alice, thread, &["pelican crossing", "heron"])
        .await;
    assert_eq!(search(&before, &bob, "pelican").await["count"], 1);
    drop(before);
    let conn = rusqlite::Connection::open(dir.path().join("old.sqlite3")).unwrap();
    conn.execute_batch(
        "INSERT INTO messages_fts (messages_fts) VALUES ('delete-all');
         PRAGMA user_version = 0;",
    )
    .unwrap();
    drop(conn);

    let after = serve_database(Config::new(url), Some(dir)).await;
    assert_eq!(
        texts(&search(&after, &bob, "pelic").await),
        ["pelican crossing"]
    );
    assert_eq!(search(&after, &alice, "heron").await["count"], 1);
}
