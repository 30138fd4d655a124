//! Environments: the limits a run executes with, and who holds each one now.

pub mod api;
pub mod changes;
pub mod edit;
pub mod host;
pub mod needs;
pub mod storage;
pub mod store;
pub mod usage;
pub mod views;

use time::OffsetDateTime;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{environment_id::EnvironmentId, limits::Limits};

/// An environment with the run that holds it, if any.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Environment {
    pub id: EnvironmentId,
    #[sqlx(flatten)]
    pub limits: Limits,
    pub enabled: bool,
    pub required_labels: Vec<String>,
    pub busy_run_id: Option<i64>,
    pub busy_username: Option<String>,
    pub busy_since: Option<OffsetDateTime>,
    pub waiting: i64,
}

/// `/api/v1/environments...`, each route with its OpenAPI operation.
pub fn api_routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::list))
        .routes(routes!(api::usage))
        .routes(routes!(needs::api))
        .routes(routes!(api::create, api::update, api::delete))
}

/// The environments page, its usage fragment and its forms.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/environments", get(views::index).post(edit::create))
        .route("/environments/fragments/usage", get(views::usage_fragment))
        .route("/environments/{id}", post(edit::update))
        .route("/environments/{id}/edit", get(edit::edit_page))
        .route("/environments/{id}/delete", post(edit::delete))
}
