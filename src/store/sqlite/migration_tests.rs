//! Migrations applied to a database that already holds rows: what was stored is still there,
//! and the rules the new schema enforces hold for the old rows too.

use rusqlite::{Connection, ErrorCode};

use super::{connect, migrate, tests::assert_no_scan};
use crate::store::{db::Sql, migrations::SQLITE};

/// A database migrated up to (not including) the migration named `until`.
fn migrated_until(until: &str) -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().unwrap();
    let conn = connect(&dir.path().join("old.sqlite3")).unwrap();
    conn.execute_batch(
        "CREATE TABLE schema_migrations (name TEXT PRIMARY KEY NOT NULL, applied INTEGER NOT NULL)",
    )
    .unwrap();
    for (name, sql) in SQLITE.iter().take_while(|(name, _)| *name < until) {
        conn.execute_batch(sql).unwrap();
        conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [name])
            .unwrap();
    }
    (dir, conn)
}

fn post(conn: &Connection, sender: i64, client_id: Option<&str>) -> rusqlite::Result<usize> {
    conn.execute(
        "INSERT INTO messages (thread_id, sender_id, text, created, client_id)
         VALUES (1, ?1, 'hi', 0, ?2)",
        rusqlite::params![sender, client_id],
    )
}

#[test]
fn one_sender_index_keeps_every_message_and_each_senders_client_ids_unique() {
    let (_dir, mut conn) = migrated_until("0010_one_sender_index");
    conn.execute_batch(
        "INSERT INTO users (id, username, password, date_joined) VALUES (1, 'ann', '', 0), (2, 'bob', '', 0);
         INSERT INTO threads (id, user_low, user_high, created, updated) VALUES (1, 1, 2, 0, 0);",
    )
    .unwrap();
    for (sender, client_id) in [(1, None), (1, None), (1, Some("m-1")), (2, Some("m-1"))] {
        post(&conn, sender, client_id).unwrap();
    }

    let applied = migrate(&mut conn).unwrap();
    assert!(
        applied.contains(&"0010_one_sender_index".to_owned()),
        "{applied:?}"
    );
    let kept: i64 = conn
        .query_row("SELECT COUNT(*) FROM messages", [], |row| row.get(0))
        .unwrap();
    assert_eq!(kept, 4);
    let sender_indexes: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_master
             WHERE type = 'index' AND tbl_name = 'messages' AND sql LIKE '%sender_id%'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(sender_indexes, 1, "a post updates one index on its sender");
    // Without a client_id a sender posts as often as they like; with one, once.
    post(&conn, 1, None).unwrap();
    post(&conn, 2, Some("m-2")).unwrap();
    let again = post(&conn, 1, Some("m-1")).unwrap_err();
    assert_eq!(
        again.sqlite_error_code(),
        Some(ErrorCode::ConstraintViolation)
    );
    // A deleted user's messages are found through it (the foreign key's cascade looks them up
    // by sender), not by reading every message.
    assert_no_scan(
        &conn,
        "a sender's messages",
        &Sql::new("SELECT id FROM messages WHERE sender_id = $1"),
    );
}

#[test]
fn activity_on_threads_keeps_every_member_and_unread_count() {
    let (_dir, mut conn) = migrated_until("0011_activity_on_threads");
    conn.execute_batch(
        "INSERT INTO users (id, username, password, date_joined)
             VALUES (1, 'ann', '', 0), (2, 'bob', '', 0), (3, 'cy', '', 0);
         INSERT INTO threads (id, user_low, user_high, created, updated)
             VALUES (1, 1, 2, 0, 10), (2, 1, 3, 0, 20);
         INSERT INTO thread_members (user_id, thread_id, updated, unread)
             VALUES (1, 1, 10, 0), (2, 1, 10, 4), (1, 2, 20, 1), (3, 2, 20, 0);",
    )
    .unwrap();

    let applied = migrate(&mut conn).unwrap();
    assert!(
        applied.contains(&"0011_activity_on_threads".to_owned()),
        "{applied:?}"
    );
    let mut members = conn
        .prepare(
            "SELECT user_id, thread_id, unread FROM thread_members ORDER BY user_id, thread_id",
        )
        .unwrap();
    let members: Vec<(i64, i64, i64)> = members
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(members, [(1, 1, 0), (1, 2, 1), (2, 1, 4), (3, 2, 0)]);
    // A post no longer touches the members' rows for their place in the list: the thread's
    // own activity orders it, and no index on the member rows moves with it.
    let indexes: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'thread_members' AND sql IS NOT NULL ORDER BY name")
        .unwrap()
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(indexes, ["thread_members_thread"]);
}
