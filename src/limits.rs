//! Per-user rate limits on writes that cost every participant something: posting messages
//! (`--post-rate` per minute, in bursts of 100 — one full batch — or of a second's worth when
//! the rate is set above 6,000) and starting threads
//! (`--thread-rate` per hour). Generic cell rate algorithm (governor), kept in memory per
//! instance; an over-limit request gets 429 with `Retry-After` and changes nothing.

use std::num::NonZeroU32;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use crate::error::Error;

/// The largest batch is also the largest burst.
const POST_BURST: u32 = crate::domain::MESSAGES_PER_BATCH as u32;

pub struct RateLimits {
    posts: DefaultKeyedRateLimiter<i64>,
    threads: DefaultKeyedRateLimiter<i64>,
}

fn at_least_one(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n.max(1)).expect("at least one")
}

impl RateLimits {
    pub fn new(posts_per_minute: u32, threads_per_hour: u32) -> RateLimits {
        // A full batch at once, or a second's worth when the rate is higher than that.
        let burst = POST_BURST.max(posts_per_minute / 60);
        let posts =
            Quota::per_minute(at_least_one(posts_per_minute)).allow_burst(at_least_one(burst));
        let threads = Quota::per_hour(at_least_one(threads_per_hour));
        RateLimits {
            posts: RateLimiter::keyed(posts),
            threads: RateLimiter::keyed(threads),
        }
    }

    /// Takes `count` messages from the user's posting allowance.
    pub fn post(&self, user: i64, count: usize) -> Result<(), Error> {
        let count = at_least_one(u32::try_from(count).unwrap_or(u32::MAX));
        match self.posts.check_key_n(&user, count) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Error::Throttled(seconds(
                not_until.wait_time_from(self.posts.clock().now()),
            ))),
            // More at once than the burst allows: never, wait a minute.
            Err(_) => Err(Error::Throttled(60)),
        }
    }

    /// Takes one new thread from the user's allowance.
    pub fn new_thread(&self, user: i64) -> Result<(), Error> {
        self.threads.check_key(&user).map_err(|not_until| {
            Error::Throttled(seconds(
                not_until.wait_time_from(self.threads.clock().now()),
            ))
        })
    }

    /// Forgets users whose allowance is full again (bounded memory).
    pub fn sweep(&self) {
        self.posts.retain_recent();
        self.threads.retain_recent();
    }
}

fn seconds(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limits = RateLimits::new(600, 2);
        assert!(limits.post(1, 100).is_ok());
        assert!(matches!(limits.post(1, 1), Err(Error::Throttled(s)) if s >= 1));
        assert!(
            limits.post(2, 100).is_ok(),
            "another user has their own allowance"
        );
        assert!(limits.new_thread(1).is_ok());
        assert!(limits.new_thread(1).is_ok());
        assert!(matches!(limits.new_thread(1), Err(Error::Throttled(s)) if s > 60));
    }
}
