//! Test results: each test case of a run, and a test's history across runs.

pub mod api;
pub mod views;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::{AppError, AppResult};

pub const OUTCOMES: [&str; 6] = ["failed", "error", "passed", "skipped", "xfailed", "xpassed"];

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct TestCase {
    pub nodeid: String,
    pub outcome: String,
    pub duration_ms: i32,
    pub message: Option<String>,
    #[serde(skip)]
    pub longrepr: Option<String>,
}

/// An outcome filter from a query string: empty means all.
pub fn parse_outcome(raw: Option<&str>) -> AppResult<Option<&'static str>> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => OUTCOMES
            .iter()
            .find(|o| **o == s)
            .map(|o| Some(*o))
            .ok_or_else(|| {
                AppError::Invalid(format!(
                    "unknown outcome {s:?}; use one of {}",
                    OUTCOMES.join(", ")
                ))
            }),
    }
}

/// One page of a run's tests: failures and errors first, then in the order
/// they ran.
pub async fn of_run(
    db: &PgPool,
    run_id: i64,
    outcome: Option<&str>,
    offset: i64,
    limit: i64,
) -> AppResult<Vec<TestCase>> {
    Ok(sqlx::query_as(
        "select nodeid, outcome, duration_ms, message, longrepr from run_tests
          where run_id = $1 and ($2::text is null or outcome = $2)
          order by outcome not in ('failed', 'error'), idx
          offset $3 limit $4",
    )
    .bind(run_id)
    .bind(outcome)
    .bind(offset.max(0))
    .bind(limit.clamp(1, 1000))
    .fetch_all(db)
    .await?)
}

/// The node ids of a run's failed and errored tests, in the order they ran
/// (at most `limit`).
pub async fn failed_node_ids(db: &PgPool, run_id: i64, limit: i64) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select nodeid from run_tests where run_id = $1 and outcome in ('failed', 'error')
          order by idx limit $2",
    )
    .bind(run_id)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// How many of a run's stored tests had each outcome (the filter tabs,
/// and the pages' count).
pub async fn outcome_counts(db: &PgPool, run_id: i64) -> AppResult<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as(
            "select outcome, count(*) from run_tests where run_id = $1 group by outcome",
        )
        .bind(run_id)
        .fetch_all(db)
        .await?,
    )
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HistoryEntry {
    pub run_id: i64,
    pub outcome: String,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    pub file_sha256: Option<String>,
}

/// How many of a test's latest runs decide whether it is flaky.
pub const FLAKY_WINDOW: usize = 10;

/// A test's latest outcomes, newest first, each with the content hash of
/// the file it came from in that run.
pub async fn history(db: &PgPool, nodeid: &str, limit: i64) -> AppResult<Vec<HistoryEntry>> {
    Ok(sqlx::query_as(
        "select t.run_id, t.outcome, r.finished_at,
                r.file_sha256[array_position(r.files, split_part(t.nodeid, '::', 1))] as file_sha256
           from run_tests t join runs r on r.id = t.run_id
          where md5(t.nodeid) = md5($1) and t.nodeid = $1
          order by t.run_id desc
          limit $2",
    )
    .bind(nodeid)
    .bind(limit.clamp(1, 500))
    .fetch_all(db)
    .await?)
}

/// Flaky: within its last runs, the test both passed and failed while its
/// file's content was the same.
pub fn is_flaky(history: &[HistoryEntry]) -> bool {
    let recent = &history[..history.len().min(FLAKY_WINDOW)];
    recent.iter().any(|a| {
        a.outcome == "passed"
            && recent.iter().any(|b| {
                matches!(b.outcome.as_str(), "failed" | "error") && a.file_sha256 == b.file_sha256
            })
    })
}

/// Which of these tests are flaky, in one query (for a page of results).
pub async fn flaky_among(db: &PgPool, nodeids: &[String]) -> AppResult<Vec<String>> {
    if nodeids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "select nodeid from (
            select t.nodeid, t.outcome,
                   r.file_sha256[array_position(r.files, split_part(t.nodeid, '::', 1))] as sha,
                   row_number() over (partition by t.nodeid order by t.run_id desc) as n
              from run_tests t join runs r on r.id = t.run_id
             where md5(t.nodeid) = any(array(select md5(n) from unnest($1::text[]) n))
               and t.nodeid = any($1)) recent
          where n <= $2
          group by nodeid, sha
         having bool_or(outcome = 'passed') and bool_or(outcome in ('failed', 'error'))",
    )
    .bind(nodeids)
    .bind(FLAKY_WINDOW as i64)
    .fetch_all(db)
    .await?)
}

pub async fn junit_xml(db: &PgPool, run_id: i64) -> AppResult<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("select junit_xml from runs where id = $1")
            .bind(run_id)
            .fetch_optional(db)
            .await?;
    row.ok_or_else(|| AppError::NotFound(format!("run #{run_id} does not exist")))
}

/// `/api/v1/runs/{id}/tests` and `/api/v1/tests/history`.
pub fn api_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/runs/{id}/tests", get(api::of_run))
        .route("/tests/history", get(api::history))
}

/// The OpenAPI paths of `api_routes` (`openapi.rs` merges them; a test
/// checks that every route above is there).
pub fn api_doc() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(api::of_run, api::history))]
    struct Doc;
    <Doc as utoipa::OpenApi>::openapi()
}

/// The tests fragment of a run, its JUnit XML and the history page.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/runs/{id}/fragments/tests", get(views::fragment))
        .route("/runs/{id}/junit.xml", get(api::junit))
        .route("/tests", get(views::history_page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(outcome: &str, sha: &str) -> HistoryEntry {
        HistoryEntry {
            run_id: 0,
            outcome: outcome.into(),
            finished_at: None,
            file_sha256: Some(sha.into()),
        }
    }

    #[test]
    fn passing_and_failing_with_the_same_file_is_flaky() {
        assert!(is_flaky(&[entry("passed", "a"), entry("failed", "a")]));
    }

    #[test]
    fn a_change_to_the_file_explains_the_difference() {
        assert!(!is_flaky(&[entry("passed", "b"), entry("failed", "a")]));
    }

    #[test]
    fn always_failing_is_not_flaky() {
        assert!(!is_flaky(&[
            entry("failed", "a"),
            entry("failed", "a"),
            entry("error", "a")
        ]));
    }

    #[test]
    fn only_the_last_ten_runs_count() {
        let mut history = vec![entry("passed", "a"); 10];
        history.push(entry("failed", "a"));
        assert!(!is_flaky(&history));
    }
}
