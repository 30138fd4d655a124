//! The run page (`/runs/{id}`): what was asked, how it is going, the logs
//! and the tests. The status panel and the log tail poll while the run is
//! active and stop by themselves once it is over.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use tower_sessions::Session;

use super::components::{counts, run_duration, status_badge};
use super::log_view::LogView;
use crate::store::{stacks::Stacks, Run, RunStatus};
use crate::{
    dependencies::store::DependencyImage,
    error::AppError,
    results,
    state::AppState,
    web::{
        components::{duration, timestamp},
        csrf::CsrfCookie,
        extract::{Form, Path, Query},
        html_error::PageResult,
        page::{page, Nav},
        session::{self, CsrfForm},
    },
};

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Query(view): Query<LogView>,
) -> PageResult<Markup> {
    let run = super::get_placed(&state, id).await?;
    let csrf = session::csrf_token(&session, &cookie).await?;
    let me = session::username(&session).await?;
    let build = super::build_panel::of(&state, &run).await?;
    let logs = super::log_view::section(&state, &run, &view).await?;
    let tests =
        results::views::section(&state, &run, None, results::TestOrder::Failures, 0, &csrf).await?;
    let samples = crate::store::resources::samples(&state.db, id, None).await?;
    let reruns = crate::store::runs::reruns_of(&state.db, id).await?;
    let tree = match &run.tree_id {
        Some(tree) => crate::trees::store::get(&state.db, tree).await?,
        None => None,
    };
    let stacks = super::hang_view::of(&state, &run).await?;
    let shards = super::shards_view::of(&state, &run).await?;
    let panel = Panel {
        build: build.as_ref(),
        stacks: stacks.as_ref(),
        shards: shards.as_ref(),
        csrf: &csrf,
        me: me.as_deref(),
    };
    Ok(page(
        &format!("Run #{id}"),
        Nav::Other,
        html! {
            (status_panel(&run, &panel))
            (facts(&run, &reruns, tree.as_ref()))
            (super::chart::section(&run, &samples))
            (logs)
            (tests)
        },
    ))
}

fn actions(run: &Run, csrf: &str, me: Option<&str>) -> Markup {
    html! {
        @if run.status.is_active() {
            form method="post" action={ "/runs/" (run.id) "/cancel" } {
                input type="hidden" name="_csrf" value=(csrf);
                button.secondary type="submit" { "Cancel run" }
            }
            @if run.status == RunStatus::Running && run.shards.is_none() { (super::hang_view::ask_button(run, csrf)) }
        } @else {
            // Offered once the run is over: while it runs, its environment
            // is taken and a second run would only be refused or queued.
            form method="post" action="/runs" {
                input type="hidden" name="_csrf" value=(csrf);
                input type="hidden" name="username" value=(me.unwrap_or(&run.username));
                input type="hidden" name="environment_id" value=(run.environment_id);
                @for f in &run.files { input type="hidden" name="files" value=(f); }
                @if let Some(tree) = &run.tree_id { input type="hidden" name="tree_id" value=(tree); }
                @if let Some(n) = run.shards { input type="hidden" name="shards" value=(n); }
                button type="submit" { "Run again" }
            }
            @if run.summary.failed + run.summary.errors > 0 {
                form method="post" action={ "/runs/" (run.id) "/rerun-failed" } {
                    input type="hidden" name="_csrf" value=(csrf);
                    button.secondary type="submit" title="A run of only the failed and errored tests, on the same files (refused if they changed since)" { "Rerun failed tests" }
                }
            }
        }
        a role="button" class="outline" href={ "/runs/new?from=" (run.id) } { "Edit and run" }
    }
}

/// What the status panel shows beside the run itself.
pub struct Panel<'a> {
    pub build: Option<&'a DependencyImage>,
    /// Where it hung, or was when asked (`hang_view::of`).
    pub stacks: Option<&'a Stacks>,
    /// A sharded run's shards (`shards_view::of`).
    pub shards: Option<&'a super::shards_view::Shards>,
    pub csrf: &'a str,
    pub me: Option<&'a str>,
}

