//! SQLite's own page cache, with one page number renamed, so that a commit does not walk the
//! whole cache.
//!
//! When SQLite splits or merges b-tree pages it puts the new pages in ascending order by
//! swapping page numbers, and it parks a page for a moment under the number of the page
//! holding the lock byte, one that never holds data (page 262,145 with 4 KiB pages:
//! `balance_nonroot` in `sqlite3.c`). The page cache remembers the largest number it has seen,
//! and every commit drops the pages past the end of the database: when that largest number is
//! further past the end than the cache has hash slots, it walks all of them. In a database
//! under 1 GiB every commit after a split did, over the writer's 16,384 slots and 12,000
//! pages: 5 % of the server's time when posting single messages (perf, 2026-12-01). Here the
//! parked page is filed under page number 0 instead, which SQLite never uses, so the largest
//! number seen stays near the end of the database.
//!
//! Everything else is SQLite's default cache ([`ffi::SQLITE_CONFIG_GETPCACHE2`]), called
//! through. Like the allocator, it can only be set before SQLite is first used: the binary
//! calls [`use_renamed_parking`] first thing in `main`. Tests and the load harness keep the
//! default.

use std::{
    ffi::{c_int, c_uint, c_void},
    sync::{
        OnceLock,
        atomic::{AtomicU64, Ordering},
    },
};

use rusqlite::ffi::{self, sqlite3_pcache, sqlite3_pcache_methods2, sqlite3_pcache_page};

/// The byte SQLite locks, which no page's data covers (`PENDING_BYTE` in `sqlite3.c`).
const LOCK_BYTE: u32 = 0x4000_0000;
/// The page number SQLite never gives a page.
const UNUSED_PAGE: c_uint = 0;

/// SQLite's default page cache.
struct Default(sqlite3_pcache_methods2);

// SAFETY: the methods are plain functions and `pArg` is null for the default cache; SQLite
// calls them from any thread.
unsafe impl Send for Default {}
// SAFETY: as above; the struct is never written after it is stored.
unsafe impl Sync for Default {}

static DEFAULT: OnceLock<Default> = OnceLock::new();

/// Pages filed under [`UNUSED_PAGE`] since the process started (what the tests check).
static PARKED: AtomicU64 = AtomicU64::new(0);

fn default() -> &'static sqlite3_pcache_methods2 {
    &DEFAULT.get().expect("the default page cache is kept").0
}

/// One connection's cache: SQLite's, and the page number it parks pages under.
struct Cache {
    inner: *mut sqlite3_pcache,
    parked: c_uint,
}

impl Cache {
    /// # Safety
    ///
    /// `cache` came from [`create`] and was not destroyed.
    unsafe fn of<'a>(cache: *mut sqlite3_pcache) -> &'a Cache {
        // SAFETY: see above.
        unsafe { &*(cache as *const Cache) }
    }

    fn key(&self, page: c_uint) -> c_uint {
        if page == self.parked {
            PARKED.fetch_add(1, Ordering::Relaxed);
            UNUSED_PAGE
        } else {
            page
        }
    }
}

// Each method below passes SQLite's call on to the default cache with the cache SQLite
// created (and page numbers renamed where they appear); SQLite calls them only with caches
// `create` returned, and the default cache's contract is SQLite's (`sqlite3_pcache_methods2`).

unsafe extern "C" fn init(arg: *mut c_void) -> c_int {
    // SAFETY: see above.
    unsafe { default().xInit.map_or(ffi::SQLITE_OK, |init| init(arg)) }
}

unsafe extern "C" fn shutdown(arg: *mut c_void) {
    if let Some(shutdown) = default().xShutdown {
        // SAFETY: see above.
        unsafe { shutdown(arg) }
    }
}

