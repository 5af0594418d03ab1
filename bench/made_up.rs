//! Made-up data shared by the benchmarks: a small deterministic generator (xorshift, so every
//! run loads the same data) and a pronounceable vocabulary.

/// A small deterministic generator (xorshift).
#[derive(Clone)]
pub struct Random(pub u64);

impl Random {
    pub fn new(seed: u64) -> Random {
        Random(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly Zipf-distributed: small numbers are far more likely.
    pub fn zipf(&mut self, n: u64) -> u64 {
        let u = (self.below(1_000_000) + 1) as f64 / 1_000_000.0;
        ((n as f64).powf(u) - 1.0) as u64 % n
    }
}

/// Word `i` of the vocabulary: pronounceable, distinct.
pub fn word(i: u64) -> String {
    const SYLLABLES: [&str; 20] = [
        "ka", "lo", "mi", "ne", "pu", "ra", "so", "ti", "va", "ze", "bri", "cha", "dro", "fle",
        "gru", "plo", "sta", "tre", "vos", "yel",
    ];
    let mut n = i;
    let mut out = String::new();
    for _ in 0..3 {
        out.push_str(SYLLABLES[(n % 20) as usize]);
        n /= 20;
    }
    out
}
