//! The checkpointer: a thread that copies committed pages from the write-ahead log into the
//! database file beside the writer and the readers (a passive checkpoint waits for nobody):
//! every [`CHECKPOINT_WHILE_WRITING_EVERY`] while the log grows, every [`CHECKPOINT_EVERY`]
//! while it does not. With SQLite's default, the writer did this itself inside a commit every
//! 1,000 pages, and every request in that commit's batch waited for it.
//!
//! Under sustained posting the writer still copies the log itself once it reaches
//! `WRITER_CHECKPOINT_PAGES`: a checkpoint here that meets the writer's (busy, or the log
//! unchanged meanwhile) falls back to the slow pace. Keeping the fast pace then lowered the p99
//! of posts a little and cost 4-13 % of their throughput (`docs/STORAGE.md`), so it stays.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use rusqlite::Connection;

/// How often the checkpointer looks at the write-ahead log while nothing is being written.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// How often it copies the log into the database file while commits keep coming: each copy is
/// then small, where one every 500 ms copied (and synced) a burst that held up the next commits
/// (scenario A, p99 of single posts about 110 ms -> 90 ms, batches of 10 about 220 -> 155 ms).
const CHECKPOINT_WHILE_WRITING_EVERY: Duration = Duration::from_millis(20);

/// Starts the checkpointer on its own connection; it ends when the returned sender is dropped.
pub(super) fn start(conn: Connection) -> std::io::Result<Sender<()>> {
    let (checkpointer, stop) = crossbeam_channel::bounded::<()>(0);
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || checkpoint_loop(conn, stop))?;
    Ok(checkpointer)
}

fn checkpoint_loop(conn: Connection, stop: Receiver<()>) {
    let mut last = LogFrames::default();
    let mut wait = CHECKPOINT_EVERY;
    while let Err(crossbeam_channel::RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
        let frames = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok(LogFrames {
                written: row.get(1)?,
                copied: row.get(2)?,
            })
        });
        wait = match frames {
            Ok(frames) => {
                let wait = frames.next_checkpoint_after(last);
                last = frames;
                wait
            }
            Err(error) => {
                tracing::warn!(%error, "checkpoint failed");
                CHECKPOINT_EVERY
            }
        };
    }
}

/// The write-ahead log as a checkpoint found it: its frames, and how many are in the database
/// file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct LogFrames {
    written: i64,
    copied: i64,
}

impl LogFrames {
    /// When to checkpoint next: soon while the log changed since the `last` checkpoint.
    fn next_checkpoint_after(self, last: LogFrames) -> Duration {
        if self.written > 0 && self != last {
            CHECKPOINT_WHILE_WRITING_EVERY
        } else {
            CHECKPOINT_EVERY
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_checkpointed_often_only_while_it_is_written() {
        let frames = |written, copied| LogFrames { written, copied };
        let cases = [
            // Nothing written since the last look, or an empty log: the slow pace.
            (frames(0, 0), frames(0, 0), CHECKPOINT_EVERY),
            (frames(300, 300), frames(300, 300), CHECKPOINT_EVERY),
            (frames(300, 300), frames(0, 0), CHECKPOINT_EVERY),
            // Commits came since (the log grew, or started again from the top): soon.
            (frames(0, 0), frames(40, 40), CHECKPOINT_WHILE_WRITING_EVERY),
            (
                frames(300, 300),
                frames(420, 420),
                CHECKPOINT_WHILE_WRITING_EVERY,
            ),
            (
                frames(300, 300),
                frames(12, 12),
                CHECKPOINT_WHILE_WRITING_EVERY,
            ),
            (
                frames(300, 250),
                frames(300, 300),
                CHECKPOINT_WHILE_WRITING_EVERY,
            ),
        ];
        for (last, now, wait) in cases {
            assert_eq!(now.next_checkpoint_after(last), wait, "{last:?} -> {now:?}");
        }
    }
}
