//! A timed-out run's hang on its page ("timed out in test_x — stuck at
//! file.py:42 in wait_for()", every thread's stack folded below) and in the
//! API (`/api/v1/runs/{id}/stacks`).

use axum::extract::State;
use maud::{html, Markup};

use crate::{
    error::{AppError, AppResult},
    state::AppState,
    store::stacks::{self, Stacks},
    web::extract::{Json, Path},
};

pub fn section(stacks: &Stacks) -> Markup {
    html! {
        article.hang {
            p {
                strong { "Timed out" }
                @if let Some(test) = &stacks.test { " in " code { (test) } }
                @if let Some((file, line, function)) = stacks.stuck_at() {
                    " — stuck at " code { (file) ":" (line) } " in " code { (function) "()" }
                }
            }
            details {
                summary { "Every thread's stack, shortly before the deadline (" (stacks.threads.len()) ")" }
                @for thread in &stacks.threads {
                    h6 { (thread.name) @if thread.main { " (main)" } }
                    pre {
                        @for (file, line, function) in &thread.frames {
                            "  " (file) ":" (line) " in " (function) "\n"
                        }
                    }
                }
            }
        }
    }
}

/// Every thread's Python stack shortly before the run's deadline.
#[utoipa::path(get, path = "/api/v1/runs/{id}/stacks", tag = "runs",
    params(("id" = i64, Path, description = "the run")),
    responses(
        (status = 200, description = "taken shortly before the deadline, with the test running then", body = Stacks),
        (status = 404, description = "no such run, or it did not near its deadline", body = crate::error::ErrorBody),
    ))]
pub async fn api(State(state): State<AppState>, Path(id): Path<i64>) -> AppResult<Json<Stacks>> {
    crate::store::runs::get(&state.db, id).await?;
    stacks::of_run(&state.db, id)
        .await?
        .map(Json)
        .ok_or_else(|| {
            AppError::NotFound(format!(
                "run #{id} has no stacks: they are taken shortly before a run's deadline"
            ))
        })
}
