//! The `simple-chat` binary: parses the command line and hands over to the library.
//!
//! It also chooses the memory allocator: mimalloc for what Rust allocates (SQLite keeps its
//! own calls to the C library's malloc). Measured with `cargo bench --bench load`, it cut the
//! server's CPU time per request by about a tenth (docs/STORAGE.md, "The allocator").

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
    simple_chat::cli::main()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::MI_OPTION_ARENA_EAGER_COMMIT;

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
