//! The SQLite search index's queue (`search_queue`): a post or an edit adds its message's id
//! in its own transaction, and the writer indexes everything queued at once, at the end of a
//! batch, when a search asks for it, when [`MAX_QUEUED`] messages wait, or when the oldest has
//! waited [`MAX_WAIT`].
//!
//! FTS5 writes each transaction's entries as a new segment of the index, and a search looks
//! each of its terms up in every segment. Indexing at every commit (dozens a second while
//! people post) left so many small segments between FTS5's merges that a search after a
//! minute of posting answered half as fast as right after a rebuild (scenario A, bench/load).
//! The writer merges the segments once it is quiet ([`super::merge`]).
//! A search never misses a message whose post was answered: it checks the queue in its own
//! snapshot, and when anything waits it has the writer index it and searches again. The queue
//! is a table, not memory, so a crash loses nothing: the writer indexes what it finds queued
//! when it starts.

use std::time::{Duration, Instant};

use rusqlite::Connection;

use super::{INDEX, terms};
use crate::store::db::{Dialect, Sql};

/// Queued messages (counted from the lowest queued id to the highest) that are indexed
/// without waiting any longer: FTS5 keeps what a transaction indexes in memory up to about
/// 1 MB anyway.
pub const MAX_QUEUED: i64 = 2_000;
/// The longest a queued message waits for the index.
pub const MAX_WAIT: Duration = Duration::from_secs(1);

/// Queues a message for the index (in the writing transaction).
pub(crate) static QUEUE: Sql =
    Sql::new("INSERT OR IGNORE INTO search_queue (message_id) VALUES ($1)");
/// Whether anything waits to be indexed.
pub(crate) static WAITING: Sql = Sql::new("SELECT EXISTS (SELECT 1 FROM search_queue)");
const SPAN: &str = "SELECT MIN(message_id), MAX(message_id) FROM search_queue";
/// Every queued message still there, with what its terms are made of, in ascending order of
/// id: FTS5 writes out what it holds whenever a rowid comes lower than the one before.
const QUEUED: &str = "SELECT m.id, m.thread_id, t.user_low, t.user_high, m.text
     FROM search_queue q
     JOIN messages m ON m.id = q.message_id
     JOIN threads t ON t.id = m.thread_id
     ORDER BY q.message_id";
pub(crate) static EMPTY: Sql = Sql::new("DELETE FROM search_queue");

/// What the writer knows of the queue between its transactions.
#[derive(Debug, Default)]
pub(crate) struct SearchQueue {
    /// Since when messages have been waiting (`None`: the queue was empty at the last commit).
    since: Option<Instant>,
}

/// What [`SearchQueue::before_commit`] found: whether messages still wait after this commit,
/// and whether it indexed any (a new segment for [`super::IndexMerge`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AfterCommit {
    waiting: bool,
    pub indexed: bool,
}

impl SearchQueue {
    /// Inside a batch's transaction, after its jobs: indexes the queue when `asked` (a search
    /// waits), when it holds [`MAX_QUEUED`] messages, or when the oldest has waited
    /// [`MAX_WAIT`].
    pub fn before_commit(&self, conn: &Connection, asked: bool) -> rusqlite::Result<AfterCommit> {
        let (low, high): (Option<i64>, Option<i64>) = conn
            .prepare_cached(SPAN)?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        let (Some(low), Some(high)) = (low, high) else {
            return Ok(AfterCommit {
                waiting: false,
                indexed: false,
            });
        };
        let due = self.since.is_some_and(|since| since.elapsed() >= MAX_WAIT);
        if asked || due || high - low + 1 >= MAX_QUEUED {
            index_queued(conn)?;
            return Ok(AfterCommit {
                waiting: false,
                indexed: true,
            });
        }
        Ok(AfterCommit {
            waiting: true,
            indexed: false,
        })
    }

    /// Once the transaction has committed.
    pub fn after_commit(&mut self, after: AfterCommit) {
        self.since = match (after.waiting, self.since) {
            (false, _) => None,
            (true, Some(since)) => Some(since),
            (true, None) => Some(Instant::now()),
        };
    }

    /// How long the writer may wait for a job before the queue is due (`None`: nothing waits).
    pub fn due_in(&self) -> Option<Duration> {
        self.since
            .map(|since| MAX_WAIT.saturating_sub(since.elapsed()))
    }

    /// Indexes whatever is queued in a transaction of its own: when the writer starts (what a
    /// crash left queued), when the queue is due and no job came, and when the writer stops.
    /// After a failure the queue is tried again [`MAX_WAIT`] later. Says whether it indexed
    /// anything.
    pub fn index_now(&mut self, conn: &Connection) -> rusqlite::Result<bool> {
        let attempt = || -> rusqlite::Result<AfterCommit> {
            // Only a queue with something in it takes the write lock (a CLI command's store
            // starts a writer too, on a database that may be busy or read-only).
            let waiting: bool = conn
                .prepare_cached(WAITING.text(Dialect::Sqlite))?
                .query_row([], |row| row.get(0))?;
            if !waiting {
                return Ok(AfterCommit {
                    waiting: false,
                    indexed: false,
                });
            }
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let after = self.before_commit(conn, true)?;
            conn.execute_batch("COMMIT")?;
            Ok(after)
        };
        match attempt() {
            Ok(after) => {
                self.after_commit(after);
                Ok(after.indexed)
            }
            Err(error) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                self.since = Some(Instant::now());
                Err(error)
            }
        }
    }
}

