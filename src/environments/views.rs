//! `/environments`: the operator view — every environment's limits, who
//! holds it and since when, live usage, what the host has, and (for
//! operators) forms to create, change, disable and delete environments.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Deserialize;
use tower_sessions::Session;

use super::{changes, host, needs, storage, usage, Environment, EnvironmentId};
use crate::{
    error::AppError,
    operators::DISABLED,
    state::AppState,
    web::{
        components::{duration, short_time},
        csrf::CsrfCookie,
        extract::{Form, Path},
        html_error::PageResult,
        page::{page, Nav},
        session::{self, CsrfForm},
    },
};

pub async fn index(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
) -> PageResult<Markup> {
    render(&state, &session, &cookie, None).await
}

async fn render(
    state: &AppState,
    session: &Session,
    cookie: &CsrfCookie,
    flash: Option<&str>,
) -> PageResult<Markup> {
    let envs = super::list(&state.db).await?;
    let operator = session::is_operator(session).await?;
    let csrf = session::csrf_token(session, cookie).await?;
    let host = host::describe(state, &envs).await;
    let workers = crate::workers::views::section(state, operator, &csrf).await?;
    let storage = storage::card(&state.db, state.config.retention_days).await;
    let needs = needs::section(state, &envs).await?;
    Ok(page(
        "Environments",
        Nav::Environments,
        html! {
            div.page-head {
                h1 { "Environments" }
                div.actions {
                    @if operator { span.muted { "Signed in as operator · " } a href="/operator" { "Sign out" } }
                    @else if state.config.operator_token.is_some() { a role="button" class="outline" href="/operator" { "Operator sign-in" } }
                }
            }
            @if state.config.operator_token.is_none() { article.warning { p { (DISABLED) "." } } }
            @if let Some(message) = flash { article.warning role="alert" { p { (message) } } }
            (host)
            (workers)
            section {
                h2 { "Live usage" }
                div #usage hx-get="/environments/fragments/usage" hx-trigger="load, every 3s" hx-swap="innerHTML" {
                    p.muted { "Loading… (needs JavaScript; the same figures are at " a href="/api/v1/environments/usage" { "/api/v1/environments/usage" } ")" }
                }
            }
            (needs)
            section {
                h2 { "Limits" }
                div.overflow-auto { table.env-table {
                    thead { tr {
                        th { "Env" } th { "CPUs" } th { "Memory" } th { "Processes" } th { "Time limit" }
                        th { "State" } th { "Held by" } @if operator { th { "Change" } }
                    } }
                    tbody { @for env in &envs { (row(env, operator, &csrf)) } }
                } }
            }
            section {
                h2 { "Storage" }
                (storage)
            }
            @if operator { (create_form(&envs, &csrf)) }
        },
    ))
}

fn row(env: &Environment, operator: bool, csrf: &str) -> Markup {
    let l = &env.limits;
    html! {
        tr #{ "env-" (env.id) } {
            td { (env.id) }
            td.cpus { (l.cpus()) }
            td.memory { (l.memory_mb) " MiB" }
            td { (l.pids_limit) }
            td.timeout { (l.timeout_secs) " s" }
            td {
                @if env.enabled { "enabled" } @else { strong { "disabled" } }
                @if !env.required_labels.is_empty() { br; small.muted.labels { "needs " (env.required_labels.join(", ")) } }
            }
            td {
                @if let (Some(run), Some(user)) = (env.busy_run_id, &env.busy_username) {
                    a href={ "/runs/" (run) } { "#" (run) } " " (user)
                    @if let Some(since) = env.busy_since {
                        " · since " (short_time(Some(since))) " (" (duration(time::OffsetDateTime::now_utc() - since)) ")"
                    }
                    @if env.waiting > 0 { br; small.muted { (env.waiting) " waiting" } }
                } @else { span.muted { "free" } }
            }
            @if operator {
                td { details.edit {
                    summary { "Edit" }
                    form method="post" action={ "/environments/" (env.id) } {
                        input type="hidden" name="_csrf" value=(csrf);
                        (limit_fields(Some(env)))
                        label { input type="checkbox" name="enabled" role="switch" checked[env.enabled]; "Enabled" }
                        button type="submit" { "Save" }
                    }
                    form method="post" action={ "/environments/" (env.id) "/delete" } {
                        input type="hidden" name="_csrf" value=(csrf);
                        button.secondary type="submit" { "Delete environment " (env.id) }
                    }
                } }
            }
        }
    }
}

fn limit_fields(env: Option<&Environment>) -> Markup {
    let l = env.map_or(changes::DEFAULT_LIMITS, |e| e.limits);
    let labels = env
        .map(|e| e.required_labels.join(", "))
        .unwrap_or_default();
    html! {
        div.grid {
            label { "CPUs" input type="number" name="cpus" step="0.01" min="0.01" value=(l.cpus()) required; }
            label { "Memory (MiB)" input type="number" name="memory_mb" min="16" value=(l.memory_mb) required; }
            label { "Processes" input type="number" name="pids_limit" min="8" value=(l.pids_limit) required; }
            label { "Time limit (s)" input type="number" name="timeout_secs" min="1" value=(l.timeout_secs) required; }
        }
        label {
            "Required worker labels"
            input type="text" name="required_labels" value=(labels) placeholder="none: any worker (e.g. gpu, big)";
            small { "Only workers started with all of these (WORKER_LABELS) take this environment's runs." }
        }
    }
}

