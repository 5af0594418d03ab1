//! Password hashing is the costliest thing the server does (argon2id: 19 MiB and tens of
//! milliseconds of a core per check), so it is bounded:
//!
//! - exactly `--max-password-checks` threads compute hashes, each with its own argon2 memory
//!   allocated once and reused, so a flood of logins costs a fixed amount of memory;
//! - those threads run at a lower scheduling priority (nice 10), so while they are busy the
//!   rest of the server (every other request) still gets the cores first;
//! - a bounded queue waits behind them; a check that cannot start within [`QUEUE_WAIT`] of
//!   asking, or finds the queue full, is refused with 503 and `Retry-After`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crossbeam_channel::Sender;
use tokio::sync::{Semaphore, oneshot};

use super::password::Scratch;
use crate::error::Error;

/// The longest a check waits for its turn.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Waiting places per checking thread.
const QUEUE_PER_CHECK: usize = 128;
/// What a refused check tells the client to wait.
const RETRY_AFTER: u64 = 5;
/// The checking threads' nice value: below every other thread of the process.
const NICENESS: i32 = 10;

type Work = Box<dyn FnOnce(&mut Scratch) + Send>;

/// A check and when it was asked for; its place in the queue is held by `work` (freed when it
/// has run, or when a job that waited too long is dropped unrun).
struct Job {
    work: Work,
    asked: Instant,
}

pub struct PasswordChecks {
    jobs: Sender<Job>,
    places: Arc<Semaphore>,
    places_total: usize,
    wait: Duration,
    /// Checks run since this was made.
    ran: Arc<AtomicU64>,
}

fn busy() -> Error {
    Error::Unavailable {
        reason: "too many password checks waiting".into(),
        retry_after: Some(RETRY_AFTER),
    }
}

impl PasswordChecks {
    pub fn new(at_once: usize) -> PasswordChecks {
        PasswordChecks::with_queue(at_once, at_once.max(1) * QUEUE_PER_CHECK, QUEUE_WAIT)
    }

    fn with_queue(at_once: usize, queue: usize, wait: Duration) -> PasswordChecks {
        let (jobs, queued) = crossbeam_channel::unbounded::<Job>();
        for i in 0..at_once.max(1) {
            let queued = queued.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || {
                    lower_priority();
                    let mut scratch = Scratch::default();
                    while let Ok(job) = queued.recv() {
                        // Too late to be useful: the asker was answered 503 already.
                        if job.asked.elapsed() <= wait {
                            (job.work)(&mut scratch);
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "cannot start a password-check thread");
            }
        }
        let places_total = queue.max(1);
        PasswordChecks {
            jobs,
            places: Arc::new(Semaphore::new(places_total)),
            places_total,
            wait,
            ran: Arc::default(),
        }
    }

    /// Checks waiting or running now.
    pub fn in_use(&self) -> usize {
        self.places_total - self.places.available_permits()
    }

    /// Checks (hashes and verifications) run so far: what a test reads to learn whether a
    /// request cost one.
    pub fn ran(&self) -> u64 {
        self.ran.load(Ordering::Relaxed)
    }

    /// Runs `work` (a hash or a verification, in the argon2 memory it is lent) on a checking
    /// thread when its turn comes.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Scratch) -> T + Send + 'static,
    ) -> Result<T, Error> {
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let (reply, answer) = oneshot::channel();
        let ran = self.ran.clone();
        let job = Job {
            work: Box::new(move |scratch: &mut Scratch| {
                if !reply.is_closed() {
                    let result = work(scratch);
                    ran.fetch_add(1, Ordering::Relaxed);
                    // Free the place before answering: once the asker has its answer, the
                    // check no longer counts as in use.
                    drop(place);
                    let _ = reply.send(result);
                }
            }),
            asked: Instant::now(),
        };
        self.jobs
            .send(job)
            .map_err(|_| Error::Internal(anyhow::anyhow!("the password checks stopped")))?;
        // A job that waited too long is dropped unanswered by its thread.
        tokio::time::timeout(self.wait + Duration::from_secs(5), answer)
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }
}

/// Lowers the calling thread's scheduling priority (Linux keeps a nice value per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only reads its arguments; `0` names the calling thread on Linux.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, 0, NICENESS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_a_long_wait_is_refused_in_time() {
        let checks = Arc::new(PasswordChecks::with_queue(1, 2, Duration::from_millis(100)));
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocking = {
            let checks = checks.clone();
            tokio::spawn(async move { checks.run(move |_| hold.recv().ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(checks.in_use(), 1);
        // One place left: this one waits behind the blocked check and is refused.
        let waiting = {
            let checks = checks.clone();
            tokio::spawn(async move { checks.run(|_| ()).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        // No place left: refused at once.
        assert!(matches!(
            checks.run(|_| ()).await,
            Err(Error::Unavailable {
                retry_after: Some(_),
                ..
            })
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
        release.send(()).unwrap();
        assert!(blocking.await.unwrap().is_ok());
        assert!(
            waiting.await.unwrap().is_err(),
            "a check that waited too long is refused"
        );
        assert_eq!(checks.run(|_| 42).await.unwrap(), 42);
    }
}
