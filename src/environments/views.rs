//! `/environments`: the operator view — every environment's limits, who
//! holds it and since when, live usage, what the host has, and (for
//! operators) a link to each one's edit page (`edit.rs`) and the form
//! that creates one.

use axum::extract::State;
use maud::{html, Markup};
use tower_sessions::Session;

use super::{host, needs, storage, usage, Environment};
use crate::{
    environment_id::EnvironmentId,
    operators::DISABLED,
    state::AppState,
    web::{
        components::{duration, short_time},
        csrf::CsrfCookie,
        html_error::PageResult,
        page::{page, Nav},
        session,
    },
};

pub async fn index(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
) -> PageResult<Markup> {
    render(&state, &session, &cookie, None).await
}

/// The page, with `problem` on top when a form was refused; else with the
/// message a form left (what an operator's change did), once.
pub async fn render(
    state: &AppState,
    session: &Session,
    cookie: &CsrfCookie,
    problem: Option<&str>,
) -> PageResult<Markup> {
    let flash = session::take_flash(session).await?;
    let envs = super::store::list(&state.db).await?;
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
            @if let Some(message) = problem { article.warning role="alert" { p { (message) } } }
            @else if let Some(message) = &flash { article.flash role="status" { p { (message) } } }
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
                    tbody { @for env in &envs { (row(env, operator)) } }
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

fn row(env: &Environment, operator: bool) -> Markup {
    let l = &env.limits;
    html! {
        tr #{ "env-" (env.id) } {
            // An operator's way to the edit page on a phone, where the
            // table scrolls and its last column may be out of view.
            td { @if operator { a href={ "/environments/" (env.id) "/edit" } { (env.id) } } @else { (env.id) } }
            td.cpus { (l.cpus()) }
            td.memory { (l.memory_mb) " MiB" }
            td { (l.pids_limit) }
            td.timeout { (l.timeout_secs) " s" }
            td {
                @if env.enabled { "enabled" } @else { strong { "disabled" } }
                @if !env.required_labels.is_empty() { br; small.muted.labels { "needs " (env.required_labels.join(", ")) } }
            }
            td.held {
                @if let (Some(run), Some(user)) = (env.busy_run_id, &env.busy_username) {
                    a href={ "/runs/" (run) } { "#" (run) } " " (user)
                    @if let Some(since) = env.busy_since {
                        br; small.muted { "since " (short_time(Some(since))) " (" (duration(time::OffsetDateTime::now_utc() - since)) ")" }
                    }
                    @if env.waiting > 0 { br; small.muted { (env.waiting) " waiting" } }
                } @else { span.muted { "free" } }
            }
            @if operator {
                td { a.edit href={ "/environments/" (env.id) "/edit" } aria-label={ "Edit environment " (env.id) } { "Edit" } }
            }
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
                    (super::edit::default_fields())
                    input type="hidden" name="enabled" value="on";
                    button type="submit" { "Create" }
                }
            }
        }
    }
}

pub async fn usage_fragment(State(state): State<AppState>) -> PageResult<Markup> {
    let envs = super::store::list(&state.db).await?;
    let usage = usage::sample(&state, &envs).await;
    Ok(html! {
        @if usage.is_empty() { p.muted { "No run is executing now." } }
        @else {
            div.overflow-auto { table.usage { thead { tr { th { "Env" } th { "Run" } th { "CPU" } th { "Memory" } th { "Processes" } } }
            tbody { @for u in &usage {
                tr {
                    td { (u.environment_id) }
                    td { a href={ "/runs/" (u.run_id) } { "#" (u.run_id) } }
                    td { (meter(u.cpu_percent, u.cpu_limit_percent)) " " (format!("{:.0}", u.cpu_percent)) " % of " (format!("{:.0}", u.cpu_limit_percent)) " %" }
                    td { (meter(u.memory_bytes as f64, u.memory_limit_bytes as f64)) " " (u.memory_bytes / (1024 * 1024)) " of " (u.memory_limit_bytes / (1024 * 1024)) " MiB" }
                    td { (u.pids) }
                }
            } } } }
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
