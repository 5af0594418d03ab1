//! The SQLite engine's one writer thread: it drains whatever write jobs are waiting into one
//! transaction (group commit), each job inside its own SAVEPOINT so a failing job rolls back
//! alone; every job of the batch learns its outcome only after the COMMIT that made it durable,
//! once the user cache and the commit hook have been told. Between batches it notices commits
//! made by other processes ([`ForeignWrites`]).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, OnceLock},
};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{CommitHook, SqliteTx};
use crate::{
    clock::Timestamp,
    store::{
        Commit, StoreError, StoreResult,
        user_cache::{FOREIGN_WRITES_CHECKED_EVERY, UserCache},
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
    users: &UserCache,
) {
    let mut foreign = ForeignWrites::new(&conn);
    loop {
        let first = match jobs.recv_timeout(FOREIGN_WRITES_CHECKED_EVERY) {
            Ok(job) => job,
            Err(RecvTimeoutError::Timeout) => {
                foreign.check(&conn, users);
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        foreign.check(&conn, users);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        metrics::histogram!("simple_chat_sqlite_write_batch_size").record(batch.len() as f64);
        let outcome = run_batch(&conn, &mut batch);
        match outcome {
            Ok(commit) => {
                users.apply(&commit);
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

    /// Drops the cached users when someone else wrote since the last check.
    fn check(&mut self, conn: &Connection, users: &UserCache) {
        let now = data_version(conn);
        if now != self.seen {
            self.seen = now;
            tracing::debug!("another process wrote the database: cached users dropped");
            users.forget_all();
        }
    }
}

fn data_version(conn: &Connection) -> Option<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
        .ok()
}

/// Runs a batch of jobs in one transaction; returns what the batch changed for the hook.
fn run_batch(conn: &Connection, batch: &mut [Box<dyn WriteJob>]) -> rusqlite::Result<Commit> {
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let mut tx = SqliteTx {
        conn,
        now: Timestamp::now(),
        commit: Commit::default(),
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
    conn.execute_batch("COMMIT")?;
    let mut commit = tx.commit;
    commit.dedup();
    Ok(commit)
}
