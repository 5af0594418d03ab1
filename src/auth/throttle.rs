//! Login throttling: after a number of failed logins for one username inside a window, further
//! attempts for it are refused with 429 until the window ends. Kept in memory per instance.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

pub struct LoginThrottle {
    allowed: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Entries are swept when the table grows past this, so guessing many names costs bounded memory.
const SWEEP_AT: usize = 10_000;

impl LoginThrottle {
    pub fn new(allowed: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            allowed,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn key(username: &str) -> String {
        username.to_lowercase()
    }

    /// `Err(seconds to wait)` when this username is locked out.
    pub fn check(&self, username: &str) -> Result<(), u64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        match failures.get(&Self::key(username)) {
            Some(&(count, since)) if count >= self.allowed => {
                let elapsed = since.elapsed();
                if elapsed < self.window {
                    Err((self.window - elapsed).as_secs().max(1))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= SWEEP_AT {
            let window = self.window;
            failures.retain(|_, (_, since)| since.elapsed() < window);
        }
        let entry = failures
            .entry(Self::key(username))
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= self.window {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }

    pub fn record_success(&self, username: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&Self::key(username));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_allowed_failures_and_not_before() {
        let throttle = LoginThrottle::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(throttle.check("Alice").is_ok());
            throttle.record_failure("alice");
        }
        let wait = throttle.check("ALICE").unwrap_err();
        assert!((1..=60).contains(&wait));
        assert!(throttle.check("bob").is_ok());
    }

    #[test]
    fn the_lock_ends_with_the_window() {
        let throttle = LoginThrottle::new(1, Duration::from_millis(20));
        throttle.record_failure("alice");
        assert!(throttle.check("alice").is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(throttle.check("alice").is_ok());
    }
}
