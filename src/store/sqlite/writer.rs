//! The SQLite engine's one writer thread: it drains whatever write jobs are waiting into one
//! transaction (group commit), each job inside its own SAVEPOINT so a failing job rolls back
//! alone; every job of the batch learns its outcome only after the COMMIT that made it durable,
//! once the caches ([`super::Caches`]) and the commit hook have been told. After a batch's
//! jobs it indexes for search the messages queued when they are due ([`SearchQueue`]), and
//! once it has been quiet for a moment it merges the segments that indexing wrote
//! ([`IndexMerge`]).
//! Between batches it notices commits made by other processes ([`ForeignWrites`]).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{Caches, CommitHook, SqliteTx};
use crate::{
    clock::Timestamp,
    store::{
        Commit, StoreError, StoreResult,
        search::{AfterCommit, IndexMerge, SearchQueue},
        user_cache::FOREIGN_WRITES_CHECKED_EVERY,
    },
};

/// Most write jobs one transaction takes.
const MAX_BATCH: usize = 512;

pub(super) trait WriteJob: Send {
    /// Runs inside a savepoint; `false` rolls the savepoint back.
    fn run(&mut self, tx: &mut SqliteTx<'_>) -> bool;
    /// Tells the caller the outcome once the transaction has committed (or failed).
    fn finish(self: Box<Self>, outcome: Result<(), String>);
}

pub(super) struct Job<F, T> {
    pub(super) work: Option<F>,
    pub(super) result: Option<StoreResult<T>>,
    pub(super) reply: oneshot::Sender<StoreResult<T>>,
}

impl<F, T> WriteJob for Job<F, T>
where
    F: FnOnce(&mut SqliteTx<'_>) -> StoreResult<T> + Send,
    T: Send,
{
    fn run(&mut self, tx: &mut SqliteTx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(tx))).unwrap_or_else(|_| {
            Err(StoreError::Other(anyhow::anyhow!(
                "a database write panicked"
            )))
        });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, outcome: Result<(), String>) {
        let result = match (outcome, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(reason), _) => Err(StoreError::Unavailable(reason)),
            (Ok(()), None) => Err(StoreError::Unavailable("write was not run".into())),
        };
        let _ = self.reply.send(result);
    }
}

pub(super) fn writer_loop(
    conn: Connection,
    jobs: Receiver<Box<dyn WriteJob>>,
    hook: Arc<OnceLock<CommitHook>>,
    caches: &Caches,
) {
    let mut foreign = ForeignWrites::new(&conn);
    let mut search = SearchQueue::default();
    let mut merge = IndexMerge::default();
    let mut last_job = Instant::now();
    // What a crash left queued.
    index_search_queue(&mut search, &mut merge, &conn);
    loop {
        let wait = [search.due_in(), merge.due_in(last_job)]
            .into_iter()
            .flatten()
            .fold(FOREIGN_WRITES_CHECKED_EVERY, Duration::min);
        let first = match jobs.recv_timeout(wait) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                foreign.check(&conn, caches);
                if search.due_in() == Some(Duration::ZERO) {
                    index_search_queue(&mut search, &mut merge, &conn);
                } else if merge.due_in(last_job) == Some(Duration::ZERO)
                    && let Err(error) = merge.step(&conn)
                {
                    tracing::error!(%error, "merging the search index failed");
                }
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => {
                index_search_queue(&mut search, &mut merge, &conn);
                break;
            }
        };
        last_job = Instant::now();
        foreign.check(&conn, caches);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("simple_chat_sqlite_write_batch_size").record(batch.len() as f64);
        let outcome = run_batch(&conn, &mut batch, &search);
        match outcome {
            Ok((commit, after)) => {
                if after.indexed {
                    merge.indexed();
                }
                search.after_commit(after);
                caches.apply(&commit);
                if !commit.is_empty()
                    && let Some(hook) = hook.get()
                {
                    hook(&commit);
                }
                for job in batch {
                    job.finish(Ok(()));
                }
            }
            Err(error) => {
                tracing::error!(%error, "database write transaction failed");
                let _ = conn.execute_batch("ROLLBACK");
                for job in batch {
                    job.finish(Err(error.to_string()));
                }
            }
        }
    }
}

/// Indexes what waits in the search queue now (logged when it fails: it waits for the next try).
fn index_search_queue(search: &mut SearchQueue, merge: &mut IndexMerge, conn: &Connection) {
    match search.index_now(conn) {
        Ok(true) => merge.indexed(),
        Ok(false) => {}
        Err(error) => tracing::error!(%error, "indexing queued messages for search failed"),
    }
}

/// Notices commits by other processes (the CLI, a second server on the same file): SQLite's
/// `data_version` moves on the writer's connection only when another connection committed,
/// and every other connection of this process only reads (readers are `query_only`; the
/// checkpointer copies pages and changes nothing).
struct ForeignWrites {
    seen: Option<i64>,
}

impl ForeignWrites {
    fn new(conn: &Connection) -> ForeignWrites {
        ForeignWrites {
            seen: data_version(conn),
        }
    }

    /// Drops what is kept in memory when someone else wrote since the last check.
    fn check(&mut self, conn: &Connection, caches: &Caches) {
        let now = data_version(conn);
        if now != self.seen {
            self.seen = now;
            tracing::debug!("another process wrote the database: cached users and lists dropped");
            caches.forget_all();
        }
    }
}

fn data_version(conn: &Connection) -> Option<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
        .ok()
}

