//! Extractors that parse at the boundary and answer bad input in the contract's shape: a typed
//! JSON body ([`Body`] of any [`FromJson`] request type), a positive path id, pagination
//! parameters, and the signed-in user (authentication lives here, in one place).

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Path, Request},
    http::{StatusCode, header, request::Parts},
};
use serde_json::Value;

use super::error::ApiError;
use crate::{
    AppState,
    auth::{jwt::TokenType, verified::Access},
    domain::{BELOW_ZERO, FieldErrors, NOT_AN_INTEGER, has_nul},
    error::{AuthProblem, Error},
    store::User,
};

/// A request type read from a JSON body. Implementations read every field and report every
/// problem at once (Django REST framework does), so they are written with
/// [`crate::domain::Fields`] rather than derived.
pub trait FromJson: Sized {
    fn from_json(body: &Value) -> Result<Self, Error>;
}

/// A JSON request body parsed into `T`. An empty body reads as `{}`.
pub struct Body<T>(pub T);

impl<S, T> FromRequest<S> for Body<T>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    T: FromJson,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, ApiError> {
        let value = json_value(request, state).await?;
        Ok(Body(T::from_json(&value)?))
    }
}

/// A JSON request body whose fields are read only when the handler says so ([`Deferred::parse`]),
/// after its permission checks: someone who may not act learns that (403/404) before anything
/// about the fields, as with Django REST framework. An unreadable body is refused at once.
pub struct Deferred<T> {
    value: Value,
    wanted: std::marker::PhantomData<T>,
}

impl<T: FromJson> Deferred<T> {
    pub fn parse(&self) -> Result<T, Error> {
        T::from_json(&self.value)
    }
}

impl<S, T> FromRequest<S> for Deferred<T>
where
    S: Send + Sync,
    AppState: FromRef<S>,
    T: FromJson,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Deferred<T>, ApiError> {
        Ok(Deferred {
            value: json_value(request, state).await?,
            wanted: std::marker::PhantomData,
        })
    }
}

async fn json_value<S: Send + Sync>(request: Request, state: &S) -> Result<Value, ApiError>
where
    AppState: FromRef<S>,
{
    let limit = AppState::from_ref(state).config.body_limit;
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let bytes = Bytes::from_request(request, state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(limit)
            } else {
                Error::Malformed(rejection.body_text()).into()
            }
        })?;
    if bytes.is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match content_type {
        Some(media) if is_json(&media) => {}
        Some(media) => return Err(ApiError::UnsupportedMediaType(media)),
        None => return Err(ApiError::UnsupportedMediaType(String::new())),
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Malformed(format!("JSON parse error - {e}")).into())
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
            .map_err(|_| Error::NotFound)?;
        Ok(parse_id(&raw).map(Id).ok_or(Error::NotFound)?)
    }
}

pub fn parse_id(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse::<i64>().ok().filter(|id| *id > 0)
}

/// Why `raw` is no id or count (0 and up): negative, or not an integer at all (DRF's words).
pub fn not_a_count(raw: &str) -> &'static str {
    match raw.parse::<i64>() {
        Ok(number) if number < 0 => BELOW_ZERO,
        _ => NOT_AN_INTEGER,
    }
}

/// The signed-in user, from `Authorization: Bearer <access token>`; the user must still exist,
/// be active, and the token must carry their current token version.
pub struct AuthUser(pub Arc<User>);

impl<S> FromRequestParts<S> for AuthUser
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<AuthUser, ApiError> {
        let state = AppState::from_ref(state);
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|header| bearer_token(header.as_bytes()))
            .ok_or(Error::Unauthenticated(AuthProblem::NotProvided))?;
        Ok(authenticate(&state, token, TokenType::Access)
            .await
            .map(AuthUser)?)
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
) -> Result<Arc<User>, Error> {
    if wanted == TokenType::Access {
        return Ok(authenticate_access(state, token).await?.0);
    }
    let claims = state
        .keys
        .verify(token, wanted)
        .ok_or(Error::Unauthenticated(AuthProblem::TokenNotValid))?;
    signed_in_user(state, claims.user_id, claims.ver).await
}

