//! Checks on a failed test: is it flaky (it runs alone N times), and which
//! earlier test makes it fail (an order bisect). Started here, advanced by
//! `check_driver`, stored by `store::checks`.

pub mod api;
pub mod start;
pub mod views;

/// `/api/v1/runs/{id}/flaky-check`, `/api/v1/runs/{id}/bisect`, `/api/v1/checks/{id}`.
pub fn api_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/runs/{id}/flaky-check", post(api::flaky))
        .route("/runs/{id}/bisect", post(api::bisect))
        .route("/checks/{id}", get(api::get))
}

/// The OpenAPI paths of `api_routes` (`openapi.rs` merges them; a test
/// checks that every route above is there).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(api::flaky, api::bisect, api::get))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The check page, its fragment, and the forms that start one.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/checks/{id}", get(views::show))
        .route("/checks/{id}/fragments/status", get(views::fragment))
        .route("/runs/{id}/flaky-check", post(views::flaky_page))
        .route("/runs/{id}/bisect", post(views::bisect_page))
}
