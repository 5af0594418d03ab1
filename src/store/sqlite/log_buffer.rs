//! The writer's write-ahead log, written in one piece per commit.
//!
//! SQLite writes each frame of the log with two `pwrite` calls, its 24-byte header and its
//! page: a commit of a few hundred pages (group commit gathers about thirty posts, ten pages
//! each) made some 640 system calls before its one `fsync`, and those calls were a tenth of
//! the server's time when posting single messages (perf, 2026-12-02). This module registers a
//! VFS that is SQLite's default one (`unix`) except for the log: the log's writes are gathered
//! in memory while they follow one another, and reach the file together (in pieces of
//! [`MOST_PER_WRITE`]) when SQLite syncs, reads, truncates, asks its size, sends it a file
//! control or closes it, or when the buffer holds [`BUFFER_BYTES`]. A write that lands inside
//! the gathered bytes (SQLite rewrites a frame it wrote earlier in the same transaction after
//! a cache spill) changes them in place; any other write sends the gathered bytes first, so
//! the file sees the writes in their order.
//!
//! Why this is safe only for the writer, with `synchronous = FULL`: other connections read
//! frames from the file once the commit is published in the shared index (`-shm`), and SQLite
//! publishes it only after the commit's `xSync` on the log when `synchronous` is FULL or EXTRA.
//! With NORMAL or OFF there is no sync at commit, the bytes could still be here when readers
//! look, and they would read a log that is not there yet. Every connection is set up with FULL
//! (`set_up` in `sqlite.rs`, whose test `the_writer_syncs_each_commit_as_its_buffered_log_needs`
//! checks the writer's). Nothing else changes for crashes: bytes written but not synced were
//! never durable, and a commit is only answered once its sync returned.

use std::{
    ffi::{CStr, c_int, c_void},
    ptr,
    sync::OnceLock,
};

use rusqlite::ffi::{self, sqlite3_file, sqlite3_int64, sqlite3_io_methods, sqlite3_vfs};

/// The name the VFS is registered under (never the default: only the writer asks for it).
pub(crate) const VFS_NAME: &CStr = c"simple-chat-buffered-log";
/// Most bytes of log gathered before they are written (a commit of ~500 frames).
const BUFFER_BYTES: usize = 2 << 20;
/// Most bytes handed to the wrapped VFS in one write: `unix` writes at most 128 KiB - 1 in one
/// call (`seekAndWriteFd` masks the length with `0x1ffff`), so the gathered bytes go out in
/// pieces of 124 KiB, ten or so for a commit of thirty posts.
const MOST_PER_WRITE: usize = 124 << 10;

/// The VFS this one wraps, and where in each file object the wrapper's slot lies.
struct Inner {
    vfs: *mut sqlite3_vfs,
    slot_offset: usize,
}

// SAFETY: the default VFS is registered for the life of the process and SQLite's VFS methods
// may be called from any thread; the struct is never written after it is stored.
unsafe impl Send for Inner {}
// SAFETY: as above.
unsafe impl Sync for Inner {}

static INNER: OnceLock<Inner> = OnceLock::new();
/// SQLite's answer to registering the VFS (`SQLITE_OK` once done).
static REGISTERED: OnceLock<c_int> = OnceLock::new();

/// Registers the VFS (once per process) and returns its name, for
/// `Connection::open_with_flags_and_vfs`.
pub(crate) fn register() -> rusqlite::Result<&'static CStr> {
    let rc = *REGISTERED.get_or_init(|| {
        // SAFETY: `sqlite3_vfs_find` and `sqlite3_vfs_register` may be called at any time
        // (they initialize SQLite if needed); the VFS handed over is leaked, so it outlives
        // every connection that uses it.
        unsafe {
            let inner = ffi::sqlite3_vfs_find(ptr::null());
            if inner.is_null() {
                return ffi::SQLITE_ERROR;
            }
            let slot_offset = ((*inner).szOsFile as usize).next_multiple_of(align_of::<*mut Log>());
            let mut vfs = *inner;
            vfs.pNext = ptr::null_mut();
            vfs.zName = VFS_NAME.as_ptr();
            vfs.szOsFile = (slot_offset + size_of::<*mut Log>()) as c_int;
            vfs.xOpen = Some(open);
            let _ = INNER.set(Inner {
                vfs: inner,
                slot_offset,
            });
            ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0)
        }
    });
    if rc == ffi::SQLITE_OK {
        Ok(VFS_NAME)
    } else {
        Err(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None))
    }
}

/// The gathered writes of one open log file.
struct Log {
    /// The wrapped VFS's methods for this file.
    methods: *const sqlite3_io_methods,
    /// Bytes not yet written, which belong at `start` in the file.
    gathered: Vec<u8>,
    start: sqlite3_int64,
}

fn inner() -> &'static Inner {
    INNER
        .get()
        .expect("the wrapped VFS is kept before any file opens")
}

