//! JSON API for environments.

use axum::{extract::State, http::StatusCode};
use serde::Serialize;
use sqlx::PgPool;

use super::{
    changes::{self, LimitsChange},
    host, Environment,
};
use crate::{
    environment_id::EnvironmentId,
    error::{AppResult, ErrorBody},
    operators::Operator,
    state::AppState,
    web::extract::{optional_json, Json, Path},
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct EnvironmentJson {
    pub id: EnvironmentId,
    pub cpus: f64,
    pub memory_mb: i32,
    pub pids_limit: i32,
    pub timeout_secs: i32,
    pub enabled: bool,
    pub required_labels: Vec<String>,
    pub busy_run_id: Option<i64>,
}

impl From<&Environment> for EnvironmentJson {
    fn from(env: &Environment) -> Self {
        EnvironmentJson {
            id: env.id,
            cpus: env.limits.cpus(),
            memory_mb: env.limits.memory_mb,
            pids_limit: env.limits.pids_limit,
            timeout_secs: env.limits.timeout_secs,
            enabled: env.enabled,
            required_labels: env.required_labels.clone(),
            busy_run_id: env.busy_run_id,
        }
    }
}

/// Every environment with its limits and the run that holds it.
#[utoipa::path(get, path = "/api/v1/environments", tag = "environments",
    responses((status = 200, body = [EnvironmentJson])))]
pub async fn list(State(db): State<PgPool>) -> AppResult<Json<Vec<EnvironmentJson>>> {
    let envs = super::store::list(&db).await?;
    Ok(Json(envs.iter().map(EnvironmentJson::from).collect()))
}

/// Live use (CPU, memory, processes) of every busy environment.
#[utoipa::path(get, path = "/api/v1/environments/usage", tag = "environments",
    responses((status = 200, body = [super::usage::Usage])))]
pub async fn usage(State(state): State<AppState>) -> AppResult<Json<Vec<super::usage::Usage>>> {
    let envs = super::store::list(&state.db).await?;
    Ok(Json(super::usage::sample(&state, &envs).await))
}

fn parse_id(raw: &str) -> AppResult<EnvironmentId> {
    raw.parse()
}

/// Creates an environment (operators only); without a body it gets the
/// default limits.
#[utoipa::path(post, path = "/api/v1/environments/{id}", tag = "environments",
    params(("id" = i32, Path, description = "1–100")),
    request_body(content = LimitsChange, description = "optional: its limits (the defaults without one)"),
    security(("operator_token" = [])),
    responses(
        (status = 201, body = EnvironmentJson),
        (status = 401, description = "no or a wrong operator token", body = ErrorBody),
        (status = 409, description = "it exists already", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> AppResult<(StatusCode, Json<EnvironmentJson>)> {
    let id = parse_id(&id)?;
    // The body is optional: without one the environment gets the defaults.
    let change: LimitsChange = optional_json(&body)?;
    changes::create(&state.db, id, &change, host::capacity(&state).await?).await?;
    tracing::info!(environment_id = %id, "environment created by an operator");
    Ok((
        StatusCode::CREATED,
        Json((&super::store::get(&state.db, id).await?).into()),
    ))
}

/// Changes an environment's limits (operators only); absent fields stay.
#[utoipa::path(patch, path = "/api/v1/environments/{id}", tag = "environments",
    params(("id" = i32, Path, description = "1–100")),
    request_body = LimitsChange,
    security(("operator_token" = [])),
    responses(
        (status = 200, body = EnvironmentJson),
        (status = 401, description = "no or a wrong operator token", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "a limit the host cannot give", body = ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    Json(change): Json<LimitsChange>,
) -> AppResult<Json<EnvironmentJson>> {
    let id = parse_id(&id)?;
    changes::update(&state.db, id, &change, host::capacity(&state).await?).await?;
    tracing::info!(environment_id = %id, ?change, "environment changed by an operator");
    Ok(Json((&super::store::get(&state.db, id).await?).into()))
}

/// Deletes an environment (operators only), never one in use.
#[utoipa::path(delete, path = "/api/v1/environments/{id}", tag = "environments",
    params(("id" = i32, Path, description = "1–100")),
    security(("operator_token" = [])),
    responses(
        (status = 204, description = "deleted"),
        (status = 401, description = "no or a wrong operator token", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "a run holds it or waits for it", body = ErrorBody),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    let id = parse_id(&id)?;
    changes::delete(&state.db, id).await?;
    tracing::info!(environment_id = %id, "environment deleted by an operator");
    Ok(StatusCode::NO_CONTENT)
}
