//! JSON API and downloads for test results.

use axum::{
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};

use super::{HistoryEntry, TestCase};
use crate::{
    error::{AppError, AppResult, ErrorBody},
    state::AppState,
    web::{
        self,
        extract::{Json, Path, Query},
    },
};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TestsQuery {
    /// failed, error, passed, skipped, xfailed or xpassed.
    pub outcome: Option<String>,
    /// failures (the default: failures first, then in the order they ran),
    /// duration, cpu or memory (the heaviest first).
    pub sort: Option<String>,
    pub offset: Option<i64>,
    pub limit: Option<i64>,
}

/// A run's tests.
#[utoipa::path(get, path = "/api/v1/runs/{id}/tests", tag = "results",
    params(("id" = i64, Path, description = "the run's id"), TestsQuery),
    responses((status = 200, body = [TestCase]), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn of_run(
    State(state): State<AppState>,
    Path(run_id): Path<i64>,
    Query(query): Query<TestsQuery>,
) -> AppResult<Json<Vec<TestCase>>> {
    crate::store::runs::get(&state.db, run_id).await?;
    let outcome = super::parse_outcome(query.outcome.as_deref())?;
    let order = super::TestOrder::parse(query.sort.as_deref())?;
    let tests = super::store::of_run(
        &state.db,
        run_id,
        outcome,
        order,
        query.offset.unwrap_or(0),
        query.limit.unwrap_or(1000),
    )
    .await?;
    Ok(Json(tests))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The test's pytest node id, e.g. `test_math.py::test_add` (required).
    pub nodeid: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct HistoryJson {
    pub nodeid: String,
    pub flaky: bool,
    pub history: Vec<HistoryEntry>,
}

/// One test's latest outcomes across runs, and whether it is flaky.
#[utoipa::path(get, path = "/api/v1/tests/history", tag = "results", params(HistoryQuery),
    responses((status = 200, body = HistoryJson), (status = 422, body = ErrorBody)))]
pub async fn history(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> AppResult<Json<HistoryJson>> {
    let nodeid = query
        .nodeid
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            AppError::Invalid("give the test's node id, e.g. ?nodeid=test_math.py::test_add".into())
        })?;
    let history = super::store::history(&state.db, &nodeid, 50).await?;
    Ok(Json(HistoryJson {
        flaky: super::is_flaky(&history),
        nodeid,
        history,
    }))
}

/// `/runs/{id}/junit.xml`: pytest's own JUnit report of the run, as an
/// inert attachment.
pub async fn junit(
    State(state): State<AppState>,
    Path(run_id): Path<String>,
) -> AppResult<Response> {
    let run_id: i64 = run_id
        .parse()
        .map_err(|_| AppError::NotFound(format!("no run {run_id:?}")))?;
    let xml = super::store::junit_xml(&state.db, run_id)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "run #{run_id} has no JUnit report (yet): it is written when pytest finishes"
            ))
        })?;
    // The report is written by the code under test: a download, never a page
    // of this origin (it may carry XHTML with a script in it).
    Ok((
        [(header::CONTENT_TYPE, "application/xml; charset=utf-8")],
        web::headers::attachment(&format!("run-{run_id}-junit.xml")),
        xml,
    )
        .into_response())
}
