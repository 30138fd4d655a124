//! The projects page and API: what the catalog found under the tests folder
//! (see `catalog::project`), with each project's dependency image.

pub mod api;
pub mod views;

/// `/api/v1/projects` and `/api/v1/test-files`.
pub fn api_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/test-files", get(api::test_files))
        .route("/projects", get(api::list))
}

/// The OpenAPI paths of `api_routes` (`openapi.rs` merges them; a test
/// checks that every route above is there).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(api::test_files, api::list))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The projects page.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    axum::Router::new().route("/projects", axum::routing::get(views::index))
}
