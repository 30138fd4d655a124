//! Workers: the executor processes sharing the queue, each on its Docker
//! host — who they are, what they can take and run, and draining one.

pub mod api;
pub mod views;

use std::time::Duration;

use utoipa_axum::{router::OpenApiRouter, routes};

use crate::state::AppState;

/// When a worker with a free lock and no heartbeat is lost.
pub fn lost_after(state: &AppState) -> Duration {
    Duration::from_secs(state.config.worker.worker_lost_after)
}

/// `/api/v1/workers...`, each route with its OpenAPI operation.
pub fn api_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::list))
        .routes(routes!(api::drain))
        .routes(routes!(api::resume))
}

/// The drain and resume buttons' forms.
pub fn page_routes() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/workers/{name}/drain", post(views::drain))
        .route("/workers/{name}/resume", post(views::resume))
}