/// The slot after the wrapped VFS's file object, holding this file's [`Log`] or null.
///
/// # Safety
///
/// `file` was allocated by SQLite with this VFS's `szOsFile`.
unsafe fn slot(file: *mut sqlite3_file) -> *mut *mut Log {
    // SAFETY: see above: the object is `slot_offset` plus one pointer long, suitably aligned.
    unsafe {
        file.cast::<u8>()
            .add(inner().slot_offset)
            .cast::<*mut Log>()
    }
}

/// # Safety
///
/// `file` is a log file this VFS opened and has not closed.
unsafe fn log<'a>(file: *mut sqlite3_file) -> &'a mut Log {
    // SAFETY: `open` stored a live `Log` in the slot of every file it gave these methods, and
    // a file is used by one connection, on one thread, at a time.
    unsafe { &mut **slot(file) }
}

impl Log {
    fn methods(&self) -> &sqlite3_io_methods {
        // SAFETY: the wrapped VFS's method table lives as long as the process.
        unsafe { &*self.methods }
    }

    /// Writes what is gathered to the file.
    ///
    /// # Safety
    ///
    /// `file` is the file this log belongs to.
    unsafe fn flush(&mut self, file: *mut sqlite3_file) -> c_int {
        if self.gathered.is_empty() {
            return ffi::SQLITE_OK;
        }
        let write = self.methods().xWrite.expect("every VFS writes");
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.start;
        for piece in self.gathered.chunks(MOST_PER_WRITE) {
            // SAFETY: the wrapped method writes to its own file object with our bytes.
            rc = unsafe { write(file, piece.as_ptr().cast(), piece.len() as c_int, offset) };
            if rc != ffi::SQLITE_OK {
                break;
            }
            offset += piece.len() as sqlite3_int64;
        }
        self.gathered.clear();
        FLUSHES.with(|n| n.set(n.get() + 1));
        rc
    }
}

