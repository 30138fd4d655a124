//! JSON API for workers.

use axum::extract::State;

use crate::{
    error::{AppError, AppResult},
    operators::Operator,
    state::AppState,
    store::workers,
    store::workers::Worker,
    web::extract::{Json, Path},
};

/// `GET /api/v1/workers`: every registered worker with its state.
#[utoipa::path(get, path = "/api/v1/workers", tag = "workers",
    responses((status = 200, body = [Worker])))]
pub async fn list(State(state): State<AppState>) -> AppResult<Json<Vec<Worker>>> {
    let lost_after = super::lost_after(&state).as_secs_f64();
    Ok(Json(workers::list(&state.db, lost_after).await?))
}

/// `POST /api/v1/workers/{name}/drain` (operators): the worker finishes its
/// runs and takes no new ones, until it is resumed or restarts.
#[utoipa::path(post, path = "/api/v1/workers/{name}/drain", tag = "workers",
    params(("name" = String, Path, description = "the worker's name")),
    security(("operator_token" = [])),
    responses(
        (status = 200, body = Worker),
        (status = 401, description = "no or a wrong operator token", body = crate::error::ErrorBody),
        (status = 404, description = "no such worker", body = crate::error::ErrorBody)))]
pub async fn drain(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
) -> AppResult<Json<Worker>> {
    Ok(Json(set_draining(&state, &name, true).await?))
}

/// `POST /api/v1/workers/{name}/resume` (operators): a draining worker takes
/// runs again.
#[utoipa::path(post, path = "/api/v1/workers/{name}/resume", tag = "workers",
    params(("name" = String, Path, description = "the worker's name")),
    security(("operator_token" = [])),
    responses(
        (status = 200, body = Worker),
        (status = 401, description = "no or a wrong operator token", body = crate::error::ErrorBody),
        (status = 404, description = "no such worker", body = crate::error::ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
) -> AppResult<Json<Worker>> {
    Ok(Json(set_draining(&state, &name, false).await?))
}

/// Drains or resumes the worker and returns it as it is now.
pub async fn set_draining(state: &AppState, name: &str, draining: bool) -> AppResult<Worker> {
    if !workers::set_draining(&state.db, name, draining).await? {
        return Err(AppError::NotFound(format!(
            "no worker is named {name:?}; GET /api/v1/workers lists them"
        )));
    }
    tracing::info!(worker = %name, draining, "worker drained or resumed by an operator");
    let lost_after = super::lost_after(state).as_secs_f64();
    workers::list(&state.db, lost_after)
        .await?
        .into_iter()
        .find(|w| w.name == name)
        .ok_or_else(|| AppError::NotFound(format!("worker {name:?} went away")))
}
