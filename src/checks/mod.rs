//! Checks on a failed test: is it flaky (it runs alone N times), and which
//! earlier test makes it fail (an order bisect). Started here, advanced by
//! `check_driver`, stored by `store::checks`.

pub mod api;
pub mod start;
pub mod views;

use utoipa_axum::{router::OpenApiRouter, routes};

/// `/api/v1/runs/{id}/flaky-check`, `/api/v1/runs/{id}/bisect`,
/// `/api/v1/checks/{id}`, each route with its OpenAPI operation.
pub fn api_routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::flaky))
        .routes(routes!(api::bisect))
        .routes(routes!(api::get))
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
