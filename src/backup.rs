//! `simple-chat backup <path>`: a consistent copy of a live SQLite database, taken while the
//! server keeps serving and writing.
//!
//! SQLite's online backup API copies the pages inside one read transaction, so the copy is the
//! database as of one moment (later writes go on in the WAL and are not waited for). The copy is
//! written beside the destination as `<path>.partial`, checked with `PRAGMA integrity_check`,
//! synced, and only then renamed into place: a crash or a full disk never leaves a half backup
//! under the real name. PostgreSQL has its own tools (`pg_dump`); this command says so.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use anyhow::{Context, bail};
use rusqlite::{
    Connection, OpenFlags,
    backup::{Backup, StepResult},
};

use crate::{config::redact_url, progress::Progress, store};

/// Pages copied per step (4 KiB each: 4 MiB between progress updates).
const PAGES_PER_STEP: i32 = 1024;

/// What a backup produced.
#[derive(Debug)]
pub struct Report {
    pub path: PathBuf,
    pub bytes: u64,
    /// The newest migration in the copy.
    pub schema: String,
}

/// Backs up the database of `database_url` to `target` (replacing a file there).
pub fn backup(database_url: &str, target: &Path) -> anyhow::Result<Report> {
    let Some(source) = store::sqlite_path(database_url) else {
        bail!(
            "backup copies SQLite databases; back up PostgreSQL with its own tools, e.g. \
             pg_dump --format=custom --file=simple-chat.dump '{}' (and pg_restore to restore)",
            redact_url(database_url)
        );
    };
    if !source.exists() {
        bail!("there is no database at {}", source.display());
    }
    if target.exists() && same_file(&source, target)? {
        bail!("the backup must go to another file than the database itself");
    }
    let partial = partial_path(target);
    let _ = std::fs::remove_file(&partial);
    copy(&source, &partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    let schema = check(&partial).inspect_err(|_| {
        let _ = std::fs::remove_file(&partial);
    })?;
    std::fs::File::open(&partial)
        .and_then(|f| f.sync_all())
        .context("syncing the backup")?;
    std::fs::rename(&partial, target)
        .with_context(|| format!("moving the backup to {}", target.display()))?;
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        // The rename is durable once the directory is.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    let bytes = std::fs::metadata(target)?.len();
    Ok(Report {
        path: target.to_owned(),
        bytes,
        schema,
    })
}

/// `<target>.partial`, beside the target.
fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> anyhow::Result<bool> {
    Ok(std::fs::canonicalize(a)? == std::fs::canonicalize(b)?)
}

/// Copies every page of `source` to a new database file at `target`, as of one moment.
fn copy(source: &Path, target: &Path) -> anyhow::Result<()> {
    // Read-write without create: a WAL database is read through its shared-memory index, and a
    // missing file must not become an empty database.
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", source.display()))?;
    from.busy_timeout(Duration::from_secs(30))?;
    let mut to =
        Connection::open(target).with_context(|| format!("creating {}", target.display()))?;
    // One read transaction for the whole copy: every step reads the same snapshot, so the
    // server's writes meanwhile neither restart the copy nor end up half in it.
    from.execute_batch("BEGIN")?;
    let _: i64 = from.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))?;
    {
        let backup = Backup::new(&from, &mut to)?;
        let mut progress: Option<Progress> = None;
        loop {
            let step = backup.step(PAGES_PER_STEP)?;
            let pages = backup.progress();
            let total = u64::try_from(pages.pagecount).unwrap_or(0);
            let done = total.saturating_sub(u64::try_from(pages.remaining).unwrap_or(0));
            progress
                .get_or_insert_with(|| Progress::new("backup pages", total))
                .set(done);
            match step {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {}
            }
        }
        if let Some(progress) = progress {
            progress.finish();
        }
    }
    from.execute_batch("COMMIT")?;
    Ok(())
}

/// Opens the copy on its own and checks it: `PRAGMA integrity_check` must say `ok`. Returns
/// the newest migration in it.
fn check(path: &Path) -> anyhow::Result<String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let result: Vec<String> = conn
        .prepare("PRAGMA integrity_check")?
        .query_map([], |row| row.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if result != ["ok"] {
        bail!("the copy failed its integrity check: {}", result.join("; "));
    }
    let schema: String =
        conn.query_row("SELECT MAX(name) FROM schema_migrations", [], |r| r.get(0))?;
    // Leave one self-contained file: no -wal or -shm beside it.
    conn.execute_batch("PRAGMA journal_mode = DELETE")?;
    Ok(schema)
}
