//! Password hashes. New hashes are argon2id (PHC string format); Django's
//! `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` hashes verify too, so users imported from
//! the original keep their passwords, and are upgraded to argon2id at their next login.
//!
//! Both are slow on purpose: call these from a blocking thread (`tokio::task::spawn_blocking`).

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
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

pub fn hash(password: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

pub fn verify(password: &str, stored: &str) -> Verified {
    if let Some(django) = stored.strip_prefix("pbkdf2_sha256$") {
        return if verify_django_pbkdf2(password, django) {
            Verified::YesRehash(hash(password))
        } else {
            Verified::No
        };
    }
    match PasswordHash::new(stored) {
        Ok(parsed)
            if Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok() =>
        {
            Verified::Yes
        }
        _ => Verified::No,
    }
}

/// Spends about as long as a real check, so that unknown usernames cannot be told apart by time.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("dummy password for timing"));
    let _ = verify(password, dummy);
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
        let stored = hash("correct horse");
        assert!(stored.starts_with("$argon2id$"));
        assert_eq!(verify("correct horse", &stored), Verified::Yes);
        assert_eq!(verify("wrong horse", &stored), Verified::No);
    }

    #[test]
    fn django_pbkdf2_hashes_verify_and_ask_for_a_rehash() {
        // The layout Django writes, with 1000 iterations to keep the test quick; the hash was
        // computed independently with Python: hashlib.pbkdf2_hmac("sha256", password, salt, 1000).
        let stored = "pbkdf2_sha256$1000$saltsaltsalt$K6/trMkvM8HaCnZnf6tliLuJMmfDm+I340KbjB+oLtQ=";
        match verify("django-pass-1", stored) {
            Verified::YesRehash(new) => assert!(new.starts_with("$argon2id$")),
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert_eq!(verify("django-pass-2", stored), Verified::No);
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
        ] {
            assert_eq!(verify("anything", stored), Verified::No, "{stored}");
        }
    }
}
