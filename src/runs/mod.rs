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
pub mod tree_api;
pub mod tree_upload;
pub mod views;

use crate::store::{Run, RunStatus};

/// `/api/v1/runs...`, mounted by `routes.rs` under its API layers.
pub fn api_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/runs", get(api::list).post(api::create))
        .route("/runs/{id}", get(api::get))
        .route("/runs/{id}/logs", get(api::logs))
        .route("/runs/{id}/resources", get(resources::api))
        .route("/runs/{id}/cancel", post(api::cancel))
        .route("/runs/{id}/retry-build", post(build_panel::retry_api))
        .route("/runs/{id}/rerun-failed", post(rerun::api))
        .route("/runs/{id}/stacks", get(hang_view::api))
        .route("/trees/missing", post(tree_api::missing))
        .route("/trees", post(tree_api::create))
        .route("/trees/{id}", get(tree_api::get))
        .route("/trees/{id}/tar", get(tree_api::tar))
        .route("/blobs/{sha256}", axum::routing::put(tree_api::put_blob))
}

/// The OpenAPI paths of `api_routes` (`openapi.rs` merges them; a test
/// checks that every route above is there).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        api::list,
        api::create,
        api::get,
        api::logs,
        resources::api,
        api::cancel,
        build_panel::retry_api,
        rerun::api,
        hang_view::api,
        tree_api::missing,
        tree_api::create,
        tree_api::get,
        tree_api::tar,
        tree_api::put_blob
    ))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
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
