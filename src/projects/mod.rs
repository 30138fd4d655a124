//! The projects page and API: what the catalog found under the tests folder
//! (see `catalog::project`), with each project's dependency image.

pub mod api;
mod rebuild;
pub mod views;

use utoipa_axum::{router::OpenApiRouter, routes};

/// `/api/v1/projects` (and a project's rebuild) and `/api/v1/test-files`,
/// each route with its OpenAPI operation.
pub fn api_routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::test_files))
        .routes(routes!(api::list))
        .routes(routes!(api::rebuild))
}

/// The projects page and its rebuild button.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/projects", get(views::index))
        .route("/projects/{name}/rebuild", post(views::rebuild))
}
