//! The runs table (`/`): newest first, filtered by the URL, paged by id, and
//! live: active rows refresh themselves, and a hidden poller row asks only
//! for runs newer than the newest one shown (204 when there are none).

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::{html, Markup};

use super::api::ListQuery;
use super::components::{counts, run_duration, status_badge};
use crate::store::{RunRow, RunStatus};
use crate::{
    environment_id::EnvironmentId,
    state::AppState,
    web::{
        components::short_time,
        extract::{Path, Query},
        html_error::PageResult,
        page::{page, Nav},
    },
};

const PAGE_SIZE: i64 = 50;

pub async fn index(
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> PageResult<Markup> {
    let filter = query.filter(PAGE_SIZE)?;
    let runs = crate::store::list_rows(&state.db, &filter, None).await?;
    let filters = filter_params(&query);
    let newest = if query.before.is_none() {
        runs.first().map_or(0, |r| r.id)
    } else {
        -1
    };
    let older = (runs.len() as i64 == filter.limit.clamp(1, 500))
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(page(
        "Runs",
        Nav::Runs,
        html! {
            div.page-head {
                h1 { "Runs" }
                a role="button" href="/runs/new" { "New run" }
            }
            (filters_form(&query))
            div.overflow-auto {
                table.runs {
                    thead { tr {
                        th { "Run" } th { "User" } th { "Env" } th { "Files" } th { "Status" }
                        th { "Started" } th { "Duration" }
                    } }
                    tbody #runs-body {
                        @if newest >= 0 { (newer_poller(newest, &filters)) }
                        @for run in &runs { (row(run)) }
                    }
                }
            }
            @if runs.is_empty() { p.muted { "No runs match. " a href="/runs/new" { "Start one" } "." } }
            nav.pager {
                @if query.before.is_some() { a href={ "/?" (filters) } { "← Newest" } }
                @if let Some(before) = older { a href={ "/?" (filters) "&before=" (before) } { "Older runs →" } }
            }
        },
    ))
}

/// One row; while the run is active it polls for itself.
pub fn row(run: &RunRow) -> Markup {
    let shown: Vec<&String> = run.files.iter().take(2).collect();
    let more = run.files.len().saturating_sub(2);
    html! {
        tr #{ "run-" (run.id) }
            hx-get=[run.status.is_active().then(|| format!("/fragments/runs/{}/row", run.id))]
            hx-trigger=[run.status.is_active().then_some("every 2s")]
            hx-swap=[run.status.is_active().then_some("outerHTML")] {
            td { a href={ "/runs/" (run.id) } { "#" (run.id) } }
            td { (run.username) }
            td {
                (run.environment_id)
                @if let Some(n) = run.shards { br; small.muted { (n) " shards" } }
                @if let Some(parent) = run.shard_of {
                    br; small.muted { "shard of " a href={ "/runs/" (parent) } { "#" (parent) } }
                }
            }
            td.files {
                @if let Some(project) = &run.project { small.project { (project) ": " } }
                @for f in &shown { code { (f) } " " }
                @if more > 0 { small.muted { "+" (more) " more" } }
            }
            td {
                (status_badge(run.status))
                @if run.status == RunStatus::Running || run.summary.collected.is_some() { " " small { (counts(&run.summary)) } }
            }
            td { (short_time(run.started_at)) }
            td {
                (run_duration(run.started_at, run.finished_at))
                @if let Some(peak) = run.peak_memory_bytes {
                    br; small.muted.peak title="peak memory" { (super::chart::mib(peak)) }
                }
            }
        }
    }
}

fn newer_poller(after: i64, filters: &str) -> Markup {
    html! {
        tr #runs-poller.poller hx-get={ "/fragments/runs/newer?after=" (after) "&" (filters) }
            hx-trigger="every 2s" hx-swap="outerHTML" {}
    }
}

pub async fn row_fragment(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> PageResult<Markup> {
    Ok(row(&crate::store::runs::get(&state.db, id).await?.into()))
}

#[derive(Debug, serde::Deserialize)]
pub struct NewerQuery {
    pub after: i64,
    pub status: Option<String>,
    pub username: Option<String>,
    pub environment_id: Option<String>,
}

/// Runs newer than `after` (same filters), or 204 when there are none.
pub async fn newer_fragment(
    State(state): State<AppState>,
    Query(query): Query<NewerQuery>,
) -> PageResult<Response> {
    let list = ListQuery {
        status: query.status,
        username: query.username,
        environment_id: query.environment_id,
        limit: None,
        before: None,
    };
    let filter = list.filter(PAGE_SIZE)?;
    let runs = crate::store::list_rows(&state.db, &filter, Some(query.after)).await?;
    if runs.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let filters = filter_params(&list);
    Ok(html! {
        (newer_poller(runs[0].id, &filters))
        @for run in &runs { (row(run)) }
    }
    .into_response())
}

fn filters_form(query: &ListQuery) -> Markup {
    let env: Option<i32> = query.environment_id.as_deref().and_then(|e| e.parse().ok());
    let status = query.status.as_deref().unwrap_or("");
    html! {
        form.filters method="get" action="/" {
            div.grid {
                input type="search" name="username" placeholder="User" aria-label="User"
                    value=(query.username.as_deref().unwrap_or(""));
                select name="environment_id" aria-label="Environment" {
                    option value="" { "Any environment" }
                    @for id in EnvironmentId::all() {
                        option value=(id) selected[env == Some(id.get())] { "Environment " (id) }
                    }
                }
                select name="status" aria-label="Status" {
                    option value="" { "Any status" }
                    @for s in RunStatus::ALL {
                        option value=(s.as_str()) selected[status == s.as_str()] { (s.label()) }
                    }
                }
                div.filter-buttons {
                    button type="submit" { "Filter" }
                    a.secondary href="/" { "Clear" }
                }
            }
        }
    }
}

/// The filters as a query string, for links that keep them.
fn filter_params(query: &ListQuery) -> String {
    let mut params = form_urlencoded::Serializer::new(String::new());
    for (key, value) in [
        ("username", &query.username),
        ("environment_id", &query.environment_id),
        ("status", &query.status),
    ] {
        if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
            params.append_pair(key, v);
        }
    }
    params.finish()
}
