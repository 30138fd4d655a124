//! Test results: each test case of a run, and a test's history across runs.

pub mod api;
pub mod store;
pub mod views;

use serde::Serialize;
use time::OffsetDateTime;
use utoipa_axum::{router::OpenApiRouter, routes};

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
    /// CPU time and peak resident memory of the pytest process during the
    /// test (`null` when the runner sent none).
    pub cpu_ms: Option<i32>,
    pub peak_rss_bytes: Option<i64>,
}

/// How a run's tests are listed: failures first (in the order they ran),
/// or the heaviest first by time, CPU or peak memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TestOrder {
    #[default]
    Failures,
    Duration,
    Cpu,
    Memory,
}

impl TestOrder {
    pub const ALL: [TestOrder; 4] = [
        TestOrder::Failures,
        TestOrder::Duration,
        TestOrder::Cpu,
        TestOrder::Memory,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TestOrder::Failures => "failures",
            TestOrder::Duration => "duration",
            TestOrder::Cpu => "cpu",
            TestOrder::Memory => "memory",
        }
    }

    /// From a query string: empty means failures first.
    pub fn parse(raw: Option<&str>) -> AppResult<TestOrder> {
        match raw.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(TestOrder::Failures),
            Some(s) => TestOrder::ALL
                .into_iter()
                .find(|o| o.as_str() == s)
                .ok_or_else(|| {
                    AppError::Invalid(format!(
                        "unknown sort {s:?}; use failures, duration, cpu or memory"
                    ))
                }),
        }
    }
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

/// `/api/v1/runs/{id}/tests` and `/api/v1/tests/history`, each route with
/// its OpenAPI operation.
pub fn api_routes() -> OpenApiRouter<crate::state::AppState> {
    OpenApiRouter::new()
        .routes(routes!(api::of_run))
        .routes(routes!(api::history))
}

/// The tests fragment of a run, its JUnit XML and the history page.
pub fn page_routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::get;
    axum::Router::new()
        .route("/runs/{id}/fragments/tests", get(views::fragment))
        .route("/runs/{id}/junit.xml", get(api::junit))
        .route("/tests", get(views::history_page))
        .route("/tests/fragments/checks", get(views::checks_fragment))
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
