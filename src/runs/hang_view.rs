//! Where a run hung or is now, on its page and in the API: a timed-out run
//! says "timed out in test_x — stuck at file.py:42 in wait_for()"; a running
//! one can be asked "Where is it now?" (page and
//! `POST /api/v1/runs/{id}/stacks`) and shows the answer live; every
//! thread's stack is folded below; `GET /api/v1/runs/{id}/stacks` serves
//! the latest.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Serialize;
use tower_sessions::Session;

use crate::{
    error::{AppError, AppResult},
    state::AppState,
    store::{
        stacks::{self, Stacks},
        Run, RunStatus,
    },
    web::{
        csrf::CsrfCookie,
        extract::{Form, Json, Path},
        html_error::PageResult,
        session::{self, CsrfForm},
    },
};

/// The stacks the run page shows: a timed-out run's, and those someone
/// asked for (read only then: most runs have none).
pub async fn of(state: &AppState, run: &Run) -> AppResult<Option<Stacks>> {
    if run.status == RunStatus::TimedOut || run.stacks_asked > 0 {
        stacks::of_run(&state.db, run.id).await
    } else {
        Ok(None)
    }
}

pub fn section(stacks: &Stacks) -> Markup {
    let (lead, place, when) = if stacks.asked {
        ("When asked, it was", " — at ", "when asked")
    } else {
        ("Timed out", " — stuck at ", "shortly before the deadline")
    };
    html! {
        article.hang #stacks {
            p {
                strong { (lead) }
                @if let Some(test) = &stacks.test { " in " code { (test) } }
                @if let Some((file, line, function)) = stacks.stuck_at() {
                    (place) code { (file) ":" (line) } " in " code { (function) "()" }
                }
            }
            // Asked for: open, so the page's refresh keeps it in view.
            details open[stacks.asked] {
                summary { "Every thread's stack, " (when) " (" (stacks.threads.len()) ")" }
                @for thread in &stacks.threads {
                    h6 { (thread.name) @if thread.main { " (main)" } }
                    pre {
                        @for (file, line, function) in &thread.frames {
                            "  " (file) ":" (line) " in " (function) "()\n"
                        }
                    }
                }
            }
        }
    }
}

/// The button on a running run's page.
pub fn ask_button(run: &Run, csrf: &str) -> Markup {
    html! {
        form method="post" action={ "/runs/" (run.id) "/stacks" } {
            input type="hidden" name="_csrf" value=(csrf);
            button.secondary type="submit" title="Every thread's Python stack, now, with the test it is in" { "Where is it now?" }
        }
    }
}

/// The latest stacks: asked for, or taken shortly before the deadline.
#[utoipa::path(get, path = "/api/v1/runs/{id}/stacks", tag = "runs",
    params(("id" = i64, Path, description = "the run")),
    responses(
        (status = 200, description = "the latest: taken when asked (`asked`) or shortly before the deadline, with the test running then", body = Stacks),
        (status = 404, description = "no such run, or none were taken", body = crate::error::ErrorBody),
    ))]
pub async fn api(State(state): State<AppState>, Path(id): Path<i64>) -> AppResult<Json<Stacks>> {
    crate::store::runs::get(&state.db, id).await?;
    stacks::of_run(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "run #{id} has no stacks: they are taken shortly before a run's deadline, \
                 or when asked (POST this path while it runs)"
            ))
        })
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Asked {
    pub run_id: i64,
    /// Where the answer appears, usually within a second.
    pub stacks: String,
}

/// Asks a running run where it is: its runner sends every thread's stack,
/// kept as the run's latest (`GET` this path).
#[utoipa::path(post, path = "/api/v1/runs/{id}/stacks", tag = "runs",
    params(("id" = i64, Path, description = "the run")),
    responses(
        (status = 202, description = "asked; the stacks follow within a second or so", body = Asked),
        (status = 404, description = "no such run", body = crate::error::ErrorBody),
        (status = 409, description = "the run is not running", body = crate::error::ErrorBody),
    ))]
pub async fn ask_api(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> AppResult<(StatusCode, Json<Asked>)> {
    stacks::ask(&state.db, id).await?;
    let stacks = format!("/api/v1/runs/{id}/stacks");
    Ok((StatusCode::ACCEPTED, Json(Asked { run_id: id, stacks })))
}

/// The page's "Where is it now?": back to the run, where the answer shows
/// (also when the run ended meanwhile).
pub async fn ask_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<i64>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    match stacks::ask(&state.db, id).await {
        Ok(()) | Err(AppError::Conflict(_)) => {
            Ok(Redirect::to(&format!("/runs/{id}#stacks")).into_response())
        }
        Err(other) => Err(other.into()),
    }
}
