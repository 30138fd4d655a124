//! Operators' changes from the pages: an environment's edit page (its own
//! page, not a table cell), and the posts that create, change and delete
//! environments. Each success goes back to `/environments` with a message
//! saying what changed; a refused change shows the problem beside what was
//! typed.

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Deserialize;
use tower_sessions::Session;

use super::{changes, host, Environment};
use crate::{
    environment_id::EnvironmentId,
    error::AppError,
    limits::DEFAULT_LIMITS,
    state::AppState,
    web::{
        csrf::CsrfCookie,
        extract::{Form, Path},
        html_error::PageResult,
        page::{page, Nav},
        session::{self, CsrfForm},
    },
};

/// Limits as the operator's forms send them (and show them again).
#[derive(Debug, Default, Deserialize)]
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
    /// The form filled in with an environment's settings (or the defaults).
    fn of(env: Option<&Environment>) -> LimitsForm {
        let l = env.map_or(DEFAULT_LIMITS, |e| e.limits);
        LimitsForm {
            cpus: l.cpus().to_string(),
            memory_mb: l.memory_mb.to_string(),
            pids_limit: l.pids_limit.to_string(),
            timeout_secs: l.timeout_secs.to_string(),
            enabled: env.is_none_or(|e| e.enabled).then(|| "on".into()),
            required_labels: env
                .map(|e| e.required_labels.join(", "))
                .unwrap_or_default(),
            ..LimitsForm::default()
        }
    }

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

/// The limit fields of the edit page and of the new-environment form.
pub fn limit_fields(form: &LimitsForm) -> Markup {
    html! {
        div.grid.limit-fields {
            label { "CPUs" input type="number" name="cpus" step="0.01" min="0.01" value=(form.cpus) required; }
            label { "Memory (MiB)" input type="number" name="memory_mb" min="16" value=(form.memory_mb) required; }
            label { "Processes" input type="number" name="pids_limit" min="8" value=(form.pids_limit) required; }
            label { "Time limit (s)" input type="number" name="timeout_secs" min="1" value=(form.timeout_secs) required; }
        }
        label {
            "Required worker labels"
            input type="text" name="required_labels" value=(form.required_labels) placeholder="none: any worker (e.g. gpu, big)";
            small { "Only workers started with all of these (WORKER_LABELS) take this environment's runs." }
        }
    }
}

/// The new-environment form's fields, with the defaults.
pub fn default_fields() -> Markup {
    limit_fields(&LimitsForm::of(None))
}

/// `/environments/{id}/edit`: operators only.
pub async fn edit_page(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<String>,
) -> PageResult<Markup> {
    if !session::is_operator(&session).await? {
        let why = "only operators may change environments: sign in at /operator";
        return Err(AppError::Unauthorized(why.into()).into());
    }
    let env = super::store::get(&state.db, id.parse()?).await?;
    let csrf = session::csrf_token(&session, &cookie).await?;
    Ok(edit_view(&env, &LimitsForm::of(Some(&env)), &csrf, None))
}

fn edit_view(env: &Environment, form: &LimitsForm, csrf: &str, error: Option<&str>) -> Markup {
    page(
        &format!("Environment {}", env.id),
        Nav::Environments,
        html! {
            div.page-head {
                h1 { "Environment " (env.id) }
                a href={ "/environments#env-" (env.id) } { "← All environments" }
            }
            @if let Some(message) = error { article.warning role="alert" { p { (message) } } }
            p.muted {
                "New limits apply to the next run in it"
                @if let Some(run) = env.busy_run_id { "; run " a href={ "/runs/" (run) } { "#" (run) } " keeps the ones it started with" }
                "."
            }
            article.edit-panel {
                form method="post" action={ "/environments/" (env.id) } {
                    input type="hidden" name="_csrf" value=(csrf);
                    (limit_fields(form))
                    label { input type="checkbox" name="enabled" role="switch" checked[form.enabled.is_some()]; "Enabled" }
                    div.actions {
                        button type="submit" { "Save" }
                        a role="button" class="outline secondary" href="/environments" { "Cancel" }
                    }
                }
            }
            section.danger {
                h2 { "Delete" }
                p.muted { "Only when no run uses or waits for it. Its past runs keep their number and limits." }
                form method="post" action={ "/environments/" (env.id) "/delete" } {
                    input type="hidden" name="_csrf" value=(csrf);
                    button.secondary type="submit" { "Delete environment " (env.id) }
                }
            }
        },
    )
}

/// Saves the edit page: back to the list saying what changed, or the page
/// again with the problem and what was typed.
pub async fn update(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<String>,
    Form(form): Form<LimitsForm>,
) -> PageResult<Response> {
    session::verify_operator_form(&session, &cookie, &form._csrf, "change environments").await?;
    let id: EnvironmentId = id.parse()?;
    let saved = async {
        changes::update(
            &state.db,
            id,
            &form.change()?,
            host::capacity(&state).await?,
        )
        .await
    };
    match saved.await {
        Ok(changed) => {
            let what = if changed.is_empty() {
                "nothing changed".into()
            } else {
                changed.join("; ")
            };
            done(&session, &format!("Environment {id} saved: {what}.")).await
        }
        Err(err @ (AppError::Invalid(_) | AppError::Conflict(_))) => {
            let env = super::store::get(&state.db, id).await?;
            let csrf = session::csrf_token(&session, &cookie).await?;
            let view = edit_view(&env, &form, &csrf, Some(&err.to_string()));
            Ok((err.status(), view).into_response())
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
    session::verify_operator_form(&session, &cookie, &form._csrf, "change environments").await?;
    let created = async {
        let id: EnvironmentId = form.id.as_deref().unwrap_or("").parse()?;
        let host = host::capacity(&state).await?;
        changes::create(&state.db, id, &form.change()?, host).await?;
        Ok::<_, AppError>(id)
    };
    match created.await {
        Ok(id) => done(&session, &format!("Environment {id} created.")).await,
        Err(err) => refused(&state, (&session, &cookie), err).await,
    }
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session::verify_operator_form(&session, &cookie, &form._csrf, "change environments").await?;
    let deleted = async {
        let id: EnvironmentId = id.parse()?;
        changes::delete(&state.db, id).await?;
        Ok::<_, AppError>(id)
    };
    match deleted.await {
        Ok(id) => done(&session, &format!("Environment {id} deleted.")).await,
        Err(err) => refused(&state, (&session, &cookie), err).await,
    }
}

/// Back to the list with the message on top, where the page opens.
async fn done(session: &Session, message: &str) -> PageResult<Response> {
    session::set_flash(session, message).await?;
    Ok(Redirect::to("/environments").into_response())
}

/// The list again with the problem on top, for what a person can fix.
async fn refused(
    state: &AppState,
    (session, cookie): (&Session, &CsrfCookie),
    err: AppError,
) -> PageResult<Response> {
    match err {
        AppError::Invalid(_) | AppError::Conflict(_) | AppError::NotFound(_) => {
            let status: StatusCode = err.status();
            let page = super::views::render(state, session, cookie, Some(&err.to_string())).await?;
            Ok((status, page).into_response())
        }
        err => Err(err.into()),
    }
}
