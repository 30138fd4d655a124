//! "Rerun failed tests": a run of only the failed and errored tests of a
//! finished run, on the same files, linked both ways. Refused when the
//! files' content changed since (the failures may be gone or different),
//! unless asked to use the current content.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;

use super::request::{RunRequest, MAX_NODE_IDS};
use crate::{
    error::{AppError, AppResult, ErrorBody},
    results,
    state::AppState,
    store::Run,
    web::{
        csrf::CsrfCookie,
        extract::{Form, Json, Path},
        html_error::PageResult,
        session,
    },
};

/// The body of `POST /api/v1/runs/{id}/rerun-failed`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RerunRequest {
    /// Who asks; the new run is theirs.
    pub username: String,
    /// Run on the files as they are now even if they changed since.
    #[serde(default)]
    pub use_current_content: bool,
    /// Wait in line if the environment is busy (else 409).
    #[serde(default)]
    pub queue_if_busy: bool,
}

/// Queues the rerun of run `id`'s failed tests.
pub async fn rerun_failed(state: &AppState, id: i64, asked: &RerunRequest) -> AppResult<Run> {
    let run = crate::store::runs::get(&state.db, id).await?;
    if run.status.is_active() {
        return Err(AppError::Conflict(format!(
            "run #{id} has not finished: its failed tests are known once it has"
        )));
    }
    let limit = i64::try_from(MAX_NODE_IDS).unwrap_or(i64::MAX) + 1;
    let node_ids = results::store::failed_node_ids(&state.db, id, limit).await?;
    if node_ids.is_empty() {
        return Err(AppError::Conflict(format!(
            "run #{id} has no failed or errored test to rerun"
        )));
    }
    if node_ids.len() > MAX_NODE_IDS {
        return Err(AppError::Conflict(format!(
            "run #{id} has more than {MAX_NODE_IDS} failed tests: use Run again"
        )));
    }
    let request = RunRequest {
        username: asked.username.clone(),
        environment_id: i64::from(run.environment_id.get()),
        files: run.files.iter().map(|f| f.to_string()).collect(),
        queue_if_busy: asked.queue_if_busy,
        node_ids: Some(node_ids),
        shards: None,
        tree_id: run.tree_id.clone(),
    };
    let mut new = request.validate(state).await?;
    if !asked.use_current_content {
        if let Some(changed) = changed_since(&run, &new) {
            return Err(AppError::Conflict(format!(
                "{changed} changed since run #{id}: its failures may be gone or different. \
                 Rerun on the current content (use_current_content), or run the files again"
            )));
        }
    }
    new.rerun_of = Some(id);
    super::request::queue(state, &new).await
}

/// What changed between the run and the same files now: the project's tree,
/// or a file; `None` when nothing did.
pub fn changed_since(run: &Run, new: &crate::store::runs::NewRun) -> Option<String> {
    if let Some(project) = &run.project {
        return (run.tree_sha256 != new.tree_sha256).then(|| format!("project {project}"));
    }
    run.files
        .iter()
        .zip(&run.file_sha256)
        .zip(&new.file_sha256)
        .find(|((_, then), now)| then != now)
        .map(|((file, _), _)| file.to_string())
}

/// Rerun the failed and errored tests of a finished run.
#[utoipa::path(post, path = "/api/v1/runs/{id}/rerun-failed", tag = "runs",
    params(("id" = i64, Path, description = "a finished run with failed or errored tests")),
    request_body = RerunRequest,
    responses(
        (status = 201, description = "the new run of only those tests, `rerun_of` set", body = super::api::RunJson),
        (status = 404, description = "no such run", body = ErrorBody),
        (status = 409, description = "the run has not finished, has no failed test, its files changed since (without use_current_content), or the environment is busy", body = ErrorBody),
        (status = 422, description = "an invalid username, or the files are gone", body = ErrorBody),
    ))]
pub async fn api(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(asked): Json<RerunRequest>,
) -> AppResult<(StatusCode, Json<super::api::RunJson>)> {
    let run = rerun_failed(&state, id, &asked).await?;
    Ok((StatusCode::CREATED, Json(run.into())))
}

/// The run page's form.
#[derive(Debug, Deserialize)]
pub struct RerunForm {
    pub _csrf: String,
    pub use_current_content: Option<String>,
}

/// The page's "Rerun failed tests": as the browser's remembered user, else
/// the run's; waits in line if the environment is busy.
pub async fn page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Form(form): Form<RerunForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    let username = match session::username(&session).await? {
        Some(me) => me,
        None => crate::store::runs::get(&state.db, id).await?.username,
    };
    let asked = RerunRequest {
        username,
        use_current_content: form.use_current_content.is_some(),
        queue_if_busy: true,
    };
    let run = rerun_failed(&state, id, &asked).await?;
    Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response())
}
