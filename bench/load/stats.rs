//! Recording latencies cheaply: a log-linear histogram (HDR-like: 64 buckets per power of two,
//! so any percentile is within about 1.6 % of the true value) of microseconds, a few hundred
//! bytes of counters whatever the number of samples, and a [`Tally`] of one kind of request
//! (latencies, errors and a few error texts to show). Each load task keeps its own and they are
//! merged at the end, so recording is an array increment.

use std::time::Duration;

/// Buckets below this hold one microsecond each; above, 64 per power of two.
const LINEAR: u64 = 128;
const PER_POWER: u64 = 64;
const BUCKETS: usize = (LINEAR + 58 * PER_POWER) as usize;

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    sum_micros: u128,
    max_micros: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            sum_micros: 0,
            max_micros: 0,
        }
    }
}

fn bucket(micros: u64) -> usize {
    if micros < LINEAR {
        return micros as usize;
    }
    let shift = 63 - micros.leading_zeros() as u64 - 6; // keeps the top 7 bits
    let mantissa = micros >> shift; // 64..128
    (LINEAR + (shift - 1) * PER_POWER + (mantissa - PER_POWER)) as usize
}

/// The middle of a bucket, in microseconds.
fn value(bucket: usize) -> u64 {
    let bucket = bucket as u64;
    if bucket < LINEAR {
        return bucket;
    }
    let shift = (bucket - LINEAR) / PER_POWER + 1;
    let mantissa = (bucket - LINEAR) % PER_POWER + PER_POWER;
    (mantissa << shift) + (1 << (shift - 1))
}

impl Histogram {
    pub fn record(&mut self, elapsed: Duration) {
        let micros = elapsed.as_micros().min(u64::MAX as u128) as u64;
        self.counts[bucket(micros).min(BUCKETS - 1)] += 1;
        self.total += 1;
        self.sum_micros += micros as u128;
        self.max_micros = self.max_micros.max(micros);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.sum_micros += other.sum_micros;
        self.max_micros = self.max_micros.max(other.max_micros);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn mean(&self) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        Duration::from_micros((self.sum_micros / self.total as u128) as u64)
    }

    /// The value below which a fraction `q` (0..=1) of the samples lie.
    pub fn percentile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((self.total as f64 * q).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return Duration::from_micros(value(i).min(self.max_micros));
            }
        }
        Duration::from_micros(self.max_micros)
    }
}

/// Error texts kept per tally, to show what went wrong.
const SAMPLES: usize = 5;

/// What a batch of requests of one kind did.
#[derive(Clone, Default)]
pub struct Tally {
    pub latency: Histogram,
    pub errors: u64,
    pub samples: Vec<String>,
}

impl Tally {
    pub fn record(&mut self, elapsed: Duration, outcome: Result<(), String>) {
        self.latency.record(elapsed);
        if let Err(error) = outcome {
            self.error(error);
        }
    }

    pub fn error(&mut self, error: String) {
        self.errors += 1;
        if self.samples.len() < SAMPLES && !self.samples.contains(&error) {
            self.samples.push(error);
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.latency.merge(&other.latency);
        self.errors += other.errors;
        for sample in &other.samples {
            if self.samples.len() < SAMPLES && !self.samples.contains(sample) {
                self.samples.push(sample.clone());
            }
        }
    }
}

/// Milliseconds, for tables and JSON.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