/// The user a valid access token belongs to, and what the token says (its expiry).
pub async fn authenticate_access(
    state: &AppState,
    token: &str,
) -> Result<(Arc<User>, Access), Error> {
    let access = state
        .keys
        .verify_access(token)
        .ok_or(Error::Unauthenticated(AuthProblem::TokenNotValid))?;
    Ok((
        signed_in_user(state, access.user_id, access.ver).await?,
        access,
    ))
}

/// The user of a valid token's claims, if they may still act with it: they exist, are active,
/// and the token was issued under their current token version.
async fn signed_in_user(state: &AppState, user_id: i64, ver: i64) -> Result<Arc<User>, Error> {
    let user = state
        .store
        .user(user_id)
        .await?
        .ok_or(Error::Unauthenticated(AuthProblem::UserNotFound))?;
    if !user.is_active {
        return Err(Error::Unauthenticated(AuthProblem::UserInactive));
    }
    if user.token_version != ver {
        return Err(Error::Unauthenticated(AuthProblem::TokenNotValid));
    }
    Ok(user)
}

/// The query string of a list request: `limit`/`offset` (DRF LimitOffsetPagination: default
/// 50, at most 200, unparsable values fall back to the defaults) and every other parameter.
/// A parameter holding a NUL character is refused (400) like a body field.
pub struct ListQuery {
    pub limit: i64,
    pub offset: i64,
    pairs: Vec<(String, String)>,
    base: String,
}

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

impl<S> FromRequestParts<S> for ListQuery
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<ListQuery, ApiError> {
        let state = AppState::from_ref(state);
        Ok(ListQuery::parse(parts, state.config.public_url.as_deref())?)
    }
}

impl ListQuery {
    /// Reads the query of `parts`; links start with `public_url` when one is configured, else
    /// with the request's own scheme and host.
    pub fn parse(parts: &Parts, public_url: Option<&str>) -> Result<ListQuery, Error> {
        let pairs: Vec<(String, String)> =
            form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let mut errors = FieldErrors::default();
        for (key, value) in &pairs {
            if has_nul(key) || has_nul(value) {
                errors.add(key, crate::domain::NUL_NOT_ALLOWED);
            }
        }
        errors.into_result()?;
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
        let origin = match public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => {
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
                format!("{scheme}://{host}")
            }
        };
        let base = format!("{origin}{}", parts.uri.path());
        Ok(ListQuery {
            limit,
            offset,
            pairs,
            base,
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An optional id parameter (`after`, `before`, `thread`): a non-negative integer, else a
    /// field error.
    pub fn id(&self, name: &str, errors: &mut FieldErrors) -> Option<i64> {
        let raw = self.get(name)?;
        let id = parse_id(raw).or_else(|| (raw == "0").then_some(0));
        if id.is_none() {
            errors.add(name, not_a_count(raw));
        }
        id
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

    /// `next` and `previous` for offset paging over `count` items. No link ever carries an
    /// overflowed offset: past the end, `next` is null.
    pub fn offset_links(&self, count: i64) -> (Option<String>, Option<String>) {
        let next = self
            .offset
            .checked_add(self.limit)
            .filter(|next| *next < count)
            .map(|next| {
                self.link(&[
                    ("limit", Some(self.limit.to_string())),
                    ("offset", Some(next.to_string())),
                ])
            });
        let previous = (self.offset > 0).then(|| {
            let earlier = self
                .offset
                .saturating_sub(self.limit)
                .max(0)
                .min(count.max(0));
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

    fn query(uri: &str, public_url: Option<&str>) -> ListQuery {
        let request = axum::http::Request::builder()
            .uri(uri)
            .header(header::HOST, "evil.example")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        ListQuery::parse(&parts, public_url).unwrap()
    }

    #[test]
    fn links_never_overflow() {
        let page = query(&format!("/x?offset={}", i64::MAX), None);
        assert_eq!(page.offset_links(10).0, None);
        let previous = page.offset_links(10).1.unwrap();
        assert!(!previous.contains('-'), "{previous}");
    }

    #[test]
    fn links_start_with_the_public_url_when_set() {
        let page = query("/x?offset=0&limit=1", Some("https://chat.example.org/"));
        let next = page.offset_links(5).0.unwrap();
        assert!(next.starts_with("https://chat.example.org/x?"), "{next}");
        let page = query("/x?offset=0&limit=1", None);
        assert!(
            page.offset_links(5)
                .0
                .unwrap()
                .starts_with("http://evil.example/")
        );
    }
}