/// Title, actions, status, reason, progress, where it is (when asked or
/// timed out) and timings; polls itself while the run is active.
pub fn status_panel(run: &Run, panel: &Panel) -> Markup {
    let Panel {
        build,
        stacks,
        shards,
        csrf,
        me,
    } = *panel;
    let active = run.status.is_active();
    let done = run.summary.done();
    html! {
        section #run-status.status-panel
            hx-get=[active.then(|| format!("/runs/{}/fragments/status", run.id))]
            hx-trigger=[active.then_some("every 1s")]
            hx-swap=[active.then_some("outerHTML")] {
            div.page-head {
                h1 { "Run #" (run.id) }
                div.actions { (actions(run, csrf, me)) }
            }
            p.reason {
                (status_badge(run.status)) " "
                @if let Some(waiting) = run.waiting_for() { (waiting) }
                @else if let Some(reason) = &run.reason { (reason) }
            }
            @if let Some(collected) = run.summary.collected.filter(|c| *c > 0) {
                (progress(run, done, collected))
            }
            @if run.status == RunStatus::Running {
                @if let Some(test) = &run.current_test { p.current { "Now running " code { (test) } } }
            }
            @if let Some(build) = build { (super::build_panel::panel(run, build, csrf)) }
            @if let Some(stacks) = stacks { (super::hang_view::section(stacks)) }
            @if let Some(shards) = shards { (super::shards_view::section(shards)) }
            dl.timings {
                div { dt { "Queued" } dd { (timestamp(Some(run.created_at))) } }
                div { dt { "Started" } dd { (timestamp(run.started_at)) } }
                div { dt { "Finished" } dd { (timestamp(run.finished_at)) } }
                div { dt { "Duration" } dd { (run_duration(run.started_at, run.finished_at)) } }
                div { dt { "Exit code" } dd { @if let Some(c) = run.exit_code { (c) } @else { "—" } } }
                div #run-report { dt { "Report" } dd { (report(run)) } }
            }
            @if !run.phases().is_empty() {
                p.phases.muted {
                    @for (i, (name, d)) in run.phases().iter().enumerate() {
                        @if i > 0 { " · " }
                        (name) " " (duration(*d))
                    }
                    @if let Some(warm) = run.warm { " · " @if warm { "warm sandbox" } @else { "fresh sandbox" } }
                    @if let Some(image) = &run.image { " · image " code.image { (image) } }
                    @if let Some(worker) = &run.worker_name { " · worker " code.worker { (worker) } }
                }
            }
        }
    }
}

fn progress(run: &Run, done: i32, collected: i32) -> Markup {
    let pct = |n: i32| f64::from(n) * 100.0 / f64::from(collected.max(done).max(1));
    html! {
        div.progress role="progressbar" aria-valuemin="0" aria-valuemax=(collected) aria-valuenow=(done)
            aria-label="Tests done" {
            @for (n, class) in [(run.summary.passed, "passed"), (run.summary.xfailed, "xfailed"), (run.summary.skipped, "skipped"),
                                (run.summary.xpassed, "xpassed"), (run.summary.failed, "failed"), (run.summary.errors, "error")] {
                @if n > 0 { span class={ "bar-" (class) } style={ "width:" (format!("{:.2}", pct(n))) "%" } {} }
            }
        }
        p.progress-text {
            (done) " / " (collected) " tests"
            @if done > 0 { " · " (counts(&run.summary)) }
        }
    }
}

/// The JUnit link once a report is kept; until then, or without one, why.
/// In the status panel, so the live page swaps the link in at the end.
fn report(run: &Run) -> Markup {
    let why = match run.status {
        _ if run.has_junit => None,
        RunStatus::Queued | RunStatus::Running => Some("JUnit XML when the run finishes"),
        RunStatus::Cancelled => Some("none: the run was cancelled before pytest wrote one"),
        RunStatus::TimedOut => Some("none: the run hit its time limit before pytest wrote one"),
        _ if run
            .reason
            .as_deref()
            .is_some_and(|r| r.starts_with("killed")) =>
        {
            Some("none: the run was killed before pytest wrote one")
        }
        RunStatus::Error => Some("none: pytest did not get to write one (the reason says why)"),
        _ => Some("none kept (the log says why)"),
    };
    html! {
        @match why {
            None => a href={ "/runs/" (run.id) "/junit.xml" } { "JUnit XML" },
            Some(why) => span.muted { (why) },
        }
    }
}