/// Writes the index entries of every queued message that still exists, and empties the queue.
fn index_queued(conn: &Connection) -> rusqlite::Result<()> {
    let mut queued = conn.prepare_cached(QUEUED)?;
    // A plain INSERT ... VALUES: a statement that may write several rows (INSERT ... SELECT)
    // opens a statement savepoint, and FTS5 writes out what it holds at every savepoint.
    let mut insert = conn.prepare_cached(INDEX.text(Dialect::Sqlite))?;
    let mut rows = queued.query([])?;
    while let Some(row) = rows.next()? {
        let id: i64 = row.get(0)?;
        let thread: i64 = row.get(1)?;
        let users = [row.get(2)?, row.get(3)?];
        let text: String = row.get(4)?;
        insert.execute(rusqlite::params![id, terms(users, thread, &text)])?;
    }
    conn.prepare_cached(EMPTY.text(Dialect::Sqlite))?
        .execute([])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::{
        Store,
        db::Db,
        messages::{NewMessage, Posted},
        sqlite::{SqliteStore, run_now},
        users::NewUser,
    };

    static INDEXED: Sql = Sql::new("SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH $1");
    static LEFT_BEHIND: Sql = Sql::new(
        "INSERT INTO messages (thread_id, sender_id, text, created) VALUES ($1, $2, $3, 0)
         RETURNING id",
    );

    /// A store on a fresh file, Alice and Bob, and their thread.
    struct Chat {
        _dir: tempfile::TempDir,
        url: String,
        store: Store,
        sqlite: SqliteStore,
        alice: i64,
        thread: i64,
    }

    async fn open(url: &str) -> (Store, SqliteStore) {
        let (store, _) = Store::open(url).await.unwrap();
        let Store::Sqlite(sqlite) = store.clone() else {
            unreachable!()
        };
        (store, sqlite)
    }

    async fn chat() -> Chat {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("queue.sqlite3").display());
        let (store, sqlite) = open(&url).await;
        let mut ids = Vec::new();
        for name in ["alice", "bob"] {
            ids.push(store.create_user(NewUser::named(name)).await.unwrap().id);
        }
        let (thread, _) = store.create_thread(ids[0], ids[1], ids[0]).await.unwrap();
        Chat {
            _dir: dir,
            url,
            store,
            sqlite,
            alice: ids[0],
            thread: thread.id,
        }
    }

    impl Chat {
        async fn post(&self, texts: impl IntoIterator<Item = String>) {
            let batch = texts
                .into_iter()
                .map(|text| NewMessage {
                    text,
                    client_id: None,
                    reply_to: None,
                    files: Vec::new(),
                })
                .collect();
            let posted = self.store.post_messages(self.thread, self.alice, batch);
            assert!(matches!(posted.await.unwrap(), Posted::Stored(_)));
        }

        /// Alice's entries for `word` in the index, read without a search (which would have
        /// the queue indexed first).
        async fn indexed(&self, sqlite: &SqliteStore, word: &str) -> i64 {
            let term = format!("\"u{}x{word}\"", self.alice);
            sqlite
                .read(|db| run_now(db.one(&INDEXED, &[&term])))
                .await
                .unwrap()
        }
    }

    async fn waiting(sqlite: &SqliteStore) -> bool {
        sqlite
            .read(|db| run_now(db.one(&WAITING, &[])))
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_post_waits_in_the_queue_until_it_is_due() {
        let chat = chat().await;
        chat.post(["hello there".to_owned()]).await;
        assert!(waiting(&chat.sqlite).await);
        assert_eq!(chat.indexed(&chat.sqlite, "hello").await, 0);

        // No search asks: the writer indexes it once it has waited long enough.
        let started = std::time::Instant::now();
        while waiting(&chat.sqlite).await {
            assert!(started.elapsed() < MAX_WAIT * 5, "still queued");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(started.elapsed() >= MAX_WAIT / 2);
        assert_eq!(chat.indexed(&chat.sqlite, "hello").await, 1);
    }

    #[tokio::test]
    async fn a_full_queue_is_indexed_at_once() {
        let chat = chat().await;
        let texts = |n, word: &'static str| (0..n).map(move |i| format!("{word} {i}"));
        chat.post(texts(MAX_QUEUED - 1, "early")).await;
        assert!(waiting(&chat.sqlite).await);
        chat.post(texts(1, "last")).await;
        assert!(!waiting(&chat.sqlite).await);
        assert_eq!(chat.indexed(&chat.sqlite, "early").await, MAX_QUEUED - 1);
        assert_eq!(chat.indexed(&chat.sqlite, "last").await, 1);
    }

    /// A crash leaves committed messages queued: the next writer to start indexes them.
    #[tokio::test]
    async fn what_a_crash_left_queued_is_indexed_when_a_writer_starts() {
        let chat = chat().await;
        // Written as a crashed server would have left it (by another connection, which this
        // store's writer does not hear of): the message and its queue entry.
        let path = crate::store::sqlite::path_from_url(&chat.url).unwrap();
        let raw = rusqlite::Connection::open(path).unwrap();
        raw.busy_timeout(Duration::from_secs(5)).unwrap();
        let left: i64 = raw
            .query_row(
                LEFT_BEHIND.text(Dialect::Sqlite),
                rusqlite::params![chat.thread, chat.alice, "left behind"],
                |row| row.get(0),
            )
            .unwrap();
        raw.execute(QUEUE.text(Dialect::Sqlite), [left]).unwrap();
        assert!(left > 0);
        assert_eq!(chat.indexed(&chat.sqlite, "left").await, 0);

        // A second server on the same file: its writer indexes the queue before any job.
        let (_again, restarted) = open(&chat.url).await;
        restarted.write(|_| Ok(())).await.unwrap();
        assert!(!waiting(&restarted).await);
        assert_eq!(chat.indexed(&restarted, "left").await, 1);
        assert_eq!(chat.indexed(&restarted, "behind").await, 1);
    }
}
