//! JSON API for runs.

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::request::RunRequest;
use crate::store::{runs::RunFilter, Run, RunStatus, Summary};
use crate::{
    environment_id::EnvironmentId,
    error::{AppError, AppResult, ErrorBody},
    logs::{self, LogLine},
    operators,
    state::AppState,
    web::extract::{optional_json, Json, Path, Query},
};

#[derive(Serialize, utoipa::ToSchema)]
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
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    pub timings_ms: serde_json::Map<String, serde_json::Value>,
    /// The project whose tree went with the run (`null`: files outside any).
    pub project: Option<String>,
    /// sha256 of that tree as sent (as hashed at creation until it starts).
    pub tree_sha256: Option<String>,
    /// The tree a client sent that the files came from (`GET /api/v1/trees/{id}`
    /// says who sent it; `/tar` downloads it); `null`: the server's tests folder.
    pub tree_id: Option<String>,
    /// The image of the run's container, once it has started.
    pub image: Option<String>,
    /// The worker that executes (executed) the run, once claimed.
    pub worker: Option<String>,
    /// Peak memory, CPU-seconds and peak pids as sampled (`null` until sampled).
    pub resources: crate::store::resources::Resources,
    /// The tests it runs (pytest node ids within `files`); `null`: all.
    pub node_ids: Option<Vec<String>>,
    /// The run whose failed tests this one runs again.
    pub rerun_of: Option<i64>,
    /// The check (`/api/v1/checks/{id}`) this run is a step of.
    pub check_id: Option<i64>,
    /// A sharded run: how many shards it has (`GET /api/v1/runs/{id}/shards`).
    pub shards: Option<i32>,
    /// A shard: the sharded run it is part of, and its number (from 1).
    pub shard_of: Option<i64>,
    pub shard_index: Option<i32>,
}

#[derive(Serialize, utoipa::ToSchema)]
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
            tree_id: run.tree_id,
            image: run.image,
            worker: run.worker_name,
            resources: run.resources,
            node_ids: run.node_ids,
            rerun_of: run.rerun_of,
            check_id: run.check_id,
            shards: run.shards,
            shard_of: run.shard_of,
            shard_index: run.shard_index,
        }
    }
}