fn facts(run: &Run, reruns: &[i64], tree: Option<&crate::trees::Tree>) -> Markup {
    let l = &run.limits;
    html! {
        article.facts {
            dl {
                div { dt { "User" } dd { (run.username) } }
                div { dt { "Environment" } dd { (run.environment_id) } }
                div { dt { "Project" } dd {
                    @if let Some(project) = &run.project { a href="/projects" { (project) } }
                    @else { span.muted { "none" } }
                } }
                div { dt { "Files from" } dd.source { (super::components::source(run, tree)) } }
                @if let Some(sha) = &run.tree_sha256 {
                    div { dt { "Tree sha256" } dd { code.sha title=(sha) { (sha.get(..12).unwrap_or(sha)) "…" } } }
                }

                @if let Some(part) = super::shards_view::part_of(run) { (part) }
                @if let Some(check) = run.check_id {
                    div { dt { "Part of" } dd { a href={ "/checks/" (check) } { "check #" (check) } } }
                }
                @if let Some(of) = run.rerun_of {
                    div { dt { "Rerun of" } dd { a href={ "/runs/" (of) } { "#" (of) } " (its failed tests)" } }
                }
                @if !reruns.is_empty() {
                    div { dt { "Failed tests rerun in" } dd {
                        @for (i, rerun) in reruns.iter().enumerate() {
                            @if i > 0 { ", " }
                            a href={ "/runs/" (rerun) } { "#" (rerun) }
                        }
                    } }
                }
                div { dt { "Limits" } dd { (l.cpus()) " CPU · " (l.memory_mb) " MiB · " (l.pids_limit) " processes · " (l.timeout_secs) " s" } }
            }
            details {
                summary { (run.files.len()) " file" @if run.files.len() != 1 { "s" } }
                div.overflow-auto { table.files-table {
                    thead { tr { th { "File" } th { "sha256 at creation" } } }
                    tbody {
                        @for (file, sha) in run.files.iter().zip(&run.file_sha256) {
                            tr { td { code { (file) } } td { code.sha title=(sha) { (sha.get(..12).unwrap_or(sha)) "…" } } }
                        }
                    }
                } }
            }
            @if let Some(ids) = &run.node_ids {
                details.node-ids {
                    summary { "Only " (ids.len()) " test" @if ids.len() != 1 { "s" } " of these files" }
                    ul { @for id in ids { li { code { (id) } } } }
                }
            }
        }
    }
}

pub async fn status_fragment(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
) -> PageResult<Markup> {
    let run = super::get_placed(&state, id).await?;
    let csrf = session::csrf_token(&session, &cookie).await?;
    let me = session::username(&session).await?;
    let build = super::build_panel::of(&state, &run).await?;
    let stacks = super::hang_view::of(&state, &run).await?;
    let shards = super::shards_view::of(&state, &run).await?;
    let panel = Panel {
        build: build.as_ref(),
        stacks: stacks.as_ref(),
        shards: shards.as_ref(),
        csrf: &csrf,
        me: me.as_deref(),
    };
    Ok(status_panel(&run, &panel))
}

/// Cancels from the page: the run's own user (as remembered by this
/// browser) or an operator.
pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    let run = crate::store::runs::get(&state.db, id).await?;
    let me = session::username(&session).await?;
    let operator = session::is_operator(&session).await?;
    if !operator && me.as_deref() != Some(run.username.as_str()) {
        return Err(AppError::Forbidden(format!(
            "only {} (who started run #{id}) or an operator may cancel it",
            run.username
        ))
        .into());
    }
    let by = if operator {
        "an operator".to_string()
    } else {
        run.username.clone()
    };
    match super::request::cancel(&state, id, &by).await {
        Ok(_) | Err(AppError::Conflict(_)) => {
            Ok(Redirect::to(&format!("/runs/{id}")).into_response())
        }
        Err(other) => Err(other.into()),
    }
}
