//! Moving data in: `simple-chat migrate-data` (a whole database into an empty one, e.g. SQLite
//! to PostgreSQL) and `simple-chat import-django` (the original app's db.sqlite3).

use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};
use simple_chat::Config;

use crate::helpers::{PASSWORD, database_url, id, parts, results, serve_database};

fn simple_chat(args: &[&str], database_url: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_simple-chat"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .stdin(Stdio::null())
        .output()
        .expect("run simple-chat")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_data_copies_everything_with_ids_and_verifies_it() {
    // The source is always SQLite; the target is this suite's database (PostgreSQL in the
    // PostgreSQL run).
    let source_dir = tempfile::tempdir().unwrap();
    let source_url = format!(
        "sqlite://{}",
        source_dir.path().join("old.sqlite3").display()
    );
    let source = serve_database(Config::new(source_url.clone()), None).await;
    let (alice_id, alice) = source.login_new_user("alice").await;
    let (bob_id, bob) = source.login_new_user("bob").await;
    source.create_user("carol", PASSWORD).await;
    let thread = id(&source.create_thread(&alice, "alice", "bob").await);
    let posted = source
        .post_messages(&alice, thread, &["one", "two", "three"])
        .await;
    source
        .post_json(
            "/message/",
            Some(&bob),
            &json!({"messages_ids": [id(&posted[0])]}),
        )
        .await;
    let picture = crate::files::noise(300_000);
    let (_, file) = crate::files::upload(
        &source,
        &alice,
        "picture.bin",
        "application/octet-stream",
        picture.clone(),
    )
    .await;
    let with_file = json!({"messages": [{"text": "see attached", "files": [id(&file)]}]});
    let (status, _) = parts(
        source
            .post_json(
                &format!("/thread/{thread}/message/"),
                Some(&alice),
                &with_file,
            )
            .await,
    )
    .await;
    assert_eq!(status, 201);
    let messages_before = source
        .get_ok(&format!("/thread/{thread}/message/"), &bob)
        .await;
    let threads_before = source
        .get_ok(&format!("/chat/user/{bob_id}/thread/"), &bob)
        .await;
    drop(source);

    let target_dir = tempfile::tempdir().unwrap();
    let target_url = database_url(target_dir.path());
    let output = simple_chat(
        &["migrate-data", "--from", &source_url, "--to", &target_url],
        &source_url,
    );
    assert!(output.status.success(), "{output:?}");
    let report = stdout(&output);
    // Not on a terminal: plain progress lines on standard error.
    let progress = String::from_utf8_lossy(&output.stderr);
    for line in ["copy messages: 4/4 (100%)", "verify messages: 4/4 (100%)"] {
        assert!(progress.lines().any(|l| l == line), "{progress}");
    }
    for line in [
        "users: 3 rows copied and verified",
        "threads: 1 rows copied and verified",
        "thread_members: 2 rows copied and verified",
        "messages: 4 rows copied and verified",
        "files: 1 rows copied and verified",
        "file_chunks: 2 rows copied and verified",
        "message_files: 1 rows copied and verified",
    ] {
        assert!(report.contains(line), "{report}");
    }
    let again = simple_chat(
        &["migrate-data", "--from", &source_url, "--to", &target_url],
        &source_url,
    );
    assert!(
        !again.status.success(),
        "a second copy into a non-empty database is refused"
    );
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let target = serve_database(Config::new(target_url), Some(target_dir)).await;
    // Tokens issued by the old database still work: the signing key came along.
    let me = target.get_ok("/api/me/", &alice).await;
    assert_eq!(id(&me), alice_id);
    assert_eq!(
        target
            .get_ok(&format!("/thread/{thread}/message/"), &bob)
            .await,
        messages_before
    );
    assert_eq!(
        target
            .get_ok(&format!("/chat/user/{bob_id}/thread/"), &bob)
            .await,
        threads_before
    );
    assert_eq!(target.unread_count(&bob, bob_id).await, 3);
    // The copied messages are found by search.
    let found = target.get_ok("/api/search/?q=thr", &bob).await;
    assert_eq!(id(&results(&found)[0]), id(&posted[2]));
    // The file came along, byte for byte.
    let downloaded = target
        .get(&format!("/api/files/{}/content", id(&file)), Some(&bob))
        .await;
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.bytes().await.unwrap().to_vec(), picture);
    // New rows continue after the copied ids, and the event log continues too.
    let (status, events) = parts(
        target
            .get("/api/events/?since=0&timeout=0", Some(&bob))
            .await,
    )
    .await;
    assert_eq!(status, 200);
    let seq = events["seq"].as_i64().unwrap();
    assert_eq!(events["events"].as_array().unwrap().len() as i64, seq);
    let next = target.post_messages(&alice, thread, &["five"]).await;
    assert_eq!(id(&next[0]), id(&posted[2]) + 2);
    let (_, after) = parts(
        target
            .get(&format!("/api/events/?since={seq}&timeout=0"), Some(&bob))
            .await,
    )
    .await;
    assert_eq!(after["events"][0]["seq"], seq + 1);
}

