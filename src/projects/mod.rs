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

/// The projects page.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    axum::Router::new().route("/projects", axum::routing::get(views::index))
}
