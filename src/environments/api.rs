//! JSON API for environments.

use axum::{extract::State, Json};
use serde::Serialize;
use sqlx::PgPool;

use super::{Environment, EnvironmentId};
use crate::error::AppResult;

#[derive(Serialize)]
pub struct EnvironmentJson {
    pub id: EnvironmentId,
    pub cpus: f64,
    pub memory_mb: i32,
    pub pids_limit: i32,
    pub timeout_secs: i32,
    pub enabled: bool,
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
            busy_run_id: env.busy_run_id,
        }
    }
}

pub async fn list(State(db): State<PgPool>) -> AppResult<Json<Vec<EnvironmentJson>>> {
    let envs = super::list(&db).await?;
    Ok(Json(envs.iter().map(EnvironmentJson::from).collect()))
}
