//! The API's description: the OpenAPI document's frame (title, security scheme, tags; the
//! paths come from the handlers) served at `/api/schema/`, and a readable reference (Swagger
//! UI, embedded in the binary) at `/api/docs/`.
//!
//! Swagger UI's files are embedded gzipped (1.1 MB instead of 4.2 MB of the binary) and sent as
//! they are to clients that accept gzip (every browser); others get them decompressed.

use std::io::Read;

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use utoipa::{
    Modify, OpenApi,
    openapi::security::{Http, HttpAuthScheme, SecurityScheme},
};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Simple Chat",
        description = "A self-hostable one-to-one chat server. Every URL of the original Django \
            app is kept (both spellings where its README and code disagreed; with or without a \
            trailing slash). Errors use Django REST framework's shapes. Real-time frames are \
            described in docs/REALTIME.md.",
        license(name = "MIT")
    ),
    modifiers(&BearerToken),
    tags(
        (name = "tokens", description = "Sign in: simplejwt-compatible tokens"),
        (name = "users", description = "Accounts and looking users up"),
        (name = "threads", description = "Conversations of two users"),
        (name = "messages", description = "Posting, reading, read marks"),
        (name = "real time", description = "The event log over WebSocket and long poll"),
        (name = "operations", description = "For load balancers and operators"),
    )
)]
pub struct ApiDoc;

/// `Authorization: Bearer <access token>`.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Completes the description once every route's path is in: any operation may answer 400
/// (a query parameter holding a NUL character, for one), and any answer an operation does not
/// list (413, 415, 429, 503, ...) is `{"detail": ...}`.
pub fn finish(openapi: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::{Ref, ResponseBuilder, content::ContentBuilder};
    let answer = |description: &str, schema: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(schema)))
                    .build(),
            )
            .build()
    };
    let other = answer("Any other answer: a message in `detail`", "Detail");
    let invalid = answer("Bad input: the fields at fault", "ValidationErrors");
    for item in openapi.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let responses = &mut operation.responses.responses;
            responses
                .entry("400".into())
                .or_insert_with(|| invalid.clone().into());
            responses
                .entry("default".into())
                .or_insert_with(|| other.clone().into());
        }
    }
}

/// `/api/schema` (the JSON) and `/api/docs/` (the reference).
pub fn router(description: utoipa::openapi::OpenApi) -> Router<AppState> {
    Router::from(SwaggerUi::new("/api/docs").url("/api/schema", description))
        .layer(middleware::from_fn(gunzip_unless_accepted))
}

async fn gunzip_unless_accepted(request: Request, next: Next) -> Response {
    let accepted = accepts_gzip(request.headers());
    let mut response = next.run(request).await;
    let gzipped =
        response.headers().get(header::CONTENT_ENCODING) == Some(&HeaderValue::from_static("gzip"));
    if !gzipped {
        return response;
    }
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if accepted {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let plain = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_end(&mut plain)
                .map(|_| plain)
        }
        Err(error) => Err(std::io::Error::other(error)),
    };
    match plain {
        Ok(plain) => {
            parts.headers.remove(header::CONTENT_ENCODING);
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(plain))
        }
        Err(error) => {
            tracing::error!(%error, "an embedded Swagger UI file does not decompress");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*`, without `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or_default();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .is_some_and(|q| q.parse::<f32>().is_ok_and(|q| q == 0.0))
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT_ENCODING, value.parse().unwrap());
        accepts_gzip(&headers)
    }

    #[test]
    fn gzip_is_accepted_unless_refused() {
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("br;q=1.0, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("br, deflate"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    /// utoipa takes only literals for `max_items`: the described limits must be the enforced
    /// ones.
    #[test]
    fn described_list_limits_are_the_enforced_ones() {
        use crate::domain::{IDS_PER_MARK, MESSAGES_PER_BATCH};
        let description = serde_json::to_value(super::super::openapi()).unwrap();
        let schemas = &description["components"]["schemas"];
        for (schema, field, most) in [
            ("PostMessages", "messages", MESSAGES_PER_BATCH),
            ("MarkRead", "messages_ids", IDS_PER_MARK),
        ] {
            let list = &schemas[schema]["properties"][field];
            assert_eq!(list["minItems"], 1, "{schema}.{field}: {list}");
            assert_eq!(list["maxItems"], most, "{schema}.{field}: {list}");
        }
    }
}
