//! A check's page (`/checks/{id}`, live while it runs) and the forms that
//! start one from a run's Tests table or a test's history page.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Deserialize;
use tower_sessions::Session;

use super::{api::CheckJson, start::CheckRequest};
use crate::{
    state::AppState,
    store::checks::{CheckKind, CheckStatus},
    web::{
        components::{outcome_badge, timestamp},
        csrf::CsrfCookie,
        extract::{Form, Path},
        html_error::PageResult,
        page::{page, Nav},
        session,
    },
};

pub async fn show(State(state): State<AppState>, Path(id): Path<i64>) -> PageResult<Markup> {
    let check = CheckJson::read(&state, id).await?;
    Ok(page(&format!("Check #{id}"), Nav::Other, section(&check)))
}

pub async fn fragment(State(state): State<AppState>, Path(id): Path<i64>) -> PageResult<Markup> {
    Ok(section(&CheckJson::read(&state, id).await?))
}

fn title(kind: CheckKind) -> &'static str {
    match kind {
        CheckKind::Flaky => "Flakiness check",
        CheckKind::Bisect => "Polluting test search",
    }
}

/// The whole check; polls itself while it runs.
fn section(check: &CheckJson) -> Markup {
    let running = check.status == CheckStatus::Running;
    let history = format!(
        "/tests?nodeid={}",
        form_urlencoded::byte_serialize(check.nodeid.as_bytes()).collect::<String>()
    );
    html! {
        section #check
            hx-get=[running.then(|| format!("/checks/{}/fragments/status", check.id))]
            hx-trigger=[running.then_some("every 1s")]
            hx-swap=[running.then_some("outerHTML")] {
            h1 { (title(check.kind)) " #" (check.id) }
            p { a href=(history) { code { (check.nodeid) } } " failed in "
                a href={ "/runs/" (check.run_id) } { "run #" (check.run_id) }
                " · environment " (check.environment_id) " · " (check.username) }
            p.verdict {
                span class={ "badge check-" (status_name(check.status)) } { (status_name(check.status)) } " "
                @if let Some(summary) = &check.summary { strong { (summary) } }
                @else if let Some(reason) = &check.reason { (reason) }
                @else { (check.progress) }
            }
            @if let Some(messages) = check.verdict.as_ref().and_then(|v| v["messages"].as_array()).filter(|m| !m.is_empty()) {
                h2 { "Failure messages" }
                ul.messages { @for m in messages { li { pre { (m.as_str().unwrap_or_default()) } } } }
            }
            @if !check.runs.is_empty() {
                table.check-runs {
                    thead { tr { th { "Run" } th { "Tests" } th { "Status" } th { "The test" } } }
                    tbody { @for r in &check.runs {
                        tr {
                            td { a href={ "/runs/" (r.run_id) } { "#" (r.run_id) } }
                            td.num { (r.tests) }
                            td { (r.status.label()) }
                            td { @if let Some(o) = &r.outcome { (outcome_badge(o)) } @else { "—" }
                                 @if let Some(m) = &r.message { " " small.muted { (m) } } }
                        }
                    } }
                }
            }
            p.muted { "Started " (timestamp(Some(check.created_at)))
                @if check.finished_at.is_some() { " · finished " (timestamp(check.finished_at)) } }
        }
    }
}

pub fn status_name(status: CheckStatus) -> &'static str {
    match status {
        CheckStatus::Running => "running",
        CheckStatus::Done => "done",
        CheckStatus::Error => "error",
        CheckStatus::Cancelled => "cancelled",
    }
}

/// The pages' form: the test, and for a flakiness check how many runs.
#[derive(Debug, Deserialize)]
pub struct CheckForm {
    pub _csrf: String,
    pub nodeid: String,
    pub times: Option<i32>,
}

async fn start_from_page(
    state: &AppState,
    session: &Session,
    cookie: &CsrfCookie,
    kind: CheckKind,
    run_id: i64,
    form: CheckForm,
) -> PageResult<Response> {
    session::verify_csrf(session, cookie, &form._csrf).await?;
    let asked = CheckRequest {
        nodeid: form.nodeid,
        times: form.times,
        username: session::username(session).await?,
    };
    let check = super::start::start(state, kind, run_id, &asked).await?;
    Ok(Redirect::to(&format!("/checks/{}", check.id)).into_response())
}

/// "Check for flakiness" on a failed test.
pub async fn flaky_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Form(form): Form<CheckForm>,
) -> PageResult<Response> {
    start_from_page(&state, &session, &cookie, CheckKind::Flaky, id, form).await
}

/// "Find the polluting test" on a failed test.
pub async fn bisect_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Form(form): Form<CheckForm>,
) -> PageResult<Response> {
    start_from_page(&state, &session, &cookie, CheckKind::Bisect, id, form).await
}
