//! Workers: the executor processes sharing the queue, each on its Docker
//! host — who they are, what they can take and run, and draining one.

pub mod api;
pub mod views;

use std::time::Duration;

use crate::state::AppState;

/// When a worker with a free lock and no heartbeat is lost.
pub fn lost_after(state: &AppState) -> Duration {
    Duration::from_secs(state.config.worker.worker_lost_after)
}

/// `/api/v1/workers...`.
pub fn api_routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/workers", get(api::list))
        .route("/workers/{name}/drain", post(api::drain))
        .route("/workers/{name}/resume", post(api::resume))
}

/// The OpenAPI paths of `api_routes` (`openapi.rs` merges them).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(api::list, api::drain, api::resume))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The drain and resume buttons' forms.
pub fn page_routes() -> axum::Router<AppState> {
    use axum::routing::post;
    axum::Router::new()
        .route("/workers/{name}/drain", post(views::drain))
        .route("/workers/{name}/resume", post(views::resume))
}
