//! The `simple-chat` binary: parses the command line and hands over to the library.
//!
//! It also chooses the memory allocator: mimalloc for what Rust allocates and for what SQLite
//! allocates (`store/sqlite/allocator.rs`). Measured with `cargo bench --bench load`, it cut the
//! server's CPU time per request by about a tenth (docs/STORAGE.md, "The allocator"). And it
//! gives SQLite a page cache that parks pages where a commit does not have to look for them
//! (`store/sqlite/page_cache.rs`).

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

/// mimalloc's `mi_option_arena_eager_commit` (`include/mimalloc.h`; the Rust bindings have no
/// name for it). Its default (2: commit a whole arena at once where the OS overcommits) cost
/// about 9 MiB of idle RSS here; 0 commits each part of an arena as it is first used.
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Sets mimalloc's options before the first allocation: the Rust runtime allocates before
/// `main` (the main thread's name), and mimalloc reserves its first arena then. A run with
/// `MIMALLOC_ARENA_EAGER_COMMIT` in its environment keeps that value.
#[cfg(target_os = "linux")]
extern "C" fn set_allocator_options() {
    // SAFETY: getenv and mi_option_set only read and write plain C data. This runs from
    // `.init_array`, on the one thread there is, before `main` and before anything that
    // could call setenv.
    unsafe {
        if libc::getenv(c"MIMALLOC_ARENA_EAGER_COMMIT".as_ptr()).is_null() {
            libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        }
    }
}

/// Runs [`set_allocator_options`] as a constructor, after mimalloc's own (priority 101).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static SET_ALLOCATOR_OPTIONS: extern "C" fn() = set_allocator_options;

fn main() -> std::process::ExitCode {
    // SAFETY: nothing has started a thread or used SQLite yet.
    unsafe {
        simple_chat::store::sqlite_use_mimalloc();
        simple_chat::store::sqlite_use_renamed_parking();
    }
    simple_chat::cli::main()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::MI_OPTION_ARENA_EAGER_COMMIT;

    /// What `main` does first: SQLite then allocates from mimalloc's heap, parks the pages it
    /// reorders under page number 0, and works. (The only test in this binary that touches
    /// SQLite, so nothing used it before.)
    #[test]
    fn sqlite_allocates_with_mimalloc_and_parks_pages_at_zero() {
        // SAFETY: no other test of this binary uses SQLite.
        assert!(unsafe { simple_chat::store::sqlite_use_mimalloc() });
        // SAFETY: as above.
        assert!(unsafe { simple_chat::store::sqlite_use_renamed_parking() });
        // SAFETY: one allocation, checked and freed.
        unsafe {
            let pointer = rusqlite::ffi::sqlite3_malloc(100);
            assert!(!pointer.is_null());
            assert!(libmimalloc_sys::mi_is_in_heap_region(pointer));
            assert!(rusqlite::ffi::sqlite3_msize(pointer) >= 100);
            rusqlite::ffi::sqlite3_free(pointer);
        }
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (x TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000)
             INSERT INTO t SELECT substr(hex(zeroblob(150)), 1, i % 300) FROM n;",
        )
        .unwrap();
        let total: i64 = conn
            .query_row("SELECT sum(length(x)) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(total, (1..=5000).map(|i| i % 300).sum::<i64>());

        // Keys inserted in random order split index pages all over, which SQLite puts in
        // order by parking pages: the database is still whole, in a file and in memory.
        assert_eq!(simple_chat::store::sqlite_parked_pages(), 0);
        let dir = tempfile::tempdir().unwrap();
        for conn in [
            rusqlite::Connection::open(dir.path().join("parked.sqlite3")).unwrap(),
            conn,
        ] {
            conn.execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE k (key INTEGER, pad TEXT);
                 CREATE INDEX k_by_key ON k (key, pad);",
            )
            .unwrap();
            for round in 0..20_i64 {
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500)
                     INSERT INTO k SELECT (i * 7919 + ?1 * 104729) % 100003, hex(randomblob(40))
                     FROM n",
                    [round],
                )
                .unwrap();
            }
            let (rows, check): (i64, String) = conn
                .query_row(
                    "SELECT (SELECT count(*) FROM k INDEXED BY k_by_key WHERE key >= 0),
                            (SELECT group_concat(integrity_check) FROM pragma_integrity_check)",
                    [],
                    |row| Ok((row.get(0)?, row.get(1)?)),
                )
                .unwrap();
            assert_eq!((rows, check.as_str()), (10_000, "ok"));
        }
        assert!(simple_chat::store::sqlite_parked_pages() > 0);
    }

    /// The constructor ran (a linker that dropped it would leave mimalloc's default, 2).
    #[test]
    fn arenas_are_committed_as_they_are_used() {
        let expected = std::env::var("MIMALLOC_ARENA_EAGER_COMMIT")
            .ok()
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        // SAFETY: reads one of mimalloc's options.
        let value = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT) };
        assert_eq!(value, expected);
    }
}
