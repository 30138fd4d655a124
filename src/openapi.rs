//! The JSON API and its OpenAPI 3.1 document, from one list: each domain's
//! `api_routes` registers a handler with `routes!`, which routes it at the
//! path of its own `#[utoipa::path]` attribute and adds that operation to the
//! document, so no route can be missing from it or documented but not
//! routed. Served at `/api/v1/openapi.json` and read by the docs page at
//! `/api/docs` (Swagger UI, embedded in the binary).

use axum::{
    http::{header, HeaderValue},
    Router,
};
use tower_http::set_header::SetResponseHeaderLayer;
use utoipa::openapi::{
    security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    OpenApi,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_swagger_ui::SwaggerUi;

use crate::{
    checks, environments, projects, results, runs, state::AppState, web::headers::DOCS_POLICY,
    workers,
};

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

/// Every route of the JSON API (at `/api/v1/...`, the paths its handlers
/// declare), with the document describing them and the operator's scheme.
/// `routes.rs` adds the API's layers, then splits it (`split_for_parts`).
pub fn api() -> OpenApiRouter<AppState> {
    let mut router = OpenApiRouter::with_openapi(<Info as utoipa::OpenApi>::openapi())
        .merge(projects::api_routes())
        .merge(environments::api_routes())
        .merge(runs::api_routes())
        .merge(results::api_routes())
        .merge(checks::api_routes())
        .merge(workers::api_routes());
    router
        .get_openapi_mut()
        .components
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
    router
}

/// The document and the docs page (whose files are embedded at build time:
/// nothing is fetched, then or when serving), under the docs page's policy.
pub fn routes<S: Clone + Send + Sync + 'static>(document: OpenApi) -> Router<S> {
    Router::from(SwaggerUi::new(DOCS_PATH).url(DOCUMENT_PATH, document)).layer(
        SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DOCS_POLICY),
        ),
    )
}
