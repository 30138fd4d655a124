//! The test table of a run page and the test-history page.

use axum::extract::State;
use maud::{html, Markup};
use serde::Deserialize;

use super::{TestCase, TestOrder, OUTCOMES};
use crate::{
    error::{AppError, AppResult},
    state::AppState,
    store::Run,
    web::{
        components::{outcome_badge, timestamp},
        csrf::CsrfCookie,
        extract::{Path, Query},
        html_error::PageResult,
        page::{page, Nav},
        session,
    },
};
use tower_sessions::Session;

const PAGE_SIZE: i64 = 100;

/// The run's tests, failures first, one page; polls while the run is active.
pub async fn section(
    state: &AppState,
    run: &Run,
    outcome: Option<&'static str>,
    order: TestOrder,
    page_no: i64,
    csrf: &str,
) -> AppResult<Markup> {
    let counts = super::store::outcome_counts(&state.db, run.id).await?;
    let total = match outcome {
        Some(o) => counts.iter().find(|(c, _)| c == o).map_or(0, |(_, n)| *n),
        None => counts.iter().map(|(_, n)| n).sum(),
    };
    let tests = super::store::of_run(
        &state.db,
        run.id,
        outcome,
        order,
        page_no * PAGE_SIZE,
        PAGE_SIZE,
    )
    .await?;
    let nodeids: Vec<String> = tests.iter().map(|t| t.nodeid.clone()).collect();
    let flaky = super::store::flaky_among(&state.db, &nodeids).await?;
    let active = run.status.is_active();
    let base = format!("/runs/{}/fragments/tests", run.id);
    let query = |o: Option<&str>, p: i64| {
        format!(
            "?outcome={}&sort={}&page={p}",
            o.unwrap_or(""),
            order.as_str()
        )
    };
    Ok(html! {
        section #run-tests
            hx-get=[active.then(|| format!("{base}{}", query(outcome, page_no)))]
            hx-trigger=[active.then_some("every 2s")]
            hx-swap=[active.then_some("outerHTML")] {
            h2 { "Tests" }
            nav.outcome-filter {
                @for (label, o, n) in tabs(&counts, outcome) {
                    a href={ "/runs/" (run.id) (query(o, 0)) "#run-tests" }
                        hx-get={ (base) (query(o, 0)) } hx-target="#run-tests" hx-swap="outerHTML"
                        aria-current=[(o == outcome).then_some("true")] { (label) " " span.n { (n) } }
                }
            }
            @if tests.is_empty() {
                p.muted { @if active { "No results yet." } @else { "No test results." } }
            } @else {
                div.overflow-auto { table.tests {
                    (table_head(run.id, outcome, order))
                    tbody { @for t in &tests { (test_row(run, t, flaky.contains(&t.nodeid), csrf)) } }
                } }
                @if total > PAGE_SIZE {
                    nav.pager {
                        @if page_no > 0 {
                            a href={ "/runs/" (run.id) (query(outcome, page_no - 1)) "#run-tests" } hx-get={ (base) (query(outcome, page_no - 1)) }
                              hx-target="#run-tests" hx-swap="outerHTML" { "← Previous" }
                        }
                        span.muted { "Page " (page_no + 1) " of " ((total + PAGE_SIZE - 1) / PAGE_SIZE) " · " (total) " tests" }
                        @if (page_no + 1) * PAGE_SIZE < total {
                            a href={ "/runs/" (run.id) (query(outcome, page_no + 1)) "#run-tests" } hx-get={ (base) (query(outcome, page_no + 1)) }
                              hx-target="#run-tests" hx-swap="outerHTML" { "Next →" }
                        }
                    }
                }
            }
        }
    })
}

/// The table's head: Test (failures first) and the heaviest-first sorts.
fn table_head(run_id: i64, outcome: Option<&str>, order: TestOrder) -> Markup {
    let base = format!("/runs/{run_id}/fragments/tests");
    let sorted = |by: TestOrder, label: &str| {
        let href = format!(
            "?outcome={}&sort={}&page=0",
            outcome.unwrap_or(""),
            by.as_str()
        );
        html! {
            a href={ "/runs/" (run_id) (href) "#run-tests" } hx-get={ (base) (href) }
              hx-target="#run-tests" hx-swap="outerHTML"
              aria-current=[(by == order).then_some("true")] { (label) }
        }
    };
    html! {
        thead { tr {
            th { (sorted(TestOrder::Failures, "Test")) }
            th { "Outcome" }
            th { (sorted(TestOrder::Duration, "Time")) }
            th { (sorted(TestOrder::Cpu, "CPU")) }
            th { (sorted(TestOrder::Memory, "Peak memory")) }
        } }
    }
}

