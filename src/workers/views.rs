//! The Workers section of `/environments`, and its drain button.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use tower_sessions::Session;

use crate::{
    error::AppError,
    state::AppState,
    store::workers,
    store::workers::Worker,
    web::{
        components::short_time,
        csrf::CsrfCookie,
        extract::{Form, Path},
        html_error::PageResult,
        session::{self, CsrfForm},
    },
};

/// Every worker: state, labels, slots in use, warm sandboxes, engine.
pub async fn section(state: &AppState, operator: bool, csrf: &str) -> Result<Markup, AppError> {
    let lost_after = super::lost_after(state).as_secs_f64();
    let list = workers::list(&state.db, lost_after).await?;
    Ok(html! {
        section #workers {
            h2 { "Workers" }
            @if list.is_empty() { p.muted { "No worker has registered: runs wait until one starts (test-executor serve or worker)." } }
            @else {
                div.overflow-auto { table.workers.cards {
                    thead { tr {
                        th { "Name" } th { "State" } th { "Labels" } th { "Running" } th { "Warm" }
                        th { "Engine" } th { "CPUs" } th { "Memory" } th { "Last seen" }
                        @if operator { th { "Drain" } }
                    } }
                    tbody { @for w in &list { (row(w, operator, csrf)) } }
                } }
            }
        }
    })
}

fn row(w: &Worker, operator: bool, csrf: &str) -> Markup {
    html! {
        tr #{ "worker-" (w.name) } {
            td.name { (w.name) }
            td.state data-label="State" { @if w.state == "online" { (w.state) } @else { strong { (w.state) } } }
            td data-label="Labels" { @if w.labels.is_empty() { span.muted { "none" } } @else { (w.labels.join(", ")) } }
            td.running data-label="Running" { (w.running) " of " (w.slots) }
            td data-label="Warm" { (w.warm_ready) }
            td data-label="Engine" { (w.engine) @if !w.engine_version.is_empty() { br; small.muted { "Docker " (w.engine_version) } } }
            td data-label="CPUs" { (w.cpus) }
            td data-label="Memory" { (w.memory_bytes / (1024 * 1024)) " MiB" }
            td data-label="Last seen" { (short_time(Some(w.last_seen))) }
            @if operator {
                td {
                    @if w.state == "online" {
                        form method="post" action={ "/workers/" (w.name) "/drain" } {
                            input type="hidden" name="_csrf" value=(csrf);
                            button.secondary type="submit" aria-label={ "Drain " (w.name) } { "Drain" }
                        }
                    } @else if w.state == "draining" {
                        form method="post" action={ "/workers/" (w.name) "/resume" } {
                            input type="hidden" name="_csrf" value=(csrf);
                            button.secondary type="submit" aria-label={ "Resume " (w.name) } { "Resume" }
                        }
                    }
                }
            }
        }
    }
}

/// The drain button: operators only, with the session's CSRF token.
pub async fn drain(
    state: State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    name: Path<String>,
    form: Form<CsrfForm>,
) -> PageResult<Response> {
    set_draining(state, (session, cookie), name, form, true).await
}

/// The resume button of a draining worker.
pub async fn resume(
    state: State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    name: Path<String>,
    form: Form<CsrfForm>,
) -> PageResult<Response> {
    set_draining(state, (session, cookie), name, form, false).await
}

async fn set_draining(
    State(state): State<AppState>,
    (session, cookie): (Session, CsrfCookie),
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
    draining: bool,
) -> PageResult<Response> {
    session::verify_operator_form(&session, &cookie, &form._csrf, "drain or resume workers")
        .await?;
    super::api::set_draining(&state, &name, draining).await?;
    Ok(Redirect::to("/environments#workers").into_response())
}
