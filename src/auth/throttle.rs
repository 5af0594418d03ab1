//! Login throttling, counted atomically: an attempt takes its place before the password is
//! checked, so of N wrong passwords sent at once for one username from one address at most the
//! allowed number are checked and the rest get 429.
//!
//! Two counters, each over a window (5 minutes by default):
//! - per username *and client address*: 5 failures, then 429 for that pair — the same username
//!   from another address is not locked out, so nobody can lock another user out;
//! - per client address, any usernames: `--login-failures-per-address` (50), which stops one
//!   address from guessing across many accounts.
//!
//! Kept in memory per instance; expired entries are swept as the tables grow, so guessing many
//! names costs bounded memory.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

/// Entries are swept when a table grows past this.
const SWEEP_AT: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Counter {
    failures: u32,
    in_flight: u32,
    since: Instant,
}

impl Counter {
    fn new() -> Counter {
        Counter {
            failures: 0,
            in_flight: 0,
            since: Instant::now(),
        }
    }

    /// Starts a new window when the old one has passed (attempts in flight stay counted).
    fn refresh(&mut self, window: Duration) {
        if self.since.elapsed() >= window {
            self.failures = 0;
            self.since = Instant::now();
        }
    }

    fn used(&self) -> u32 {
        self.failures + self.in_flight
    }

    fn retry_after(&self, window: Duration) -> u64 {
        window.saturating_sub(self.since.elapsed()).as_secs().max(1)
    }
}

#[derive(Default)]
struct Counters {
    pairs: HashMap<(String, IpAddr), Counter>,
    addresses: HashMap<IpAddr, Counter>,
}

pub struct LoginThrottle {
    per_pair: u32,
    per_address: u32,
    window: Duration,
    counters: Mutex<Counters>,
}

/// A login attempt holding its place in both counters until its outcome is known. Dropped
/// without an outcome (the client went away, an error), it gives its place back.
pub struct Attempt<'t> {
    throttle: &'t LoginThrottle,
    pair: (String, IpAddr),
    done: bool,
}

impl LoginThrottle {
    pub fn new(per_pair: u32, per_address: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            per_pair,
            per_address,
            window,
            counters: Mutex::new(Counters::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for an attempt, or `Err(seconds to wait)` when either limit is reached.
    pub fn begin(&self, username: &str, address: IpAddr) -> Result<Attempt<'_>, u64> {
        let key = (username.to_lowercase(), address);
        let mut guard = self.lock();
        let counters = &mut *guard;
        if counters.pairs.len() >= SWEEP_AT || counters.addresses.len() >= SWEEP_AT {
            let window = self.window;
            let live = |c: &mut Counter| c.in_flight > 0 || c.since.elapsed() < window;
            counters.pairs.retain(|_, c| live(c));
            counters.addresses.retain(|_, c| live(c));
        }
        let window = self.window;
        let address_counter = counters
            .addresses
            .entry(address)
            .or_insert_with(Counter::new);
        address_counter.refresh(window);
        if address_counter.used() >= self.per_address {
            metrics::counter!("simple_chat_login_throttled_total").increment(1);
            return Err(address_counter.retry_after(window));
        }
        let pair_counter = counters
            .pairs
            .entry(key.clone())
            .or_insert_with(Counter::new);
        pair_counter.refresh(window);
        if pair_counter.used() >= self.per_pair {
            metrics::counter!("simple_chat_login_throttled_total").increment(1);
            return Err(pair_counter.retry_after(window));
        }
        pair_counter.in_flight += 1;
        address_counter.in_flight += 1;
        Ok(Attempt {
            throttle: self,
            pair: key,
            done: false,
        })
    }

    /// Failed logins counted for this username and address now.
    #[cfg(test)]
    fn failures(&self, username: &str, address: IpAddr) -> u32 {
        self.lock()
            .pairs
            .get(&(username.to_lowercase(), address))
            .map_or(0, |c| c.failures)
    }
}

impl Attempt<'_> {
    fn finish(&mut self, failed: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let mut counters = self.throttle.lock();
        if let Some(counter) = counters.addresses.get_mut(&self.pair.1) {
            counter.in_flight = counter.in_flight.saturating_sub(1);
            counter.failures += u32::from(failed);
        }
        if failed {
            if let Some(counter) = counters.pairs.get_mut(&self.pair) {
                counter.in_flight = counter.in_flight.saturating_sub(1);
                counter.failures += 1;
            }
        } else {
            counters.pairs.remove(&self.pair);
        }
    }

    /// Wrong credentials: counts against the username at this address and the address.
    pub fn failed(mut self) {
        self.finish(true);
    }

    /// Signed in: the username's failures at this address are forgotten.
    pub fn succeeded(mut self) {
        self.finish(false);
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.done = true;
        let mut counters = self.throttle.lock();
        if let Some(counter) = counters.addresses.get_mut(&self.pair.1) {
            counter.in_flight = counter.in_flight.saturating_sub(1);
        }
        if let Some(counter) = counters.pairs.get_mut(&self.pair) {
            counter.in_flight = counter.in_flight.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn attempts_in_flight_count_so_parallel_guesses_are_throttled() {
        let throttle = LoginThrottle::new(5, 50, Duration::from_secs(60));
        let attempts: Vec<_> = (0..5)
            .map(|_| throttle.begin("Alice", ip(1)).unwrap())
            .collect();
        assert!(throttle.begin("alice", ip(1)).is_err(), "a sixth at once");
        for attempt in attempts {
            attempt.failed();
        }
        assert_eq!(throttle.failures("alice", ip(1)), 5);
        let wait = throttle.begin("ALICE", ip(1)).err().unwrap();
        assert!((1..=60).contains(&wait));
    }

    #[test]
    fn another_address_is_not_locked_out() {
        let throttle = LoginThrottle::new(1, 50, Duration::from_secs(60));
        throttle.begin("root", ip(66)).unwrap().failed();
        assert!(throttle.begin("root", ip(66)).is_err());
        assert!(throttle.begin("root", ip(7)).is_ok());
    }

    #[test]
    fn one_address_is_limited_across_usernames() {
        let throttle = LoginThrottle::new(5, 3, Duration::from_secs(60));
        for name in ["a", "b", "c"] {
            throttle.begin(name, ip(9)).unwrap().failed();
        }
        assert!(throttle.begin("d", ip(9)).is_err());
        assert!(throttle.begin("d", ip(10)).is_ok());
    }

    #[test]
    fn success_forgets_and_abandoned_attempts_give_their_place_back() {
        let throttle = LoginThrottle::new(2, 50, Duration::from_secs(60));
        throttle.begin("bob", ip(1)).unwrap().failed();
        throttle.begin("bob", ip(1)).unwrap().succeeded();
        assert_eq!(throttle.failures("bob", ip(1)), 0);
        for _ in 0..10 {
            drop(throttle.begin("bob", ip(1)).unwrap());
        }
        assert!(throttle.begin("bob", ip(1)).is_ok());
    }

    #[test]
    fn the_lock_ends_with_the_window() {
        let throttle = LoginThrottle::new(1, 50, Duration::from_millis(20));
        throttle.begin("alice", ip(1)).unwrap().failed();
        assert!(throttle.begin("alice", ip(1)).is_err());
        std::thread::sleep(Duration::from_millis(30));
        assert!(throttle.begin("alice", ip(1)).is_ok());
    }
}
