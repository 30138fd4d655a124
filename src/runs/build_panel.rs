//! A run's dependency build on its page: the build's output while the run
//! waits for it; when it failed, its reason, last lines and whole log, and
//! "Retry build", which forgets the failure and runs the same files again
//! at once (without it, the next run after the back-off builds again).

use axum::{
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use tower_sessions::Session;

use super::request::RunRequest;
use crate::store::{Run, RunStatus};
use crate::{
    dependencies::{self, store::DependencyImage},
    error::{AppError, AppResult},
    state::AppState,
    web::{
        csrf::CsrfCookie,
        extract::{Form, Json, Path},
        html_error::PageResult,
        session::{self, CsrfForm},
    },
};

/// Lines of the build's output on the page (the whole log is a link away).
const SHOWN_LINES: usize = 30;

/// The build worth showing on the run's page: the one it waits for, or the
/// one whose failure ended it.
pub async fn of(state: &AppState, run: &Run) -> AppResult<Option<DependencyImage>> {
    let Some(key) = &run.dependency_key else {
        return Ok(None);
    };
    let waiting = run.status == RunStatus::Running && run.installing_since.is_some();
    if !waiting && run.status != RunStatus::Error {
        return Ok(None);
    }
    let row = dependencies::store::get(&state.db, key).await?;
    Ok(row.filter(|row| match row.state.as_str() {
        "building" => waiting,
        "failed" => run.status == RunStatus::Error,
        _ => false,
    }))
}

fn last_lines(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The build's output so far, or its failure with "Retry build".
pub fn panel(run: &Run, build: &DependencyImage, csrf: &str) -> Markup {
    let tail = last_lines(&build.log, SHOWN_LINES);
    html! {
        @if build.state == "building" {
            details.build-output open {
                summary { "Build output (" (build.project) ", last " (SHOWN_LINES) " lines)" }
                pre { @if tail.is_empty() { "starting…" } @else { (tail) } }
            }
        } @else {
            article.build-failed {
                p {
                    strong { "The dependency build of " (build.project) " failed" }
                    @if let Some(error) = &build.error { ": " (error) }
                }
                pre { (tail) }
                div.actions {
                    a role="button" class="outline" href={ "/runs/" (run.id) "/build.log" } { "Whole build log" }
                    form method="post" action={ "/runs/" (run.id) "/retry-build" } {
                        input type="hidden" name="_csrf" value=(csrf);
                        button type="submit" { "Retry build" }
                    }
                }
            }
        }
    }
}

/// `GET /runs/{id}/build.log`: the whole log of the build the run needed.
pub async fn log(State(state): State<AppState>, Path(id): Path<i64>) -> PageResult<Response> {
    let run = crate::store::runs::get(&state.db, id).await?;
    let key = run
        .dependency_key
        .ok_or_else(|| AppError::NotFound(format!("run #{id} needed no dependency build")))?;
    let build = dependencies::store::get(&state.db, &key)
        .await?
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "the build run #{id} needed is forgotten (rebuilt or pruned since)"
            ))
        })?;
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        build.log,
    )
        .into_response())
}

/// Forgets the failed build run `id` needed and queues its files again
/// under `username`: the new run builds at once.
async fn retry(state: &AppState, id: i64, username: String) -> AppResult<Run> {
    let run = crate::store::runs::get(&state.db, id).await?;
    let key = run.dependency_key.clone().ok_or_else(|| {
        AppError::Conflict(format!(
            "run #{id} needed no dependency build: use Run again"
        ))
    })?;
    if let Some(build) = dependencies::store::get(&state.db, &key).await? {
        match build.state.as_str() {
            "failed" => {
                dependencies::store::forget(&state.db, &key).await?;
            }
            "building" => {
                return Err(AppError::Conflict(format!(
                "project {}'s dependencies are being built again already: run again to wait for it",
                build.project
            )))
            }
            _ => {
                return Err(AppError::Conflict(format!(
                    "project {}'s dependency build did not fail (it is {}): use Run again",
                    build.project, build.state
                )))
            }
        }
    }
    let request = RunRequest {
        username,
        environment_id: i64::from(run.environment_id.get()),
        files: run.files.iter().map(|f| f.to_string()).collect(),
        queue_if_busy: true,
        node_ids: None,
        shards: None,
        tree_id: run.tree_id.clone(),
    };
    super::request::submit(state, &request).await
}

/// The page's "Retry build": as the browser's remembered user, else the
/// run's.
pub async fn retry_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    let me = session::username(&session).await?;
    let username = match me {
        Some(me) => me,
        None => crate::store::runs::get(&state.db, id).await?.username,
    };
    let run = retry(&state, id, username).await?;
    Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response())
}

/// The body of `POST /api/v1/runs/{id}/retry-build`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct RetryRequest {
    /// Who asks; the new run is theirs.
    pub username: String,
}

/// Forget a failed dependency build and run the same files again.
#[utoipa::path(post, path = "/api/v1/runs/{id}/retry-build", tag = "runs",
    params(("id" = i64, Path, description = "a run that ended because its dependency build failed")),
    request_body = RetryRequest,
    responses(
        (status = 201, description = "the new run, queued; it builds at once", body = super::api::RunJson),
        (status = 404, description = "no such run", body = crate::error::ErrorBody),
        (status = 409, description = "the run needed no build, or its build did not fail", body = crate::error::ErrorBody),
        (status = 422, description = "an invalid username", body = crate::error::ErrorBody),
    ))]
pub async fn retry_api(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(request): Json<RetryRequest>,
) -> AppResult<(StatusCode, Json<super::api::RunJson>)> {
    crate::store::Username::parse(&request.username)?;
    let run = retry(&state, id, request.username).await?;
    Ok((StatusCode::CREATED, Json(run.into())))
}
