//! Merging the SQLite search index's segments once the writer has been quiet for a moment.
//!
//! Every indexing of the queue ([`super::queue`]) writes a new FTS5 segment, and a search looks
//! each of its terms up in every segment. FTS5 merges segments by itself only when four gather
//! on one level (`automerge`), so after a burst of posting a search opened a dozen segments where
//! one would do: in the profile of searching right after scenario A's posting runs, opening
//! them (`fts5MultiIterNew`) was 60 % of running the search statement. With this merging the
//! index had 3 segments two seconds into that search run, not 12, and search answered about a
//! fifth more requests (docs/STORAGE.md).
//!
//! After the queue has been indexed, the writer, once no job has come for [`QUIET`], merges in
//! steps of about [`STEP_PAGES`] index pages, each in a transaction of its own (FTS5's `merge`
//! command), until a step finds nothing to merge: no two segments left on one level
//! (`usermerge` = 2, set at the first step). A job that arrives waits for one step at most, and
//! while jobs keep coming (less than [`QUIET`] apart) nothing is merged.

use std::time::{Duration, Instant};

use rusqlite::Connection;

/// How long the writer waits with no job before it merges.
pub const QUIET: Duration = Duration::from_millis(100);
/// About how many index pages (FTS5's `pgsz`, 4,050 bytes by default) one step writes.
pub const STEP_PAGES: i64 = 64;

/// Segments of one level FTS5's `merge` command merges (its smallest allowed value).
const USERMERGE: &str = "INSERT INTO messages_fts (messages_fts, rank) VALUES ('usermerge', 2)";
const MERGE: &str = "INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', ?1)";

/// Whether the index has segments to merge, as far as the writer knows.
#[derive(Debug, Default)]
pub(crate) struct IndexMerge {
    /// Segments were written since the last step that found nothing to merge.
    pending: bool,
    /// `usermerge` is set (once per writer: it is kept in the index's configuration).
    configured: bool,
}

impl IndexMerge {
    /// The queue was indexed: a new segment was written.
    pub fn indexed(&mut self) {
        self.pending = true;
    }

    /// How long the writer may wait for a job before the next step is due, given when the
    /// last job came (`None`: nothing to merge).
    pub fn due_in(&self, last_job: Instant) -> Option<Duration> {
        self.pending
            .then(|| QUIET.saturating_sub(last_job.elapsed()))
    }

    /// Merges one step's worth, in a transaction of its own. After a failure nothing more is
    /// tried until the next indexing.
    pub fn step(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let merged = || -> rusqlite::Result<u64> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            if !self.configured {
                conn.execute_batch(USERMERGE)?;
            }
            let before = conn.total_changes();
            conn.prepare_cached(MERGE)?.execute([STEP_PAGES])?;
            let changes = conn.total_changes() - before;
            conn.execute_batch("COMMIT")?;
            Ok(changes)
        };
        match merged() {
            Ok(changes) => {
                self.configured = true;
                // FTS5's own measure: a step that merged anything changes two rows or more.
                self.pending = changes >= 2;
                Ok(())
            }
            Err(error) => {
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                self.pending = false;
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        Store,
        messages::{NewMessage, Posted},
        sqlite::SqliteStore,
        users::NewUser,
    };

    /// How many segments the index has, from its structure record (FTS5's `%_data` row 10): a
    /// 4-byte cookie, for indexes with `contentless_delete` a 4-byte version, then the number
    /// of levels and the number of segments as varints (below 128 here: one byte each).
    fn segments(conn: &Connection) -> u8 {
        let record: Vec<u8> = conn
            .query_row(
                "SELECT block FROM messages_fts_data WHERE id = 10",
                [],
                |row| row.get(0),
            )
            .unwrap();
        let rest = match record.get(4..8) {
            Some([0xff, 0, 0, _]) => &record[8..],
            _ => &record[4..],
        };
        assert!(rest[0] < 128 && rest[1] < 128, "{record:?}");
        rest[1]
    }

    fn message(text: String) -> NewMessage {
        NewMessage {
            text,
            client_id: None,
            reply_to: None,
            files: Vec::new(),
        }
    }

    /// Each search after a post has the queue indexed on its own (a segment each); once the
    /// writer is quiet they are merged, and searches find what they found before.
    #[tokio::test]
    async fn segments_written_by_indexing_are_merged_once_the_writer_is_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("merge.sqlite3");
        let url = format!("sqlite://{}", path.display());
        let (sqlite, _) = SqliteStore::open(&url, 0).unwrap();
        let store = Store::Sqlite(sqlite);
        let alice = store.create_user(NewUser::named("alice")).await.unwrap().id;
        let bob = store.create_user(NewUser::named("bob")).await.unwrap().id;
        let (thread, _) = store.create_thread(alice, bob, alice).await.unwrap();
        let raw = Connection::open(&path).unwrap();
        let before = segments(&raw);
        let rounds = 12;
        for round in 0..rounds {
            let batch = vec![message(format!("round{round} apple"))];
            let posted = store.post_messages(thread.id, alice, batch).await.unwrap();
            assert!(matches!(posted, Posted::Stored(_)));
            let found = store
                .search_messages(bob, vec![format!("round{round}")], None, 20, 0)
                .await
                .unwrap();
            assert_eq!(found.count, 1);
        }
        // Searches come quicker than the quiet the writer waits for, so (unless this machine
        // paused for that long) nothing was merged yet: FTS5 alone leaves the twelve segments.
        let written = segments(&raw);

        let started = Instant::now();
        let merged = loop {
            let now = segments(&raw);
            if now <= 2 || started.elapsed() > Duration::from_secs(10) {
                break now;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert!(
            merged <= 2,
            "{before} segments, then {written}, {merged} after merging"
        );
        assert!(started.elapsed() >= QUIET / 2);
        let found = store
            .search_messages(bob, vec!["apple".into()], None, 50, 0)
            .await
            .unwrap();
        assert_eq!(found.count, rounds);
    }
}
