//! Password hashes. New hashes are argon2id (PHC string format); Django's
//! `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` hashes verify too, so users imported from
//! the original keep their passwords, and are upgraded to argon2id at their next login.
//!
//! argon2id works in 19 MiB of memory per hash. That memory is a [`Scratch`] the caller lends
//! and reuses (the bounded password checks keep one per check that may run at once), so a
//! flood of logins does not allocate and free 19 MiB per attempt — which the allocator would
//! otherwise keep around, hundreds of megabytes of it.
//!
//! Both are slow on purpose: call these from a blocking thread (see `auth::checks`).

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, Version,
    password_hash::{Output, ParamsString, SaltString, rand_core::OsRng},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use subtle::ConstantTimeEq;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash should be replaced by this argon2id one.
    YesRehash(String),
}

/// Django's upper bound is far below this; it only stops a crafted hash from pinning a CPU.
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;
/// The most memory a stored argon2 hash may ask for (64 MiB); more is refused, not computed.
const MAX_ARGON2_BLOCKS: usize = 64 * 1024;

/// Memory for argon2, allocated on first use and reused by every later hash.
#[derive(Default)]
pub struct Scratch(Vec<Block>);

impl Scratch {
    fn blocks(&mut self, count: usize) -> &mut [Block] {
        if self.0.len() < count {
            self.0.resize(count, Block::default());
        }
        &mut self.0[..count]
    }
}

/// A new argon2id hash (default parameters: 19 MiB, 2 passes) as a PHC string.
pub fn hash(password: &str, scratch: &mut Scratch) -> String {
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .expect("a generated salt decodes");
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            scratch.blocks(params.block_count()),
        )
        .expect("argon2 with default parameters cannot fail");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).expect("default parameters encode"),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect("a 32-byte output")),
    }
    .to_string()
}

pub fn verify(password: &str, stored: &str, scratch: &mut Scratch) -> Verified {
    if let Some(django) = stored.strip_prefix("pbkdf2_sha256$") {
        return if verify_django_pbkdf2(password, django) {
            Verified::YesRehash(hash(password, scratch))
        } else {
            Verified::No
        };
    }
    if verify_argon2(password, stored, scratch) {
        Verified::Yes
    } else {
        Verified::No
    }
}

fn verify_argon2(password: &str, stored: &str, scratch: &mut Scratch) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
        parsed.salt,
        parsed.hash,
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    if params.block_count() > MAX_ARGON2_BLOCKS {
        return false;
    }
    let mut salt_bytes = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    let blocks = scratch.blocks(params.block_count());
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt_bytes, &mut out, blocks)
        .is_ok()
        && out.ct_eq(expected.as_bytes()).into()
}

/// Spends about as long as a real check, so that unknown usernames cannot be told apart by time.
pub fn verify_dummy(password: &str, scratch: &mut Scratch) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("dummy password for timing", &mut Scratch::default()));
    let _ = verify(password, dummy, scratch);
}

fn verify_django_pbkdf2(password: &str, rest: &str) -> bool {
    let mut parts = rest.splitn(3, '$');
    let (Some(iterations), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(iterations) = iterations.parse::<u32>() else {
        return false;
    };
    if iterations == 0 || iterations > MAX_PBKDF2_ITERATIONS {
        return false;
    }
    let Ok(expected) = STANDARD.decode(expected) else {
        return false;
    };
    if expected.is_empty() || expected.len() > 64 {
        return false;
    }
    let mut derived = vec![0u8; expected.len()];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        salt.as_bytes(),
        iterations,
        &mut derived,
    );
    derived.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let mut scratch = Scratch::default();
        let stored = hash("correct horse", &mut scratch);
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        assert_eq!(
            verify("correct horse", &stored, &mut scratch),
            Verified::Yes
        );
        assert_eq!(verify("wrong horse", &stored, &mut scratch), Verified::No);
    }

    #[test]
    fn hashes_of_the_argon2_crate_itself_verify() {
        use argon2::{PasswordHasher, password_hash::SaltString};
        let salt = SaltString::generate(&mut OsRng);
        let stored = Argon2::default()
            .hash_password(b"correct horse", &salt)
            .unwrap()
            .to_string();
        let mut scratch = Scratch::default();
        assert_eq!(
            verify("correct horse", &stored, &mut scratch),
            Verified::Yes
        );
        assert_eq!(verify("wrong", &stored, &mut scratch), Verified::No);
    }

    #[test]
    fn django_pbkdf2_hashes_verify_and_ask_for_a_rehash() {
        // The layout Django writes, with 1000 iterations to keep the test quick; the hash was
        // computed independently with Python: hashlib.pbkdf2_hmac("sha256", password, salt, 1000).
        let stored = "pbkdf2_sha256$1000$saltsaltsalt$K6/trMkvM8HaCnZnf6tliLuJMmfDm+I340KbjB+oLtQ=";
        let mut scratch = Scratch::default();
        match verify("django-pass-1", stored, &mut scratch) {
            Verified::YesRehash(new) => assert!(new.starts_with("$argon2id$")),
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert_eq!(verify("django-pass-2", stored, &mut scratch), Verified::No);
    }

    #[test]
    fn malformed_hashes_never_verify() {
        for stored in [
            "",
            "plain",
            "pbkdf2_sha256$",
            "pbkdf2_sha256$abc$salt$hash",
            "pbkdf2_sha256$0$salt$aGFzaA==",
            "pbkdf2_sha256$99999999999$salt$aGFzaA==",
            "pbkdf2_sha256$1000$salt$not base64!",
            "$argon2id$garbage",
            "$argon2id$v=19$m=1048576,t=2,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaA",
        ] {
            let mut scratch = Scratch::default();
            assert_eq!(
                verify("anything", stored, &mut scratch),
                Verified::No,
                "{stored}"
            );
        }
    }
}
