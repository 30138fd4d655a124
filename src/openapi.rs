//! The JSON API's OpenAPI 3.1 document, generated from the handlers' own
//! `#[utoipa::path]` attributes and types (each domain's `api_doc`), so it
//! cannot drift from the code. Served at `/api/v1/openapi.json` and read by
//! the docs page at `/api/docs` (Swagger UI, embedded in the binary).

use axum::{
    http::{header, HeaderValue},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::{
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    OpenApi,
};
use utoipa_swagger_ui::SwaggerUi;

use crate::{checks, environments, projects, results, runs, web::headers::DOCS_POLICY, workers};

pub const DOCUMENT_PATH: &str = "/api/v1/openapi.json";
pub const DOCS_PATH: &str = "/api/docs";

#[derive(utoipa::OpenApi)]
#[openapi(info(
    title = "test-executor",
    description = "Runs a team's pytest files in sandboxed Docker containers. \
        Errors are `{\"error\": \"...\"}` with a 4xx a person can act on. \
        State-changing calls take a JSON body (`Content-Type: application/json`) \
        or none; operator calls take `Authorization: Bearer <OPERATOR_TOKEN>`."
))]
struct Info;

/// The whole document.
pub fn document() -> OpenApi {
    let mut doc = <Info as utoipa::OpenApi>::openapi();
    for part in [
        projects::api_doc(),
        environments::api_doc(),
        runs::api_doc(),
        results::api_doc(),
        checks::api_doc(),
        workers::api_doc(),
    ] {
        doc.merge(part);
    }
    doc.components
        .get_or_insert_with(Default::default)
        .add_security_scheme(
            "operator_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("the server's OPERATOR_TOKEN"))
                    .build(),
            ),
        );
    doc
}

/// The document and the docs page (whose files are embedded at build time:
/// nothing is fetched, then or when serving), under the docs page's policy.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::from(SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, document())).layer(
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_POLICY),
        ),
    )
}
