//! HS256 JSON Web Tokens with djangorestframework-simplejwt's claims (`token_type`, `exp`,
//! `iat`, `jti`, `user_id`), so tokens look the same to clients of the original. One extra claim,
//! `ver`, carries the user's token version: bumping it (password change, deactivation) ends
//! every token issued before.

use std::{sync::Arc, time::Duration};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::verified::{Access, VerifiedTokens};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub token_type: TokenType,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub user_id: i64,
    #[serde(default)]
    pub ver: i64,
}

/// The signing key and token lifetimes of an instance.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    access_lifetime: Duration,
    refresh_lifetime: Duration,
    /// Access tokens verified before (shared by the clones).
    verified: Arc<VerifiedTokens>,
}

impl TokenKeys {
    pub fn new(secret: &[u8], access_lifetime: Duration, refresh_lifetime: Duration) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            access_lifetime,
            refresh_lifetime,
            verified: Arc::default(),
        }
    }

    pub fn issue(&self, token_type: TokenType, user_id: i64, version: i64) -> String {
        let now = unix_now();
        let lifetime = match token_type {
            TokenType::Access => self.access_lifetime,
            TokenType::Refresh => self.refresh_lifetime,
        };
        let claims = Claims {
            token_type,
            exp: now + lifetime.as_secs() as i64,
            iat: now,
            jti: new_jti(),
            user_id,
            ver: version,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing of plain claims cannot fail")
    }

    /// The claims of a well-signed, unexpired token of the wanted type.
    pub fn verify(&self, token: &str, wanted: TokenType) -> Option<Claims> {
        let claims = self.verify_any(token)?;
        (claims.token_type == wanted).then_some(claims)
    }

    /// What a well-signed, unexpired access token says. A token verified before is found in
    /// memory ([`VerifiedTokens`]), where it was kept after the full check.
    pub fn verify_access(&self, token: &str) -> Option<Access> {
        let now = unix_now();
        if let Some(kept) = self.verified.get(token, now) {
            return kept;
        }
        let claims = self.verify(token, TokenType::Access)?;
        let access = Access {
            user_id: claims.user_id,
            ver: claims.ver,
            exp: claims.exp,
        };
        self.verified.keep(token, access, now);
        Some(access)
    }

    /// The claims of a well-signed, unexpired token of either type.
    pub fn verify_any(&self, token: &str) -> Option<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// A fresh random signing key, 64 hex characters.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

fn new_jti() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};

    fn keys(secret: &str) -> TokenKeys {
        TokenKeys::new(
            secret.as_bytes(),
            Duration::from_secs(300),
            Duration::from_secs(86400),
        )
    }

    #[test]
    fn access_and_refresh_are_not_interchangeable() {
        let keys = keys("k1");
        let access = keys.issue(TokenType::Access, 7, 0);
        let refresh = keys.issue(TokenType::Refresh, 7, 0);
        assert_eq!(keys.verify(&access, TokenType::Access).unwrap().user_id, 7);
        assert!(keys.verify(&access, TokenType::Refresh).is_none());
        assert!(keys.verify(&refresh, TokenType::Access).is_none());
        assert_eq!(
            keys.verify(&refresh, TokenType::Refresh).unwrap().user_id,
            7
        );
    }

    #[test]
    fn another_key_or_a_tampered_payload_is_refused() {
        let token = keys("k1").issue(TokenType::Access, 7, 0);
        assert!(keys("k2").verify_any(&token).is_none());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("\"user_id\":7", "\"user_id\":1"));
        assert!(keys("k1").verify_any(&parts.join(".")).is_none());
    }

    #[test]
    fn access_tokens_verified_before_answer_alike() {
        let keys = keys("k1");
        let token = keys.issue(TokenType::Access, 7, 3);
        let expected = keys.verify(&token, TokenType::Access).unwrap();
        for _ in 0..2 {
            let access = keys.verify_access(&token).unwrap();
            assert_eq!((access.user_id, access.ver), (7, 3));
            assert_eq!(access.exp, expected.exp);
        }
        // A clone shares what was verified; another key does not.
        assert!(keys.clone().verify_access(&token).is_some());
        assert!(self::keys("k2").verify_access(&token).is_none());
        let refresh = keys.issue(TokenType::Refresh, 7, 3);
        assert!(keys.verify_access(&refresh).is_none());
        assert!(keys.verify_access(&refresh).is_none());
    }

    #[test]
    fn a_verified_signature_on_other_claims_is_refused() {
        let keys = keys("k1");
        let token = keys.issue(TokenType::Access, 7, 0);
        assert!(keys.verify_access(&token).is_some());
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        parts[1] = URL_SAFE_NO_PAD.encode(payload.replace("\"user_id\":7", "\"user_id\":1"));
        assert!(keys.verify_access(&parts.join(".")).is_none());
        assert_eq!(keys.verify_access(&token).unwrap().user_id, 7);
    }

    #[test]
    fn alg_none_is_refused() {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD
            .encode(r#"{"token_type":"access","exp":99999999999,"iat":1,"jti":"x","user_id":1}"#);
        assert!(
            keys("k1")
                .verify_any(&format!("{header}.{payload}."))
                .is_none()
        );
    }

    #[test]
    fn claims_have_simplejwt_names() {
        let token = keys("k1").issue(TokenType::Access, 3, 2);
        let payload = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        for claim in ["token_type", "exp", "iat", "jti", "user_id"] {
            assert!(claims.get(claim).is_some(), "missing {claim}");
        }
        assert_eq!(claims["token_type"], "access");
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            300
        );
    }
}