unsafe extern "C" fn create(
    page_size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut sqlite3_pcache {
    // SAFETY: see above.
    let inner = unsafe { default().xCreate.expect("xCreate")(page_size, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    let parked = LOCK_BYTE / page_size.max(1) as u32 + 1;
    Box::into_raw(Box::new(Cache { inner, parked })).cast()
}

unsafe extern "C" fn cache_size(cache: *mut sqlite3_pcache, pages: c_int) {
    // SAFETY: see above.
    unsafe { default().xCachesize.expect("xCachesize")(Cache::of(cache).inner, pages) }
}

unsafe extern "C" fn page_count(cache: *mut sqlite3_pcache) -> c_int {
    // SAFETY: see above.
    unsafe { default().xPagecount.expect("xPagecount")(Cache::of(cache).inner) }
}

unsafe extern "C" fn fetch(
    cache: *mut sqlite3_pcache,
    page: c_uint,
    create: c_int,
) -> *mut sqlite3_pcache_page {
    // SAFETY: see above.
    let cache = unsafe { Cache::of(cache) };
    // SAFETY: see above.
    unsafe { default().xFetch.expect("xFetch")(cache.inner, cache.key(page), create) }
}

unsafe extern "C" fn unpin(
    cache: *mut sqlite3_pcache,
    page: *mut sqlite3_pcache_page,
    discard: c_int,
) {
    // SAFETY: see above.
    unsafe { default().xUnpin.expect("xUnpin")(Cache::of(cache).inner, page, discard) }
}

unsafe extern "C" fn rekey(
    cache: *mut sqlite3_pcache,
    page: *mut sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: see above.
    let cache = unsafe { Cache::of(cache) };
    let (old, new) = (cache.key(old), cache.key(new));
    // SAFETY: see above.
    unsafe { default().xRekey.expect("xRekey")(cache.inner, page, old, new) }
}

unsafe extern "C" fn truncate(cache: *mut sqlite3_pcache, limit: c_uint) {
    // SAFETY: see above.
    unsafe { default().xTruncate.expect("xTruncate")(Cache::of(cache).inner, limit) }
}

unsafe extern "C" fn destroy(cache: *mut sqlite3_pcache) {
    // SAFETY: `cache` came from `create` (a boxed `Cache`), and SQLite uses it no more.
    let cache = unsafe { Box::from_raw(cache.cast::<Cache>()) };
    // SAFETY: see above.
    unsafe { default().xDestroy.expect("xDestroy")(cache.inner) }
}

unsafe extern "C" fn shrink(cache: *mut sqlite3_pcache) {
    // SAFETY: see above.
    unsafe { default().xShrink.expect("xShrink")(Cache::of(cache).inner) }
}

/// Makes SQLite park pages under page number 0 (see the module's doc). True when SQLite took
/// it; false when SQLite was already in use in this process (it then keeps its own cache as
/// it is, which works the same).
///
/// # Safety
///
/// No other thread may be using SQLite while this runs (SQLite's rule for `sqlite3_config`):
/// call it from `main` before anything starts a thread or opens a database.
pub unsafe fn use_renamed_parking() -> bool {
    let mut methods = std::mem::MaybeUninit::<sqlite3_pcache_methods2>::zeroed();
    // SAFETY: SQLite writes its default methods into `methods`; the caller guarantees no other
    // thread is inside SQLite.
    let code = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_GETPCACHE2, methods.as_mut_ptr()) };
    if code != ffi::SQLITE_OK {
        return false;
    }
    // SAFETY: SQLite filled it in (a zeroed struct is valid too: null pointers and `None`s).
    let methods = unsafe { methods.assume_init() };
    if methods.xCreate.is_none() || DEFAULT.set(Default(methods)).is_err() {
        return false;
    }
    let renamed = sqlite3_pcache_methods2 {
        iVersion: methods.iVersion,
        pArg: methods.pArg,
        xInit: Some(init),
        xShutdown: Some(shutdown),
        xCreate: Some(create),
        xCachesize: Some(cache_size),
        xPagecount: Some(page_count),
        xFetch: Some(fetch),
        xUnpin: Some(unpin),
        xRekey: Some(rekey),
        xTruncate: Some(truncate),
        xDestroy: Some(destroy),
        xShrink: Some(shrink),
    };
    // SAFETY: SQLite copies the methods before it returns.
    let code = unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_PCACHE2,
            &renamed as *const sqlite3_pcache_methods2,
        )
    };
    code == ffi::SQLITE_OK
}

/// Pages parked under page number 0 so far in this process.
pub fn parked_pages() -> u64 {
    PARKED.load(Ordering::Relaxed)
}
