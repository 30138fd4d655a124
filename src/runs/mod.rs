//! Runs: what a person asked to execute, and how it went.

pub mod api;
mod chart;
mod components;
pub mod detail;
pub mod form;
pub mod request;
pub mod resources;
pub mod views;

pub use crate::store::*;

/// `/api/v1/runs...`, mounted by `routes.rs` under its API layers.
pub fn api_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/runs", get(api::list).post(api::create))
        .route("/runs/{id}", get(api::get))
        .route("/runs/{id}/logs", get(api::logs))
        .route("/runs/{id}/resources", get(resources::api))
        .route("/runs/{id}/cancel", post(api::cancel))
}

/// The run pages and their htmx fragments.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/", get(views::index))
        .route("/fragments/runs/newer", get(views::newer_fragment))
        .route("/fragments/runs/{id}/row", get(views::row_fragment))
        .route("/runs", post(form::submit))
        .route("/runs/new", get(form::new_form))
        .route("/runs/{id}", get(detail::show))
        .route("/runs/{id}/cancel", post(detail::cancel))
        .route("/runs/{id}/fragments/status", get(detail::status_fragment))
        .route("/runs/{id}/fragments/logs", get(detail::logs_fragment))
        .route("/runs/{id}/fragments/resources", get(resources::fragment))
}