thread_local! {
    /// Flushes of gathered bytes made on this thread (what the tests count).
    static FLUSHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

unsafe extern "C" fn open(
    _vfs: *mut sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner = inner();
    // SAFETY: SQLite hands over a file object of our `szOsFile`; the wrapped VFS opens the
    // file in its own part of it, as it would have without us.
    unsafe {
        slot(file).write(ptr::null_mut());
        let rc =
            ((*inner.vfs).xOpen.expect("every VFS opens"))(inner.vfs, name, file, flags, out_flags);
        if rc == ffi::SQLITE_OK && flags & ffi::SQLITE_OPEN_WAL != 0 && !(*file).pMethods.is_null()
        {
            let log = Log {
                methods: (*file).pMethods,
                gathered: Vec::new(),
                start: 0,
            };
            slot(file).write(Box::into_raw(Box::new(log)));
            (*file).pMethods = &LOG_METHODS;
        }
        rc
    }
}

/// The methods of a log file: its writes gathered, the rest passed on (after the gathered
/// bytes are written, where the call could see the file).
static LOG_METHODS: sqlite3_io_methods = sqlite3_io_methods {
    iVersion: 1,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: None,
    xShmLock: None,
    xShmBarrier: None,
    xShmUnmap: None,
    xFetch: None,
    xUnfetch: None,
};

// Each method below is called by SQLite only on a log file `open` wrapped (it set these
// methods on no other file), so `log(file)` is that file's live `Log`; the wrapped methods are
// called with the same file object, which they opened.

unsafe extern "C" fn write(
    file: *mut sqlite3_file,
    data: *const c_void,
    amount: c_int,
    offset: sqlite3_int64,
) -> c_int {
    // SAFETY: see above; `data` holds `amount` bytes (SQLite's contract for `xWrite`).
    unsafe {
        let log = log(file);
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), amount as usize);
        let end = log.start + log.gathered.len() as sqlite3_int64;
        if !log.gathered.is_empty() && offset >= log.start && offset + amount as i64 <= end {
            let at = (offset - log.start) as usize;
            log.gathered[at..at + bytes.len()].copy_from_slice(bytes);
            return ffi::SQLITE_OK;
        }
        if offset != end || log.gathered.len() + bytes.len() > BUFFER_BYTES {
            let rc = log.flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            log.start = offset;
        }
        log.gathered.extend_from_slice(bytes);
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn close(file: *mut sqlite3_file) -> c_int {
    // SAFETY: see above; after the wrapped close the `Log` is freed and the slot emptied, and
    // SQLite calls nothing on the file again.
    unsafe {
        let log = log(file);
        let flushed = log.flush(file);
        let closed = (log.methods().xClose.expect("every VFS closes"))(file);
        drop(Box::from_raw(*slot(file)));
        slot(file).write(ptr::null_mut());
        if flushed != ffi::SQLITE_OK {
            flushed
        } else {
            closed
        }
    }
}

/// Passes a call on after the gathered bytes are written (or returns the write's error).
macro_rules! after_flush {
    ($file:ident, $method:ident $(, $arg:expr)*) => {
        // SAFETY: see above.
        unsafe {
            let log = log($file);
            let rc = log.flush($file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            (log.methods().$method.expect("the wrapped VFS has this method"))($file $(, $arg)*)
        }
    };
}

/// Passes a call on as it is.
macro_rules! passed_on {
    ($file:ident, $method:ident $(, $arg:expr)*) => {
        // SAFETY: see above.
        unsafe {
            (log($file).methods().$method.expect("the wrapped VFS has this method"))(
                $file $(, $arg)*
            )
        }
    };
}

unsafe extern "C" fn read(
    file: *mut sqlite3_file,
    data: *mut c_void,
    amount: c_int,
    offset: sqlite3_int64,
) -> c_int {
    after_flush!(file, xRead, data, amount, offset)
}

unsafe extern "C" fn truncate(file: *mut sqlite3_file, size: sqlite3_int64) -> c_int {
    after_flush!(file, xTruncate, size)
}

unsafe extern "C" fn sync(file: *mut sqlite3_file, flags: c_int) -> c_int {
    after_flush!(file, xSync, flags)
}

unsafe extern "C" fn file_size(file: *mut sqlite3_file, size: *mut sqlite3_int64) -> c_int {
    after_flush!(file, xFileSize, size)
}

unsafe extern "C" fn file_control(file: *mut sqlite3_file, op: c_int, arg: *mut c_void) -> c_int {
    after_flush!(file, xFileControl, op, arg)
}

unsafe extern "C" fn lock(file: *mut sqlite3_file, level: c_int) -> c_int {
    passed_on!(file, xLock, level)
}

unsafe extern "C" fn unlock(file: *mut sqlite3_file, level: c_int) -> c_int {
    passed_on!(file, xUnlock, level)
}

unsafe extern "C" fn check_reserved_lock(file: *mut sqlite3_file, out: *mut c_int) -> c_int {
    passed_on!(file, xCheckReservedLock, out)
}

unsafe extern "C" fn sector_size(file: *mut sqlite3_file) -> c_int {
    passed_on!(file, xSectorSize)
}

unsafe extern "C" fn device_characteristics(file: *mut sqlite3_file) -> c_int {
    passed_on!(file, xDeviceCharacteristics)
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, OpenFlags};

    use super::*;

    fn writer(path: &std::path::Path) -> Connection {
        let conn =
            Connection::open_with_flags_and_vfs(path, OpenFlags::default(), register().unwrap())
                .unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .unwrap();
        conn
    }

    fn rows(conn: &Connection) -> (i64, i64) {
        conn.query_row(
            "SELECT count(*), coalesce(sum(length(body)), 0) FROM t",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
    }

    #[test]
    fn a_commit_of_many_pages_reaches_the_log_in_one_write() {
        let dir = tempfile::tempdir().unwrap();
        let conn = writer(&dir.path().join("one.sqlite3"));
        let before = FLUSHES.with(|n| n.get());
        let tx = conn.unchecked_transaction().unwrap();
        for i in 0..100 {
            tx.execute("INSERT INTO t (id, body) VALUES (?1, zeroblob(3000))", [i])
                .unwrap();
        }
        tx.commit().unwrap();
        // About a hundred pages, each once header and once page: two hundred writes unbuffered,
        // here one flush of about 400 KiB in four pieces.
        assert_eq!(FLUSHES.with(|n| n.get()) - before, 1);
    }

    #[test]
    fn other_connections_and_a_crash_see_every_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seen.sqlite3");
        let conn = writer(&path);
        // A small cache makes big transactions spill pages early and rewrite their frames.
        conn.execute_batch("PRAGMA cache_size = 20").unwrap();
        let other = Connection::open(&path).unwrap();
        let mut expected = (0, 0);
        for round in 0..40_i64 {
            let tx = conn.unchecked_transaction().unwrap();
            let count = 1 + round * 7 % 90;
            // Every fifth round holds one body bigger than the buffer, which fills it mid-commit.
            let big = if round % 5 == 0 {
                BUFFER_BYTES as i64 + 5000
            } else {
                900
            };
            for i in 0..count {
                let size = if i == 0 { big } else { 900 + i };
                tx.execute("INSERT INTO t (body) VALUES (zeroblob(?1))", [size])
                    .unwrap();
                expected.1 += size;
            }
            // Rows changed again in the same transaction rewrite frames already written.
            tx.execute(
                "UPDATE t SET body = zeroblob(length(body)) WHERE id % 3 = ?1",
                [round % 3],
            )
            .unwrap();
            tx.commit().unwrap();
            expected.0 += count;
            assert_eq!(rows(&other), expected, "round {round}");
            if round % 10 == 9 {
                // The log starts again from its beginning after a full checkpoint.
                other
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
            }
        }
        // A copy of the files taken now is what a crash would leave: it recovers every commit.
        let copy = dir.path().join("copy");
        std::fs::create_dir(&copy).unwrap();
        for suffix in ["", "-wal"] {
            std::fs::copy(
                format!("{}{suffix}", path.display()),
                copy.join(format!("seen.sqlite3{suffix}")),
            )
            .unwrap();
        }
        let recovered = Connection::open(copy.join("seen.sqlite3")).unwrap();
        assert_eq!(rows(&recovered), expected);
        let check: String = recovered
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok");
        drop(conn);
        assert_eq!(rows(&other), expected);
    }
}