/// Queues a run of the files on an environment. The environment is taken
/// at once, or (with `queue_if_busy`) the run waits in line for it.
#[utoipa::path(post, path = "/api/v1/runs", tag = "runs",
    request_body = RunRequest,
    responses(
        (status = 201, description = "the run, queued", body = RunJson),
        (status = 409, description = "the environment is busy: the holder is named", body = ErrorBody),
        (status = 415, description = "the body is not JSON", body = ErrorBody),
        (status = 422, description = "an invalid field", body = ErrorBody),
        (status = 429, description = "a queue cap is reached (MAX_QUEUED_PER_USER or MAX_QUEUED): the cap and the runs waiting are named; nothing is written", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Json(request): Json<RunRequest>,
) -> AppResult<(StatusCode, Json<RunJson>)> {
    let run = super::request::submit(&state, &request).await?;
    Ok((StatusCode::CREATED, Json(run.into())))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// queued, running, success, failed, error, cancelled or timed_out.
    pub status: Option<String>,
    pub username: Option<String>,
    /// 1–100.
    pub environment_id: Option<String>,
    /// Most runs returned (default 50).
    pub limit: Option<i64>,
    /// Only runs with a smaller id (the next page).
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

/// Runs, newest first, filtered and paged by id.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(ListQuery),
    responses((status = 200, body = [RunJson]), (status = 422, description = "invalid parameters", body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> AppResult<Json<Vec<RunJson>>> {
    let runs = crate::store::runs::list(&state.db, &query.filter(50)?).await?;
    Ok(Json(runs.into_iter().map(RunJson::from).collect()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunQuery {
    /// Seconds (0–60, fractions allowed) to hold the answer while the run is
    /// queued or running: it comes as soon as the run ends, or as the run is
    /// when the time is up. Instead of polling for the verdict. While 256
    /// requests wait already, or the server is stopping, the answer comes
    /// at once.
    pub wait: Option<f64>,
}

/// Longest `wait` a request may hold.
const MAX_WAIT_SECS: f64 = 60.0;

/// One run, with its test counts, current test and timings.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs",
    params(("id" = i64, Path, description = "the run's id"), RunQuery),
    responses((status = 200, body = RunJson), (status = 404, body = ErrorBody),
        (status = 422, description = "invalid parameters", body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<RunQuery>,
) -> AppResult<Json<RunJson>> {
    let wait = match query.wait {
        None => Duration::ZERO,
        Some(secs) if (0.0..=MAX_WAIT_SECS).contains(&secs) => Duration::from_secs_f64(secs),
        Some(secs) => {
            return Err(AppError::Invalid(format!(
                "wait must be between 0 and {MAX_WAIT_SECS} seconds, not {secs}"
            )))
        }
    };
    // No waiter (no wait asked, too many waiting, stopping): answer now.
    let mut waiter = state.finals.waiter(id, wait);
    loop {
        let run = super::get_placed(&state, id).await?;
        let again = match &mut waiter {
            Some(waiter) if run.status.is_active() => waiter.next().await,
            _ => false,
        };
        if !again {
            return Ok(Json(run.into()));
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only lines with a greater `seq` (what the reader has already).
    pub after: Option<i32>,
    /// Only lines before this `seq` (earlier pages), in ascending order.
    pub before: Option<i32>,
    /// Only lines containing this text (any case); with `after`/`before`, the
    /// hits after / nearest below that `seq`.
    pub q: Option<String>,
    /// `stdout` or `stderr`: only that stream's lines.
    pub stream: Option<String>,
    /// Most lines returned: 1–5000 (1–1000 with `q`); 5000 by default.
    pub limit: Option<i64>,
}

/// A run's log lines, in ascending order: after a sequence number (the
/// tail), before one (earlier pages), or those containing `q` (between
/// `after` and `before` when given; with `before`, the hits nearest it).
#[utoipa::path(get, path = "/api/v1/runs/{id}/logs", tag = "runs",
    params(("id" = i64, Path, description = "the run's id"), LogsQuery),
    responses((status = 200, body = [LogLine]), (status = 404, body = ErrorBody), (status = 422, description = "invalid parameters", body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<LogsQuery>,
) -> AppResult<Json<Vec<LogLine>>> {
    let stream = logs::StreamFilter::parse(query.stream.as_deref())?;
    if let Some(text) = query.q.as_deref() {
        logs::Search::check(text)?;
    }
    let limit = if query.q.is_some() {
        logs::page_size(query.limit, 100, logs::MAX_SEARCH_HITS)?
    } else {
        logs::page_size(query.limit, logs::MAX_PAGE, logs::MAX_PAGE)?
    };
    crate::store::runs::get(&state.db, id).await?;
    let lines = match (&query.q, query.after, query.before) {
        (Some(text), after, before) => {
            let search = logs::Search {
                text,
                stream,
                after,
                before,
                limit,
            };
            logs::search(&state.db, id, &search).await?
        }
        (None, Some(_), Some(_)) => return Err(AppError::Invalid(
            "give after= (lines after a sequence number) or before= (lines before one), not both"
                .into(),
        )),
        (None, None, Some(before)) => logs::before(&state.db, id, before, limit, stream).await?,
        (None, after, None) => logs::after_in(&state.db, id, after, limit, stream).await?,
    };
    Ok(Json(lines))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct CancelRequest {
    /// The user who started the run (not needed with the operator token).
    pub username: Option<String>,
}

/// Cancels a run: its own user (named in the body) or an operator (with
/// the bearer token) may.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs",
    params(("id" = i64, Path, description = "the run's id")),
    request_body(content = CancelRequest, description = "optional (an operator sends none): who cancels"),
    security((), ("operator_token" = [])),
    responses(
        (status = 200, description = "the run, cancelled (or still ending)", body = RunJson),
        (status = 403, description = "neither the run's user nor an operator", body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "the run has already finished", body = ErrorBody),
    ))]
pub async fn cancel(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> AppResult<Json<RunJson>> {
    let operator = operators::is_operator(&headers, None, &state).await?;
    let run = crate::store::runs::get(&state.db, id).await?;
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
