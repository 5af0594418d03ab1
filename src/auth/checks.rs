//! Password hashing is the costliest thing the server does (argon2id: 19 MiB and tens of
//! milliseconds of a core per check), so it is bounded: at most `--max-password-checks` run at
//! once, a bounded queue waits behind them, and a check that cannot start within
//! [`QUEUE_WAIT`] is refused with 503 and `Retry-After`. A flood of logins then costs a fixed
//! amount of memory and leaves the other cores to everyone else.

use std::{sync::Arc, time::Duration};

use tokio::sync::Semaphore;

use crate::error::Error;

/// The longest a check waits for its turn.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);
/// Waiting places per running check.
const QUEUE_PER_CHECK: usize = 32;
/// What a refused check tells the client to wait.
const RETRY_AFTER: u64 = 5;

pub struct PasswordChecks {
    running: Arc<Semaphore>,
    places: Arc<Semaphore>,
    places_total: usize,
    wait: Duration,
}

impl PasswordChecks {
    pub fn new(at_once: usize) -> PasswordChecks {
        let at_once = at_once.max(1);
        let places_total = at_once * (QUEUE_PER_CHECK + 1);
        PasswordChecks {
            running: Arc::new(Semaphore::new(at_once)),
            places: Arc::new(Semaphore::new(places_total)),
            places_total,
            wait: QUEUE_WAIT,
        }
    }

    /// Checks waiting or running now.
    pub fn in_use(&self) -> usize {
        self.places_total - self.places.available_permits()
    }

    /// Runs `work` (a hash or a verification) on a blocking thread when its turn comes.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Error> {
        let busy = || Error::Unavailable {
            reason: "too many password checks waiting".into(),
            retry_after: Some(RETRY_AFTER),
        };
        let place = self
            .places
            .clone()
            .try_acquire_owned()
            .map_err(|_| busy())?;
        let turn = tokio::time::timeout(self.wait, self.running.clone().acquire_owned())
            .await
            .map_err(|_| busy())?
            .map_err(|e| Error::Internal(e.into()))?;
        // The turn goes with the work: a client that gives up does not free it early.
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let _place = place;
            work()
        })
        .await
        .map_err(|e| Error::Internal(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_a_long_wait_is_refused_in_time() {
        let checks = Arc::new(PasswordChecks {
            running: Arc::new(Semaphore::new(1)),
            places: Arc::new(Semaphore::new(2)),
            places_total: 2,
            wait: Duration::from_millis(100),
        });
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let blocking = {
            let checks = checks.clone();
            tokio::spawn(async move { checks.run(move || hold.recv().ok()).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // One place left: this one waits, and gives up after the wait.
        let started = std::time::Instant::now();
        assert_eq!(checks.in_use(), 1);
        let waited = checks.run(|| ()).await;
        assert!(matches!(
            waited,
            Err(Error::Unavailable {
                retry_after: Some(_),
                ..
            })
        ));
        assert!(started.elapsed() >= Duration::from_millis(100));
        release.send(()).unwrap();
        assert!(blocking.await.unwrap().is_ok());
        assert!(checks.run(|| 42).await.is_ok());
    }
}
