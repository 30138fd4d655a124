//! Runs: what a person asked to execute, and how it went.

pub mod api;
pub mod build_panel;
mod chart;
mod components;
pub mod detail;
pub mod form;
pub mod hang_view;
pub mod log_text;
pub mod log_view;
pub mod request;
pub mod rerun;
pub mod resources;
mod shards_view;
pub mod tree_api;
pub mod tree_batch;
pub mod tree_upload;
mod upload_body;
pub mod views;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::store::{Run, RunStatus};

/// `/api/v1/runs...`: each route with its OpenAPI operation (the path is
/// the handler's `#[utoipa::path]`), mounted by `openapi.rs`.
pub fn api_routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::list, api::create))
        .routes(routes!(api::get))
        .routes(routes!(api::logs))
        .routes(routes!(resources::api))
        .routes(routes!(api::cancel))
        .routes(routes!(build_panel::retry_api))
        .routes(routes!(rerun::api))
        .routes(routes!(hang_view::api, hang_view::ask_api))
        .routes(routes!(shards_view::api))
        .routes(routes!(tree_api::missing))
        .routes(routes!(tree_api::create))
        .routes(routes!(tree_api::get))
        .routes(routes!(tree_api::tar))
        .routes(routes!(tree_api::put_blob))
        .routes(routes!(tree_batch::put_blobs))
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
        .route("/runs/upload", post(tree_upload::upload))
        .route("/runs/{id}", get(detail::show))
        .route("/runs/{id}/cancel", post(detail::cancel))
        .route("/runs/{id}/fragments/status", get(detail::status_fragment))
        .route("/runs/{id}/log.txt", get(log_text::log_text))
        .route("/runs/{id}/build.log", get(build_panel::log))
        .route("/runs/{id}/retry-build", post(build_panel::retry_page))
        .route("/runs/{id}/rerun-failed", post(rerun::page))
        .route("/runs/{id}/stacks", post(hang_view::ask_page))
        .route("/runs/{id}/fragments/logs", get(log_view::logs_fragment))
        .route(
            "/runs/{id}/fragments/logs/earlier",
            get(log_view::earlier_fragment),
        )
        .route(
            "/runs/{id}/fragments/logs/later",
            get(log_view::later_fragment),
        )
        .route("/runs/{id}/fragments/resources", get(resources::fragment))
}

/// A run as its own page and JSON show it: when it waits for a worker that
/// no online worker can be, it says why ("no online worker has label gpu");
/// when a worker has a free slot for it, it waits for nothing.
pub async fn get_placed(state: &crate::state::AppState, id: i64) -> crate::error::AppResult<Run> {
    let mut run = crate::store::runs::get(&state.db, id).await?;
    if run.status == RunStatus::Queued && run.holds_environment {
        let lost_after = state.config.worker.worker_lost_after as f64;
        let placement = crate::store::workers::placement(&state.db, run.environment_id, lost_after);
        run.placement = Some(placement.await?);
    }
    Ok(run)
}
