//! JSON API for checks: start one on a run's failed test, read it.

use axum::{extract::State, http::StatusCode};
use serde::Serialize;
use time::OffsetDateTime;

use super::start::CheckRequest;
use crate::{
    check_driver::plan,
    error::{AppResult, ErrorBody},
    state::AppState,
    store::{
        checks::{self, Check, CheckKind, CheckStatus, Step},
        RunStatus,
    },
    web::extract::{Json, Path},
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct CheckJson {
    pub id: i64,
    pub kind: CheckKind,
    pub nodeid: String,
    /// The run whose failure is checked.
    pub run_id: i64,
    pub environment_id: i32,
    pub username: String,
    /// A flakiness check's number of runs.
    pub times: Option<i32>,
    /// A bisect's candidates: the tests that ran before it, in their order.
    pub candidates: usize,
    pub status: CheckStatus,
    /// Why it ended without a verdict (`error`, `cancelled`).
    pub reason: Option<String>,
    /// flaky: `{verdict: broken|flaky|passing, runs, failed, rate, messages}`;
    /// bisect: `{verdict: found|fails_alone|not_found, runs, polluter?}`.
    #[schema(value_type = Option<Object>)]
    pub verdict: Option<serde_json::Value>,
    /// The verdict in a few words, once there is one.
    pub summary: Option<String>,
    /// How far it has come.
    pub progress: String,
    pub runs: Vec<StepJson>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
}

/// One of a check's runs.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StepJson {
    pub run_id: i64,
    pub status: RunStatus,
    /// The checked test's outcome in it, once it reported.
    pub outcome: Option<String>,
    pub message: Option<String>,
    /// The tests it ran (the checked one last).
    pub tests: usize,
}

impl CheckJson {
    pub fn new(check: Check, steps: Vec<Step>) -> CheckJson {
        let finished = steps.iter().filter(|s| !s.status.is_active()).count();
        let progress = plan::progress(&check, finished);
        let verdict = check.verdict.map(|v| v.0);
        CheckJson {
            progress,
            summary: verdict.as_ref().map(plan::summary),
            verdict,
            id: check.id,
            kind: check.kind,
            nodeid: check.nodeid,
            run_id: check.source_run_id,
            environment_id: check.environment_id.get(),
            username: check.username,
            times: check.times,
            candidates: check.candidates.len(),
            status: check.status,
            reason: check.reason,
            runs: steps
                .into_iter()
                .map(|s| StepJson {
                    run_id: s.run_id,
                    status: s.status,
                    outcome: s.outcome,
                    message: s.message,
                    tests: s.node_ids.map_or(0, |n| n.len()),
                })
                .collect(),
            created_at: check.created_at,
            finished_at: check.finished_at,
        }
    }

    pub async fn read(state: &AppState, id: i64) -> AppResult<CheckJson> {
        let check = checks::get(&state.db, id).await?;
        let steps = checks::steps(&state.db, id, &check.nodeid).await?;
        Ok(CheckJson::new(check, steps))
    }
}

/// Check a failed test for flakiness: it runs alone `times` times (default
/// 10, at most 50), one run at a time in fresh sandboxes of the run's
/// environment, on the same content.
#[utoipa::path(post, path = "/api/v1/runs/{id}/flaky-check", tag = "checks",
    params(("id" = i64, Path, description = "a finished run in which the test failed")),
    request_body = CheckRequest,
    responses(
        (status = 201, description = "the check, running", body = CheckJson),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run has not finished, the test did not fail in it, its files changed since, or the environment has a check running", body = ErrorBody),
        (status = 422, description = "times outside 1–50, or not a test of the run", body = ErrorBody),
        (status = 429, description = "the queue is full", body = ErrorBody),
    ))]
pub async fn flaky(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(asked): Json<CheckRequest>,
) -> AppResult<(StatusCode, Json<CheckJson>)> {
    let check = super::start::start(&state, CheckKind::Flaky, id, &asked).await?;
    Ok((
        StatusCode::CREATED,
        Json(CheckJson::read(&state, check.id).await?),
    ))
}

/// Find the test that makes a failed test fail: the test alone (it must
/// pass), then after halves of the tests that ran before it in the run, in
/// their order; at most ⌈log2 n⌉ + 2 runs.
#[utoipa::path(post, path = "/api/v1/runs/{id}/bisect", tag = "checks",
    params(("id" = i64, Path, description = "a finished run in which the test failed")),
    request_body = CheckRequest,
    responses(
        (status = 201, description = "the check, running", body = CheckJson),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run has not finished, the test did not fail in it or ran first, its files changed since, or the environment has a check running", body = ErrorBody),
        (status = 422, description = "not a test of the run", body = ErrorBody),
        (status = 429, description = "the queue is full", body = ErrorBody),
    ))]
pub async fn bisect(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(asked): Json<CheckRequest>,
) -> AppResult<(StatusCode, Json<CheckJson>)> {
    let check = super::start::start(&state, CheckKind::Bisect, id, &asked).await?;
    Ok((
        StatusCode::CREATED,
        Json(CheckJson::read(&state, check.id).await?),
    ))
}

/// A check: its runs so far and, once over, its verdict.
#[utoipa::path(get, path = "/api/v1/checks/{id}", tag = "checks",
    params(("id" = i64, Path, description = "the check's id")),
    responses((status = 200, body = CheckJson), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<i64>) -> AppResult<Json<CheckJson>> {
    Ok(Json(CheckJson::read(&state, id).await?))
}
