//! Access tokens this instance has already verified, so that a client's next request with the
//! same token skips the signature check and the decoding (HMAC-SHA-256, base64 and JSON: a
//! twentieth of a message page's CPU time, more of a cheaper request's).
//!
//! A token is found by its signature, and then only if the rest of it (header and claims) is
//! the text that was verified: its hash under this process's random key must match. A token
//! whose signature is copied onto other claims is therefore refused, as a full check would.
//! Expiry is checked on every use; the user's state (deactivated, token version) is checked by
//! the caller on every request, as before. Each entry is about a hundred bytes (the signature,
//! which is no credential without the rest, and the claims the server uses), at most
//! [`CAPACITY`] of them: when full, expired entries go, and all of them when
//! that frees too little.

use std::{
    collections::HashMap,
    hash::{BuildHasher, RandomState},
    sync::Mutex,
};

/// What an access token says: whose it is, the token version it was issued under, and until
/// when it is valid (Unix seconds, inclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Access {
    pub user_id: i64,
    pub ver: i64,
    pub exp: i64,
}

/// Most tokens kept (about 100 bytes each).
pub const CAPACITY: usize = 32_768;

pub struct VerifiedTokens {
    by_signature: Mutex<HashMap<Box<str>, (u64, Access)>>,
    /// Keys the hash of a token's signed part (random per process).
    signed_part: RandomState,
    capacity: usize,
}

/// Counts hits and misses for `/metrics`.
const COUNTER: &str = "simple_chat_verified_token_cache_total";

impl Default for VerifiedTokens {
    fn default() -> VerifiedTokens {
        VerifiedTokens::with_capacity(CAPACITY)
    }
}

impl VerifiedTokens {
    pub fn with_capacity(capacity: usize) -> VerifiedTokens {
        VerifiedTokens {
            by_signature: Mutex::default(),
            signed_part: RandomState::new(),
            capacity,
        }
    }

    /// The claims of `token` if it was kept and is still valid at `now`; `None` when it was
    /// not kept (verify it) and `Some(None)` when it was but has expired.
    pub fn get(&self, token: &str, now: i64) -> Option<Option<Access>> {
        let (signed, signature) = token.rsplit_once('.')?;
        let hash = self.signed_part.hash_one(signed); // outside the lock
        let found = self.by_signature.lock().ok()?.get(signature).copied();
        let found = found.filter(|(kept, _)| *kept == hash);
        metrics::counter!(COUNTER, "outcome" => if found.is_some() { "hit" } else { "miss" })
            .increment(1);
        found.map(|(_, access)| (access.exp >= now).then_some(access))
    }

    /// Keeps `token`, which the caller has just verified in full.
    pub fn keep(&self, token: &str, access: Access, now: i64) {
        let Some((signed, signature)) = token.rsplit_once('.') else {
            return;
        };
        let hash = self.signed_part.hash_one(signed);
        let Ok(mut kept) = self.by_signature.lock() else {
            return;
        };
        if kept.len() >= self.capacity {
            kept.retain(|_, (_, access)| access.exp >= now);
            if kept.len() >= self.capacity * 3 / 4 {
                kept.clear();
            }
        }
        kept.insert(signature.into(), (hash, access));
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.by_signature.lock().map(|kept| kept.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCESS: Access = Access {
        user_id: 7,
        ver: 0,
        exp: 1_000,
    };

    #[test]
    fn a_kept_token_is_found_until_it_expires() {
        let tokens = VerifiedTokens::default();
        assert_eq!(tokens.get("h.p.s", 10), None);
        tokens.keep("h.p.s", ACCESS, 10);
        assert_eq!(tokens.get("h.p.s", 10), Some(Some(ACCESS)));
        assert_eq!(tokens.get("h.p.s", 1_000), Some(Some(ACCESS)));
        assert_eq!(tokens.get("h.p.s", 1_001), Some(None));
    }

    #[test]
    fn a_kept_signature_on_other_claims_is_not_found() {
        let tokens = VerifiedTokens::default();
        tokens.keep("h.p.s", ACCESS, 10);
        assert_eq!(tokens.get("h.q.s", 10), None);
        assert_eq!(tokens.get("x.p.s", 10), None);
        assert_eq!(tokens.get("h.p.t", 10), None);
        assert_eq!(tokens.get("no dots", 10), None);
    }

    #[test]
    fn a_full_cache_drops_expired_tokens_first_then_everything() {
        let tokens = VerifiedTokens::with_capacity(4);
        for (i, exp) in [5, 5, 1_000, 1_000].into_iter().enumerate() {
            tokens.keep(&format!("h.p.{i}"), Access { exp, ..ACCESS }, 1);
        }
        assert_eq!(tokens.kept(), 4);
        // Full at 10: the two expired ones go, the two valid ones stay.
        tokens.keep("h.p.4", ACCESS, 10);
        assert_eq!(tokens.kept(), 3);
        assert_eq!(tokens.get("h.p.0", 10), None);
        assert_eq!(tokens.get("h.p.2", 10), Some(Some(ACCESS)));
        tokens.keep("h.p.5", ACCESS, 10);
        // Full of valid tokens: all go, then the new one is kept.
        tokens.keep("h.p.6", ACCESS, 10);
        assert_eq!(tokens.kept(), 1);
        assert_eq!(tokens.get("h.p.6", 10), Some(Some(ACCESS)));
    }
}
