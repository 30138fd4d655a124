//! The projects page and API: what the catalog found under the tests folder
//! (see `catalog::project`), with each project's dependency image.

pub mod api;
mod rebuild;
pub mod views;

/// `/api/v1/projects` (and a project's rebuild) and `/api/v1/test-files`.
pub fn api_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/test-files", get(api::test_files))
        .route("/projects", get(api::list))
        .route("/projects/{name}/rebuild", post(api::rebuild))
}

/// The OpenAPI paths of `api_routes` (`openapi.rs` merges them; a test
/// checks that every route above is there).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(api::test_files, api::list, api::rebuild))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The projects page and its rebuild button.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/projects", get(views::index))
        .route("/projects/{name}/rebuild", post(views::rebuild))
}