fn create_form(envs: &[Environment], csrf: &str) -> Markup {
    let free: Vec<EnvironmentId> = EnvironmentId::all()
        .filter(|id| !envs.iter().any(|e| e.id == *id))
        .collect();
    html! {
        section {
            h2 { "New environment" }
            @if free.is_empty() { p.muted { "All 100 environment numbers are in use; delete one to make room." } }
            @else {
                form method="post" action="/environments" {
                    input type="hidden" name="_csrf" value=(csrf);
                    label { "Number" select name="id" { @for id in &free { option value=(id) { (id) } } } }
                    (limit_fields(None))
                    input type="hidden" name="enabled" value="on";
                    button type="submit" { "Create" }
                }
            }
        }
    }
}

pub async fn usage_fragment(State(state): State<AppState>) -> PageResult<Markup> {
    let envs = super::list(&state.db).await?;
    let usage = usage::sample(&state, &envs).await;
    Ok(html! {
        @if usage.is_empty() { p.muted { "No run is executing now." } }
        @else {
            table.usage { thead { tr { th { "Env" } th { "Run" } th { "CPU" } th { "Memory" } th { "Processes" } } }
            tbody { @for u in &usage {
                tr {
                    td { (u.environment_id) }
                    td { a href={ "/runs/" (u.run_id) } { "#" (u.run_id) } }
                    td { (meter(u.cpu_percent, u.cpu_limit_percent)) " " (format!("{:.0}", u.cpu_percent)) " % of " (format!("{:.0}", u.cpu_limit_percent)) " %" }
                    td { (meter(u.memory_bytes as f64, u.memory_limit_bytes as f64)) " " (u.memory_bytes / (1024 * 1024)) " of " (u.memory_limit_bytes / (1024 * 1024)) " MiB" }
                    td { (u.pids) }
                }
            } } }
        }
    })
}

fn meter(value: f64, limit: f64) -> Markup {
    let pct = if limit > 0.0 {
        (value / limit * 100.0).clamp(0.0, 100.0)
    } else {
        0.0
    };
    html! { span.meter { span style={ "width:" (format!("{pct:.0}")) "%" } {} } }
}

/// Limits as the operator's form sends them.
#[derive(Debug, Deserialize)]
pub struct LimitsForm {
    #[serde(default)]
    id: Option<String>,
    cpus: String,
    memory_mb: String,
    pids_limit: String,
    timeout_secs: String,
    #[serde(default)]
    enabled: Option<String>,
    /// Comma-separated; empty means any worker.
    #[serde(default)]
    required_labels: String,
    #[serde(default)]
    _csrf: String,
}

impl LimitsForm {
    fn change(&self) -> Result<changes::LimitsChange, AppError> {
        fn number<T: std::str::FromStr>(field: &str, raw: &str) -> Result<T, AppError> {
            raw.trim()
                .parse()
                .map_err(|_| AppError::Invalid(format!("{field} must be a number, not {raw:?}")))
        }
        Ok(changes::LimitsChange {
            cpus: Some(number("CPUs", &self.cpus)?),
            memory_mb: Some(number("memory", &self.memory_mb)?),
            pids_limit: Some(number("processes", &self.pids_limit)?),
            timeout_secs: Some(number("time limit", &self.timeout_secs)?),
            enabled: Some(self.enabled.is_some()),
            required_labels: Some(
                self.required_labels
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
            ),
        })
    }
}

/// Runs an operator's change from the page, answering with the page again
/// and the problem on top when it is refused.
async fn apply(
    state: &AppState,
    (session, cookie): (&Session, &CsrfCookie),
    csrf: &str,
    change: impl std::future::Future<Output = Result<(), AppError>>,
) -> PageResult<Response> {
    session::verify_operator_form(session, cookie, csrf, "change environments").await?;
    match change.await {
        Ok(()) => Ok(Redirect::to("/environments").into_response()),
        Err(err @ (AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound(_))) => {
            let status = err.status();
            Ok((
                status,
                render(state, session, cookie, Some(&err.to_string())).await?,
            )
                .into_response())
        }
        Err(err) => Err(err.into()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Form(form): Form<LimitsForm>,
) -> PageResult<Response> {
    let work = async {
        let id: EnvironmentId = form.id.as_deref().unwrap_or("").parse()?;
        changes::create(
            &state.db,
            id,
            &form.change()?,
            host::capacity(&state).await?,
        )
        .await
    };
    apply(&state, (&session, &cookie), &form._csrf, work).await
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<String>,
    Form(form): Form<LimitsForm>,
) -> PageResult<Response> {
    let work = async {
        let id: EnvironmentId = id.parse()?;
        changes::update(
            &state.db,
            id,
            &form.change()?,
            host::capacity(&state).await?,
        )
        .await
    };
    apply(&state, (&session, &cookie), &form._csrf, work).await
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    let work = async { changes::delete(&state.db, id.parse()?).await };
    apply(&state, (&session, &cookie), &form._csrf, work).await
}
