//! SQLite's memory from mimalloc, the allocator the rest of the server uses (`src/main.rs`),
//! instead of the C library's `malloc`. SQLite allocates on its own for what its connections
//! build (FTS5's pending index entries, statements' records, pages read into a cache): with
//! glibc, `malloc` and `free` were about a twentieth of the single writer's time when posting.
//!
//! SQLite takes its allocator once, before anything else in the process has used it
//! (`sqlite3_config(SQLITE_CONFIG_MALLOC)` answers `SQLITE_MISUSE` after that): the binary
//! calls [`use_mimalloc`] first thing in `main`. Tests and the load harness keep the default.

use std::ffi::{c_int, c_void};

use libmimalloc_sys::{mi_free, mi_good_size, mi_malloc, mi_realloc, mi_usable_size};
use rusqlite::ffi;

// SQLite asks for sizes of at least 1 and at most `i32::MAX`, and frees or resizes only what
// these gave it (`sqlite3_mem_methods` in sqlite3.h).

unsafe extern "C" fn malloc(size: c_int) -> *mut c_void {
    // SAFETY: a plain allocation of a positive size.
    unsafe { mi_malloc(size.max(1) as usize) }
}

unsafe extern "C" fn free(pointer: *mut c_void) {
    // SAFETY: `pointer` came from `malloc` or `realloc` here (or is null, which mimalloc takes).
    unsafe { mi_free(pointer) }
}

unsafe extern "C" fn realloc(pointer: *mut c_void, size: c_int) -> *mut c_void {
    // SAFETY: as in `free`; the size is positive.
    unsafe { mi_realloc(pointer, size.max(1) as usize) }
}

unsafe extern "C" fn size(pointer: *mut c_void) -> c_int {
    if pointer.is_null() {
        return 0;
    }
    // SAFETY: `pointer` came from `malloc` or `realloc` here.
    let size = unsafe { mi_usable_size(pointer) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn roundup(size: c_int) -> c_int {
    // SAFETY: a pure computation on a size.
    let rounded = unsafe { mi_good_size(size.max(1) as usize) };
    c_int::try_from(rounded).unwrap_or(size)
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn shutdown(_: *mut c_void) {}

/// Makes SQLite allocate with mimalloc. True when SQLite took it; false when SQLite was
/// already in use in this process (it then keeps the C library's allocator, which works the
/// same).
///
/// # Safety
///
/// No other thread may be using SQLite while this runs (SQLite's rule for
/// `sqlite3_config`): call it from `main` before anything starts a thread or opens a
/// database.
pub unsafe fn use_mimalloc() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(malloc),
        xFree: Some(free),
        xRealloc: Some(realloc),
        xSize: Some(size),
        xRoundup: Some(roundup),
        xInit: Some(init),
        xShutdown: Some(shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLite copies the methods before it returns; the caller guarantees no other
    // thread is inside SQLite.
    let code = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        )
    };
    code == ffi::SQLITE_OK
}
