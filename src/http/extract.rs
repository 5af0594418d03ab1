//! Extractors that answer bad input in the contract's shape: a JSON body, a positive path id,
//! pagination parameters, and the signed-in user (authentication lives here, in one place).

use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Path, Request},
    http::{header, request::Parts},
};
use serde_json::Value;

use super::AppState;
use crate::{
    auth::jwt::TokenType,
    error::{ApiError, NOT_AUTHENTICATED, TOKEN_NOT_VALID},
    store::User,
};

/// A JSON request body, parsed but not yet validated (handlers validate field by field so that
/// errors name every bad field). An empty body reads as `{}`.
pub struct JsonBody(pub Value);

impl<S> FromRequest<S> for JsonBody
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<JsonBody, ApiError> {
        let limit = AppState::from_ref(state).config.body_limit;
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(limit)
                } else {
                    ApiError::BadRequest(rejection.body_text())
                }
            })?;
        if bytes.is_empty() {
            return Ok(JsonBody(Value::Object(Default::default())));
        }
        match content_type {
            Some(media) if is_json(&media) => {}
            Some(media) => return Err(ApiError::UnsupportedMediaType(media)),
            None => return Err(ApiError::UnsupportedMediaType(String::new())),
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("JSON parse error - {e}")))
    }
}

fn is_json(media: &str) -> bool {
    let essence = media.split(';').next().unwrap_or_default().trim();
    essence.eq_ignore_ascii_case("application/json")
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The id in a path: a positive integer that fits, anything else is 404.
pub struct Id(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Id, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::NotFound)?;
        parse_id(&raw).map(Id).ok_or(ApiError::NotFound)
    }
}

pub fn parse_id(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// The signed-in user, from `Authorization: Bearer <access token>`; the user must still exist,
/// be active, and the token must carry their current token version.
pub struct AuthUser(pub User);

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<AuthUser, ApiError> {
        let state = AppState::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or(NOT_AUTHENTICATED)?;
        let token = bearer_token(header.as_bytes()).ok_or(NOT_AUTHENTICATED)?;
        authenticate(&state, token, TokenType::Access)
            .await
            .map(AuthUser)
    }
}

/// `Bearer <token>` (or simplejwt's other spelling, `JWT <token>`).
pub fn bearer_token(header: &[u8]) -> Option<&str> {
    let header = std::str::from_utf8(header).ok()?;
    let (scheme, token) = header.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") || scheme == "JWT")
        .then_some(token)
        .filter(|t| !t.is_empty())
}

/// The user a valid token of the wanted type belongs to.
pub async fn authenticate(
    state: &AppState,
    token: &str,
    wanted: TokenType,
) -> Result<User, ApiError> {
    let claims = state.keys.verify(token, wanted).ok_or(TOKEN_NOT_VALID)?;
    let user = state
        .store
        .user(claims.user_id)
        .await?
        .ok_or(ApiError::Unauthorized {
            detail: "User not found",
            code: Some("user_not_found"),
        })?;
    if !user.is_active {
        return Err(ApiError::Unauthorized {
            detail: "User is inactive",
            code: Some("user_inactive"),
        });
    }
    if user.token_version != claims.ver {
        return Err(TOKEN_NOT_VALID);
    }
    Ok(user)
}

/// The query string of a list request: `limit`/`offset` (DRF LimitOffsetPagination: default
/// 50, at most 200, unparsable values fall back to the defaults) and every other parameter.
pub struct ListQuery {
    pub limit: i64,
    pub offset: i64,
    pairs: Vec<(String, String)>,
    base: String,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

impl<S: Send + Sync> FromRequestParts<S> for ListQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ListQuery, ApiError> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let number = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse::<i64>().ok())
        };
        let limit = number("limit")
            .filter(|l| *l > 0)
            .map_or(DEFAULT_LIMIT, |l| l.min(MAX_LIMIT));
        let offset = number("offset").filter(|o| *o >= 0).unwrap_or(0);
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("localhost");
        let scheme = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|h| h.to_str().ok())
            .filter(|p| *p == "https")
            .unwrap_or("http");
        let base = format!("{scheme}://{host}{}", parts.uri.path());
        Ok(ListQuery {
            limit,
            offset,
            pairs,
            base,
        })
    }
}

impl ListQuery {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// This list's URL with some parameters replaced (and `None` ones removed).
    pub fn link(&self, replace: &[(&str, Option<String>)]) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (key, value) in &self.pairs {
            if !replace.iter().any(|(name, _)| name == key) {
                query.append_pair(key, value);
            }
        }
        for (name, value) in replace {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        let query = query.finish();
        if query.is_empty() {
            self.base.clone()
        } else {
            format!("{}?{query}", self.base)
        }
    }

    /// `next` and `previous` for offset paging over `count` items.
    pub fn offset_links(&self, count: i64) -> (Option<String>, Option<String>) {
        let next = (self.offset + self.limit < count).then(|| {
            self.link(&[
                ("limit", Some(self.limit.to_string())),
                ("offset", Some((self.offset + self.limit).to_string())),
            ])
        });
        let previous = (self.offset > 0).then(|| {
            let earlier = (self.offset - self.limit).max(0);
            self.link(&[
                ("limit", Some(self.limit.to_string())),
                ("offset", (earlier > 0).then(|| earlier.to_string())),
            ])
        });
        (next, previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_ids_are_positive_integers_that_fit() {
        assert_eq!(parse_id("1"), Some(1));
        assert_eq!(parse_id("9223372036854775807"), Some(i64::MAX));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.0",
            "abc",
            "99999999999999999999",
            " 1",
        ] {
            assert_eq!(parse_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        assert_eq!(bearer_token(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer_token(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer_token(b"JWT abc"), Some("abc"));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("application/json; charset=utf-8"));
        assert!(is_json("application/vnd.api+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/x-www-form-urlencoded"));
    }
}
