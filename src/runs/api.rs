//! JSON API for runs.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{request::RunRequest, Run, RunFilter, RunStatus, Summary};
use crate::{
    environments::EnvironmentId,
    error::{AppError, AppResult},
    logs::{self, LogLine},
    operators,
    state::AppState,
    web::extract::{optional_json, Json, Path, Query},
};

#[derive(Serialize)]
pub struct RunJson {
    pub id: i64,
    pub username: String,
    pub environment_id: EnvironmentId,
    pub files: Vec<String>,
    pub file_sha256: Vec<String>,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub waiting_for: Option<String>,
    pub exit_code: Option<i32>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub limits: LimitsJson,
    pub summary: Summary,
    pub current_test: Option<String>,
    pub log_lines: i32,
    /// "warm" (a pre-started sandbox) or "plain", once known.
    pub sandbox: Option<&'static str>,
    /// Milliseconds spent in each phase: queued, container ready, pytest, stored.
    pub timings_ms: serde_json::Map<String, serde_json::Value>,
    /// The project whose tree went with the run (`null`: files outside any).
    pub project: Option<String>,
    /// sha256 of that tree as sent (as hashed at creation until it starts).
    pub tree_sha256: Option<String>,
    /// The image of the run's container, once it has started.
    pub image: Option<String>,
    /// Peak memory, CPU-seconds and peak pids as sampled (`null` until sampled).
    pub resources: super::Resources,
}

#[derive(Serialize)]
pub struct LimitsJson {
    pub cpus: f64,
    pub memory_mb: i32,
    pub pids_limit: i32,
    pub timeout_secs: i32,
}

impl From<Run> for RunJson {
    fn from(run: Run) -> Self {
        let timings_ms = run
            .phases()
            .into_iter()
            .map(|(name, d)| {
                (
                    name.replace(' ', "_"),
                    serde_json::json!(d.whole_milliseconds() as i64),
                )
            })
            .collect();
        RunJson {
            sandbox: run.warm.map(|w| if w { "warm" } else { "plain" }),
            timings_ms,
            waiting_for: run.waiting_for(),
            id: run.id,
            username: run.username,
            environment_id: run.environment_id,
            files: run.files,
            file_sha256: run.file_sha256,
            status: run.status,
            reason: run.reason,
            exit_code: run.exit_code,
            created_at: run.created_at,
            started_at: run.started_at,
            finished_at: run.finished_at,
            limits: LimitsJson {
                cpus: run.limits.cpus(),
                memory_mb: run.limits.memory_mb,
                pids_limit: run.limits.pids_limit,
                timeout_secs: run.limits.timeout_secs,
            },
            summary: run.summary,
            current_test: run
                .current_test
                .filter(|_| run.status == RunStatus::Running),
            log_lines: run.log_lines,
            project: run.project,
            tree_sha256: run.tree_sha256,
            image: run.image,
            resources: run.resources,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    Json(request): Json<RunRequest>,
) -> AppResult<(StatusCode, Json<RunJson>)> {
    let run = super::request::submit(&state, &request).await?;
    Ok((StatusCode::CREATED, Json(run.into())))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
    pub username: Option<String>,
    pub environment_id: Option<String>,
    pub limit: Option<i64>,
    pub before: Option<i64>,
}

impl ListQuery {
    /// Empty parameters (as a form sends them) mean "any".
    pub fn filter(&self, default_limit: i64) -> AppResult<RunFilter> {
        let status = match self.status.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(RunStatus::parse(s).ok_or_else(|| {
                AppError::Invalid(format!("unknown status {s:?}; use one of queued, running, success, failed, error, cancelled, timed_out"))
            })?),
        };
        let environment_id = match self.environment_id.as_deref().filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(s.parse::<EnvironmentId>()?),
        };
        Ok(RunFilter {
            status,
            username: self
                .username
                .clone()
                .filter(|u| !u.trim().is_empty())
                .map(|u| u.trim().to_owned()),
            environment_id,
            before: self.before,
            limit: self.limit.unwrap_or(default_limit),
        })
    }
}

pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> AppResult<Json<Vec<RunJson>>> {
    let runs = super::list(&state.db, &query.filter(50)?).await?;
    Ok(Json(runs.into_iter().map(RunJson::from).collect()))
}

pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> AppResult<Json<RunJson>> {
    Ok(Json(super::get(&state.db, id).await?.into()))
}

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    pub after: Option<i32>,
    pub limit: Option<i64>,
}

pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<LogsQuery>,
) -> AppResult<Json<Vec<LogLine>>> {
    super::get(&state.db, id).await?;
    let lines = logs::after(
        &state.db,
        id,
        query.after,
        query.limit.unwrap_or(logs::MAX_PAGE),
    )
    .await?;
    Ok(Json(lines))
}

#[derive(Debug, Default, Deserialize)]
pub struct CancelRequest {
    pub username: Option<String>,
}

/// Cancels a run: its own user (named in the body) or an operator (with
/// the bearer token) may.
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> AppResult<Json<RunJson>> {
    let operator = operators::is_operator(&headers, None, &state).await?;
    let run = super::get(&state.db, id).await?;
    let request: CancelRequest = optional_json(&body)?;
    let by = if operator {
        "an operator".to_string()
    } else if request.username.as_deref().map(str::trim) == Some(run.username.as_str()) {
        run.username.clone()
    } else {
        return Err(AppError::Forbidden(format!(
            "only {} (who started run #{id}) or an operator may cancel it: send {{\"username\": ...}} or Authorization: Bearer <OPERATOR_TOKEN>",
            run.username
        )));
    };
    let run = super::request::cancel(&state, id, &by).await?;
    Ok(Json(run.into()))
}