/// The filter tabs with their counts: "all", then each outcome some test
/// had (and the one chosen, even when none has it).
fn tabs(
    counts: &[(String, i64)],
    chosen: Option<&'static str>,
) -> Vec<(&'static str, Option<&'static str>, i64)> {
    let all = counts.iter().map(|(_, n)| n).sum();
    let each = OUTCOMES.iter().map(|o| {
        let n = counts.iter().find(|(c, _)| c == o).map_or(0, |(_, n)| *n);
        (*o, Some(*o), n)
    });
    std::iter::once(("all", None, all))
        .chain(each.filter(|(_, o, n)| *n > 0 || *o == chosen))
        .collect()
}

fn test_row(run: &Run, t: &TestCase, flaky: bool, csrf: &str) -> Markup {
    let history = format!(
        "/tests?nodeid={}",
        form_urlencoded::byte_serialize(t.nodeid.as_bytes()).collect::<String>()
    );
    html! {
        tr {
            td.nodeid {
                a href=(history) title="History of this test" { code { (t.nodeid) } }
                @if flaky { " " a.badge.flaky href=(history) { "flaky" } }
                @if let Some(longrepr) = &t.longrepr {
                    details { summary { (t.message.as_deref().unwrap_or("details")) } pre.traceback { (longrepr) } }
                } @else if let Some(message) = &t.message { br; small.muted { (message) } }
                @if !run.status.is_active() && matches!(t.outcome.as_str(), "failed" | "error") {
                    (check_forms(run.id, &t.nodeid, csrf))
                }
            }
            td { (outcome_badge(&t.outcome)) }
            td.num { (t.duration_ms) " ms" }
            td.num { @if let Some(ms) = t.cpu_ms { (ms) " ms" } @else { "—" } }
            td.num { @if let Some(bytes) = t.peak_rss_bytes { (mib(bytes)) } @else { "—" } }
        }
    }
}

