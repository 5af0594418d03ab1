//! The API's description: the OpenAPI document's frame (title, security scheme, tags; the
//! paths come from the handlers) served at `/api/schema/`, and a readable reference (Swagger
//! UI, embedded in the binary) at `/api/docs/`.

use axum::Router;
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
}