/// The password `django-pass-1` as Django stores it (1000 iterations to keep the test quick).
const DJANGO_HASH: &str =
    "pbkdf2_sha256$1000$saltsaltsalt$K6/trMkvM8HaCnZnf6tliLuJMmfDm+I340KbjB+oLtQ=";

/// A db.sqlite3 with the original app's tables: four users; thread 1 of alice and bob, thread 2
/// of three people, thread 3 of one.
fn django_database(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "CREATE TABLE auth_user (id INTEGER PRIMARY KEY AUTOINCREMENT, password VARCHAR(128) NOT NULL,
             last_login DATETIME NULL, is_superuser BOOL NOT NULL, username VARCHAR(150) NOT NULL UNIQUE,
             first_name VARCHAR(150) NOT NULL, last_name VARCHAR(150) NOT NULL, email VARCHAR(254) NOT NULL,
             is_staff BOOL NOT NULL, is_active BOOL NOT NULL, date_joined DATETIME NOT NULL);
         CREATE TABLE chat_thread (id INTEGER PRIMARY KEY AUTOINCREMENT, created DATETIME NOT NULL,
             updated DATETIME NOT NULL);
         CREATE TABLE chat_thread_participants (id INTEGER PRIMARY KEY AUTOINCREMENT,
             thread_id INTEGER NOT NULL REFERENCES chat_thread (id), user_id INTEGER NOT NULL REFERENCES auth_user (id));
         CREATE TABLE chat_message (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL,
             created DATETIME NOT NULL, is_read BOOL NOT NULL, sender_id INTEGER NOT NULL REFERENCES auth_user (id),
             thread_id INTEGER NOT NULL REFERENCES chat_thread (id));
         INSERT INTO auth_user VALUES
             (1, '{DJANGO_HASH}', '2024-05-02 08:00:00.000000', 1, 'root', '', '', 'root@example.com', 1, 1, '2024-05-01 09:00:00.000000'),
             (2, '{DJANGO_HASH}', NULL, 0, 'alice', 'Alice', 'A', 'alice@example.com', 0, 1, '2024-05-01 09:01:00.000000'),
             (3, '{DJANGO_HASH}', NULL, 0, 'bob', '', '', '', 0, 1, '2024-05-01 09:02:00.000000'),
             (4, '{DJANGO_HASH}', NULL, 0, 'carol', '', '', '', 0, 1, '2024-05-01 09:03:00.000000');
         INSERT INTO chat_thread VALUES
             (1, '2024-05-01 10:00:00.000000', '2024-05-01 10:05:00.000000'),
             (2, '2024-05-01 11:00:00.000000', '2024-05-01 11:00:00.000000'),
             (3, '2024-05-01 12:00:00.000000', '2024-05-01 12:00:00.000000');
         INSERT INTO chat_thread_participants (thread_id, user_id) VALUES
             (1, 2), (1, 3), (2, 2), (2, 3), (2, 4), (3, 4);
         INSERT INTO chat_message VALUES
             (10, 'hello bob', '2024-05-01 10:01:00.123456', 1, 2, 1),
             (11, 'hi alice', '2024-05-01 10:02:00.000000', 0, 3, 1),
             (12, 'lunch?', '2024-05-01 10:05:00.000000', 0, 2, 1),
             (13, 'group chat', '2024-05-01 11:00:00.000000', 0, 4, 2);"
    ))
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_django_brings_users_threads_and_messages_once() {
    let dir = tempfile::tempdir().unwrap();
    let django = dir.path().join("django.sqlite3");
    django_database(&django);
    let target_url = database_url(dir.path());

    let first = simple_chat(&["import-django", &django.to_string_lossy()], &target_url);
    let second = simple_chat(&["import-django", &django.to_string_lossy()], &target_url);

    assert!(first.status.success(), "{first:?}");
    let progress = String::from_utf8_lossy(&first.stderr);
    assert!(
        progress.lines().any(|l| l == "import messages: 3/3 (100%)"),
        "{progress}"
    );
    let report = stdout(&first);
    assert!(report.contains("Imported 4 users (0 already there), 1 threads (0 already there), 3 messages (0 already there)."), "{report}");
    for line in [
        "Not imported: thread 2 (3 participant(s): alice, bob, carol): a thread is exactly two people",
        "Not imported: thread 3 (1 participant(s): carol): a thread is exactly two people",
        "Not imported: 1 message(s) of thread 2",
    ] {
        assert!(report.contains(line), "{report}");
    }
    assert!(second.status.success(), "{second:?}");
    assert!(
        stdout(&second).contains("Imported 0 users (4 already there), 0 threads (1 already there), 0 messages (3 already there)."),
        "{}",
        stdout(&second)
    );

    let app = serve_database(Config::new(target_url), Some(dir)).await;
    // Django password hashes keep working; ids and names are kept.
    let alice = app.token("alice", "django-pass-1").await;
    let bob = app.token("bob", "django-pass-1").await;
    let root = app.token("root", "django-pass-1").await;
    let me = app.get_ok("/api/me/", &root).await;
    assert_eq!(
        (me["id"].as_i64(), me["is_superuser"].as_bool()),
        (Some(1), Some(true))
    );
    let alice_me = app.get_ok("/api/me/", &alice).await;
    assert_eq!(alice_me["first_name"], "Alice");
    assert_eq!(alice_me["date_joined"], "2024-05-01T09:01:00.000000Z");
    let thread = app.get_ok("/chat/thread/1/", &bob).await;
    assert_eq!(thread["participants_list"], json!(["alice", "bob"]));
    assert_eq!(thread["created"], "2024-05-01T10:00:00.000000Z");
    assert_eq!(thread["last_message"]["id"], 12);
    assert_eq!(thread["unread_count"], 1, "lunch? is unread for bob");
    let messages = app.get_ok("/thread/1/message/", &alice).await;
    let ids: Vec<i64> = results(&messages).iter().map(id).collect();
    assert_eq!(ids, [10, 11, 12]);
    assert_eq!(
        results(&messages)[0]["created"],
        "2024-05-01T10:01:00.123456Z"
    );
    assert_eq!(results(&messages)[0]["is_read"], true);
    assert_eq!(app.unread_count(&alice, 2).await, 1, "hi alice is unread");
    // The three-person thread is not there; new threads and messages get fresh ids.
    let (status, _) = parts(app.get("/chat/thread/2/", Some(&root)).await).await;
    assert_eq!(status, 404);
    let new_message = app
        .post_messages(&alice, 1, &["back on the new server"])
        .await;
    assert_eq!(id(&new_message[0]), 13);
    let value: Value = app.get_ok("/api/users/?search=carol", &root).await;
    assert_eq!(value["count"], 1);
    // Imported messages are found by search.
    let found = app.get_ok("/api/search/?q=lunch", &bob).await;
    assert_eq!(results(&found).iter().map(id).collect::<Vec<_>>(), [12]);
}