/// Runs a batch of jobs in one transaction; returns what the batch changed for the hook, and
/// what the search queue holds after it.
fn run_batch(
    conn: &Connection,
    batch: &mut [Box<dyn WriteJob>],
    search: &SearchQueue,
) -> rusqlite::Result<(Commit, AfterCommit)> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut tx = SqliteTx {
        conn,
        now: Timestamp::now(),
        commit: Commit::default(),
        index_search_queue: false,
    };
    for job in batch.iter_mut() {
        conn.execute_batch("SAVEPOINT job")?;
        tx.now = Timestamp::now();
        let before = tx.commit.mark();
        if job.run(&mut tx) {
            conn.execute_batch("RELEASE job")?;
        } else {
            tx.commit.rewind(before);
            conn.execute_batch("ROLLBACK TO job; RELEASE job")?;
        }
    }
    let after = search.before_commit(conn, tx.index_search_queue)?;
    conn.execute_batch("COMMIT")?;
    let mut commit = tx.commit;
    commit.dedup();
    Ok((commit, after))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::{SqliteStore, run_now};
    use crate::store::{
        Store, StoreError,
        db::{Db, Sql},
        messages::{Edited, NewMessage, Posted},
        users::NewUser,
    };

    static DURIAN: Sql = Sql::new("UPDATE messages SET text = 'durian' WHERE id = $1");
    static QUEUE: Sql = Sql::new("INSERT INTO search_queue (message_id) VALUES ($1)");

    fn text(text: &str) -> Vec<NewMessage> {
        vec![NewMessage {
            text: text.into(),
            client_id: None,
            reply_to: None,
            files: Vec::new(),
        }]
    }

    async fn found(store: &Store, user: i64, word: &str) -> Vec<(i64, String)> {
        let page = store
            .search_messages(user, vec![word.into()], None, 20, 0)
            .await
            .unwrap();
        assert_eq!(page.count, page.items.len() as i64, "{word}");
        page.items.into_iter().map(|m| (m.id, m.text)).collect()
    }

    /// Waits until the writer holds `n` queued jobs.
    async fn queued(sqlite: &SqliteStore, n: usize) {
        while sqlite.writer.len() < n {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Jobs that wait while the writer is busy run as one batch, whose messages are indexed
    /// for search after its last job: what a search finds is what each job left, in order.
    #[tokio::test]
    async fn a_batch_indexes_for_search_what_its_jobs_left() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("batch.sqlite3").display());
        let (sqlite, _) = SqliteStore::open(&url, 0).unwrap();
        let store = Store::Sqlite(sqlite.clone());
        let alice = store.create_user(NewUser::named("alice")).await.unwrap().id;
        let bob = store.create_user(NewUser::named("bob")).await.unwrap().id;
        let (thread, _) = store.create_thread(alice, bob, alice).await.unwrap();
        let post = |store: &Store, words: &str| {
            let (store, batch) = (store.clone(), text(words));
            tokio::spawn(async move {
                match store.post_messages(thread.id, alice, batch).await {
                    Ok(Posted::Stored(stored)) => stored[0].id,
                    _ => panic!("not posted"),
                }
            })
        };
        let first = post(&store, "first words").await.unwrap();

        // The writer waits inside a job while the others queue up behind it.
        let (started, writer_busy) = std::sync::mpsc::channel::<()>();
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let blocker = tokio::spawn({
            let sqlite = sqlite.clone();
            async move {
                sqlite
                    .write(move |_| {
                        started.send(()).unwrap();
                        wait.recv().unwrap();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || writer_busy.recv().unwrap())
            .await
            .unwrap();

        let apple = post(&store, "apple pie");
        queued(&sqlite, 1).await;
        let (next, gone) = (first + 1, first + 2);
        let edit = tokio::spawn({
            let store = store.clone();
            async move { store.edit_message(next, "banana split".into()).await }
        });
        queued(&sqlite, 2).await;
        let cherry = post(&store, "cherry");
        queued(&sqlite, 3).await;
        let delete = tokio::spawn({
            let store = store.clone();
            async move { store.delete_message(gone).await }
        });
        queued(&sqlite, 4).await;
        // A job that changes a text, queues it for the index and then fails: both go.
        let failing = tokio::spawn({
            let sqlite = sqlite.clone();
            async move {
                sqlite
                    .write(move |tx| {
                        run_now(async {
                            tx.execute(&DURIAN, &[&first]).await?;
                            tx.execute(&QUEUE, &[&first]).await
                        })?;
                        Err::<(), _>(StoreError::Other(anyhow::anyhow!("refused")))
                    })
                    .await
            }
        });
        queued(&sqlite, 5).await;
        let elder = post(&store, "elder");
        queued(&sqlite, 6).await;
        release.send(()).unwrap();

        blocker.await.unwrap().unwrap();
        assert_eq!(apple.await.unwrap(), next);
        assert!(matches!(edit.await.unwrap(), Ok(Edited::Done(_))));
        assert_eq!(cherry.await.unwrap(), gone);
        assert!(delete.await.unwrap().unwrap().is_some());
        assert!(failing.await.unwrap().is_err());
        let elder = elder.await.unwrap();

        assert_eq!(
            found(&store, alice, "banana").await,
            [(next, "banana split".into())]
        );
        assert_eq!(
            found(&store, bob, "split").await,
            [(next, "banana split".into())]
        );
        assert_eq!(found(&store, alice, "apple").await, []);
        assert_eq!(found(&store, alice, "cherry").await, []);
        assert_eq!(found(&store, alice, "durian").await, []);
        assert_eq!(
            found(&store, alice, "elder").await,
            [(elder, "elder".into())]
        );
        assert_eq!(
            found(&store, bob, "first").await,
            [(first, "first words".into())]
        );
    }
}