fn mib(bytes: i64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// "Check for flakiness" and "Find the polluting test" on a test that
/// failed in run `run_id` (the checks domain answers the posts).
fn check_forms(run_id: i64, nodeid: &str, csrf: &str) -> Markup {
    html! {
        div.check-actions {
            form method="post" action={ "/runs/" (run_id) "/flaky-check" } {
                input type="hidden" name="_csrf" value=(csrf);
                input type="hidden" name="nodeid" value=(nodeid);
                input type="number" name="times" value="10" min="1" max="50" aria-label="Runs";
                button.secondary.outline type="submit" title="Run it alone this many times, one at a time in fresh sandboxes, and count its failures" { "Check for flakiness" }
            }
            form method="post" action={ "/runs/" (run_id) "/bisect" } {
                input type="hidden" name="_csrf" value=(csrf);
                input type="hidden" name="nodeid" value=(nodeid);
                button.secondary.outline type="submit" title="If it passes alone: find which test that ran before it in this run makes it fail" { "Find the polluting test" }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct TestsQuery {
    pub outcome: Option<String>,
    pub sort: Option<String>,
    pub page: Option<i64>,
}

pub async fn fragment(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Query(query): Query<TestsQuery>,
) -> PageResult<Markup> {
    let run = crate::store::runs::get(&state.db, id).await?;
    let outcome = super::parse_outcome(query.outcome.as_deref())?;
    let order = TestOrder::parse(query.sort.as_deref())?;
    let csrf = session::csrf_token(&session, &cookie).await?;
    let page_no = query.page.unwrap_or(0).max(0);
    Ok(section(&state, &run, outcome, order, page_no, &csrf).await?)
}

#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    pub nodeid: Option<String>,
}

/// `/tests?nodeid=...`: the outcome strip and the runs of one test.
pub async fn history_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Query(query): Query<HistoryQuery>,
) -> PageResult<Markup> {
    let nodeid = query
        .nodeid
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| {
            AppError::Invalid("give a test's node id: /tests?nodeid=file.py::test_name".into())
        })?;
    let history = super::store::history(&state.db, &nodeid, 100).await?;
    let flaky = super::is_flaky(&history);
    let checks = checks_section(&state, &nodeid).await?;
    let csrf = session::csrf_token(&session, &cookie).await?;
    let last_failed = history
        .iter()
        .find(|h| matches!(h.outcome.as_str(), "failed" | "error"));
    Ok(page(
        "Test history",
        Nav::Other,
        html! {
            h1 { "Test history" }
            p { code { (nodeid) } @if flaky { " " span.badge.flaky { "flaky" } } }
            @if flaky {
                p.muted { "Flaky: in its last " (super::FLAKY_WINDOW) " runs it both passed and failed while its file was unchanged." }
            }
            @if let Some(failed) = last_failed {
                p { "Last failed in " a href={ "/runs/" (failed.run_id) } { "run #" (failed.run_id) } ": "
                    (check_forms(failed.run_id, &nodeid, &csrf)) }
            }
            (checks)
            @if history.is_empty() { p.muted { "This test has not run yet." } }
            @else {
                div.strip aria-label="Outcomes, newest first" {
                    @for h in &history {
                        a class={ "cell outcome-" (h.outcome) } href={ "/runs/" (h.run_id) } title={ "run #" (h.run_id) ": " (h.outcome) } {}
                    }
                }
                div.overflow-auto { table.history {
                    thead { tr { th { "Run" } th { "Outcome" } th { "Finished" } th { "File sha256" } } }
                    tbody {
                        @for h in &history {
                            tr {
                                td { a href={ "/runs/" (h.run_id) } { "#" (h.run_id) } }
                                td { (outcome_badge(&h.outcome)) }
                                td { (timestamp(h.finished_at)) }
                                td { @if let Some(sha) = &h.file_sha256 { code.sha title=(sha) { (sha.get(..12).unwrap_or(sha)) "…" } } }
                            }
                        }
                    }
                } }
            }
        },
    ))
}

/// A test's checks (flakiness, polluting test), newest first; polls while
/// one runs.
async fn checks_section(state: &AppState, nodeid: &str) -> AppResult<Markup> {
    let checks = crate::store::checks::of_test(&state.db, nodeid, 20).await?;
    let running = checks
        .iter()
        .any(|c| c.status == crate::store::checks::CheckStatus::Running);
    let url = format!(
        "/tests/fragments/checks?nodeid={}",
        form_urlencoded::byte_serialize(nodeid.as_bytes()).collect::<String>()
    );
    Ok(html! {
        section #test-checks
            hx-get=[running.then_some(url)]
            hx-trigger=[running.then_some("every 2s")]
            hx-swap=[running.then_some("outerHTML")] {
            @if !checks.is_empty() {
                h2 { "Checks" }
                table.checks {
                    thead { tr { th { "Check" } th { "Of run" } th { "Verdict" } th { "Started" } } }
                    tbody { @for c in &checks { tr {
                        td { a href={ "/checks/" (c.id) } { (check_kind(c.kind)) " #" (c.id) } }
                        td { a href={ "/runs/" (c.source_run_id) } { "#" (c.source_run_id) } }
                        td { (check_state(c)) }
                        td { (timestamp(Some(c.created_at))) }
                    } } }
                }
            }
        }
    })
}

fn check_kind(kind: crate::store::checks::CheckKind) -> &'static str {
    match kind {
        crate::store::checks::CheckKind::Flaky => "flakiness",
        crate::store::checks::CheckKind::Bisect => "polluting test",
    }
}

fn check_state(check: &crate::store::checks::Check) -> String {
    use crate::store::checks::CheckStatus;
    match (&check.verdict, check.status) {
        (Some(verdict), _) => crate::check_driver::plan::summary(&verdict.0),
        (None, CheckStatus::Running) => "running…".into(),
        (None, _) => check.reason.clone().unwrap_or_else(|| "ended".into()),
    }
}

/// `/tests/fragments/checks?nodeid=`: the checks section alone (polling).
pub async fn checks_fragment(
    State(state): State<AppState>,
    Query(query): Query<HistoryQuery>,
) -> PageResult<Markup> {
    let nodeid = query.nodeid.unwrap_or_default();
    Ok(checks_section(&state, &nodeid).await?)
}
