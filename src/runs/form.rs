//! The new-run form: username remembered in the session, environments with
//! who holds them and their limits, and a file picker grouped by project
//! and folder.
//! Errors are shown next to their field and the form keeps what was typed.

use std::collections::BTreeMap;

use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use serde::Deserialize;
use tower_sessions::Session;

use super::request::{RunRequest, ShardsRequest};
use crate::store::Username;
use crate::{
    catalog::{Group, TestFile},
    environment_id::EnvironmentId,
    environments::{self, Environment},
    error::AppError,
    state::AppState,
    web::{
        csrf::CsrfCookie,
        extract::{Form, Query},
        html_error::PageResult,
        page::{page, Nav},
        session,
    },
};

/// What the form sends (and what it shows again after an error).
#[derive(Debug, Default, Deserialize)]
pub struct RunForm {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub environment_id: String,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub queue_if_busy: Option<String>,
    /// "Run again" of a tree's run: the files are paths within that tree.
    #[serde(default)]
    pub tree_id: Option<String>,
    /// Split over up to this many environments (empty or 1: one).
    #[serde(default)]
    pub shards: String,
    #[serde(default)]
    pub _csrf: String,
}

#[derive(Debug, Default)]
struct FieldErrors {
    username: Option<String>,
    environment: Option<String>,
    files: Option<String>,
    shards: Option<String>,
    busy: Option<(String, i64)>,
    /// A queue cap was reached: shown on top, like the API's 429.
    queue_full: Option<String>,
}

impl FieldErrors {
    fn any(&self) -> bool {
        self.username.is_some()
            || self.environment.is_some()
            || self.files.is_some()
            || self.shards.is_some()
            || self.busy.is_some()
            || self.queue_full.is_some()
    }

    fn status(&self) -> StatusCode {
        if self.queue_full.is_some() {
            StatusCode::TOO_MANY_REQUESTS
        } else if self.busy.is_some() {
            StatusCode::CONFLICT
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct Prefill {
    /// Start from the files and environment of this run.
    pub from: Option<i64>,
}

pub async fn new_form(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Query(prefill): Query<Prefill>,
) -> PageResult<Markup> {
    let mut form = RunForm {
        username: session::username(&session).await?.unwrap_or_default(),
        ..Default::default()
    };
    if let Some(from) = prefill.from {
        let run = crate::store::runs::get(&state.db, from).await?;
        form.environment_id = run.environment_id.to_string();
        form.files = run.files;
        // A tree's run is edited over that tree's files, and runs it again
        // (while the tree is kept: else the tests folder's form).
        if let Some(tree) = run.tree_id {
            if crate::trees::store::get(&state.db, &tree).await?.is_some() {
                form.tree_id = Some(tree);
            }
        }
        form.shards = run.shards.map(|n| n.to_string()).unwrap_or_default();
    }
    render(&state, &session, &cookie, &form, &FieldErrors::default()).await
}

pub async fn submit(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Form(form): Form<RunForm>,
) -> PageResult<Response> {
    session::verify_csrf(&session, &cookie, &form._csrf).await?;
    let mut errors = FieldErrors::default();
    if let Err(e) = Username::parse(&form.username) {
        errors.username = Some(e.to_string());
    }
    let environment_id = form.environment_id.parse::<EnvironmentId>();
    if let Err(e) = &environment_id {
        errors.environment = Some(e.to_string());
    }
    let shards = match form.shards.trim() {
        "" | "1" => None,
        n => match n.parse::<i64>() {
            Ok(n) => Some(ShardsRequest::Count(n)),
            Err(_) => {
                errors.shards = Some(format!("{n:?} is not a number of environments"));
                None
            }
        },
    };
    if form.tree_id.is_none() {
        if let Err(e) = state.catalog.listing().await?.resolve(&form.files) {
            errors.files = Some(e.to_string());
        }
    }
    if let (false, Ok(environment_id)) = (errors.any(), environment_id) {
        let request = RunRequest {
            username: form.username.clone(),
            environment_id: environment_id.get().into(),
            files: form.files.clone(),
            queue_if_busy: form.queue_if_busy.is_some(),
            node_ids: None,
            shards,
            tree_id: form.tree_id.clone(),
        };
        match super::request::submit(&state, &request).await {
            Ok(run) => {
                session::remember_username(&session, run.username.as_str()).await?;
                return Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response());
            }
            Err(AppError::Busy { message, holder }) => errors.busy = Some((message, holder)),
            Err(AppError::TooManyRequests(message)) => errors.queue_full = Some(message),
            Err(AppError::Conflict(message)) => errors.environment = Some(message),
            Err(AppError::Invalid(message)) if message.starts_with("shards:") => {
                errors.shards = Some(message)
            }
            // e.g. the project's tree is over its cap
            Err(AppError::Invalid(message)) => errors.files = Some(message),
            Err(other) => return Err(other.into()),
        }
    }
    Ok((
        errors.status(),
        render(&state, &session, &cookie, &form, &errors).await?,
    )
        .into_response())
}

async fn render(
    state: &AppState,
    session: &Session,
    cookie: &CsrfCookie,
    form: &RunForm,
    errors: &FieldErrors,
) -> PageResult<Markup> {
    let csrf = session::csrf_token(session, cookie).await?;
    let envs = environments::store::list(&state.db).await?;
    let listing = catalog_of(state, form).await?.listing().await?;
    let groups = listing.groups();
    let selected_env: Option<i32> = form.environment_id.trim().parse().ok();
    Ok(page(
        "New run",
        Nav::NewRun,
        html! {
            h1 { "New run" }
            form.new-run method="post" action="/runs" {
                input type="hidden" name="_csrf" value=(csrf);
                @if let Some(tree) = &form.tree_id { (tree_note(tree)) }
                @if let Some(message) = &errors.queue_full {
                    article.busy role="alert" { p { (message) } }
                }
                @if let Some((message, holder)) = &errors.busy {
                    article.busy role="alert" {
                        p { (message) }
                        p {
                            a href={ "/runs/" (holder) } { "See run #" (holder) } " · "
                            button type="submit" name="queue_if_busy" value="on" { "Wait in line for it" }
                        }
                    }
                }
                label {
                    "Username"
                    input type="text" name="username" value=(form.username) required maxlength="64"
                        autocomplete="username" aria-invalid=[errors.username.as_ref().map(|_| "true")];
                    @if let Some(e) = &errors.username { small.error { (e) } }
                }
                label {
                    "Environment"
                    select name="environment_id" required aria-invalid=[errors.environment.as_ref().map(|_| "true")] {
                        option value="" { "Choose an environment…" }
                        @for env in &envs { (environment_option(env, selected_env)) }
                    }
                    @if let Some(e) = &errors.environment { small.error { (e) } }
                }
                (file_picker(groups, &form.files, errors.files.as_deref()))
                label {
                    "Split over environments"
                    input type="number" name="shards" min="1" max="32" value=(form.shards) placeholder="1"
                        aria-invalid=[errors.shards.as_ref().map(|_| "true")];
                    small { "Up to this many environments free now (the chosen one first), each shard taking the next test when it is done with one, longest first." }
                    @if let Some(e) = &errors.shards { small.error { (e) } }
                }
                label {
                    input type="checkbox" name="queue_if_busy" role="switch" checked[form.queue_if_busy.is_some()];
                    "If the environment is busy, wait in line for it"
                }
                button type="submit" { "Start run" }
            }
            (super::tree_upload::form(&csrf, &form.username))
        },
    ))
}

/// The files offered: the tree's of the run being edited, else (no tree,
/// or one gone since) the tests folder's.
async fn catalog_of(state: &AppState, form: &RunForm) -> Result<crate::catalog::Catalog, AppError> {
    if let Some(id) = &form.tree_id {
        match super::request::tree_catalog(state, id, false).await {
            Ok(catalog) => return Ok(catalog),
            Err(err) => tracing::info!("the form offers the tests folder: tree {id}: {err}"),
        }
    }
    Ok(state.catalog.clone())
}

/// The tree the form runs again, sent with it.
fn tree_note(tree: &str) -> Markup {
    html! {
        input type="hidden" name="tree_id" value=(tree);
        p.tree-note {
            "The files of the tree " code { (tree.get(..12).unwrap_or(tree)) } " sent with that run "
            a href="/runs/new" { "(or choose from the tests folder)" }
        }
    }
}

fn environment_option(env: &Environment, selected: Option<i32>) -> Markup {
    let l = &env.limits;
    let limits = format!(
        "{} CPU · {} MiB · {} processes · {} s",
        l.cpus(),
        l.memory_mb,
        l.pids_limit,
        l.timeout_secs
    );
    let holder = match (env.busy_run_id, &env.busy_username) {
        (Some(id), Some(user)) => format!(" — busy: run #{id} by {user}"),
        _ => String::new(),
    };
    let waiting = if env.waiting > 0 {
        format!(", {} waiting", env.waiting)
    } else {
        String::new()
    };
    html! {
        option value=(env.id) selected[selected == Some(env.id.get())] disabled[!env.enabled] {
            (env.id) " · " (limits) (holder) (waiting) @if !env.enabled { " — disabled" }
        }
    }
}

/// Checkboxes grouped by project, then by folder; with JavaScript, a filter
/// box and select-all / select-folder switches (see assets/app.js). A run
/// takes the files of one project.
fn file_picker(groups: &[Group], chosen: &[String], error: Option<&str>) -> Markup {
    let total: usize = groups.iter().map(|g| g.files.len()).sum();
    let headed = groups.iter().any(|g| g.project.is_some());
    html! {
        fieldset.file-picker aria-invalid=[error.map(|_| "true")] {
            legend { "Test files " small.muted { "(" (total) " found)" } }
            @if let Some(e) = error { small.error { (e) } }
            @if headed { p.muted { "A run takes the files of one project, with the project's whole tree." } }
            div.picker-tools {
                input type="search" placeholder="Filter files…" aria-label="Filter files" data-file-filter;
                label { input type="checkbox" data-select-all; "Select all shown" }
            }
            @for group in groups {
                @if headed {
                    h4.project-head data-project=[group.project.as_ref().map(|p| p.name.as_str())] {
                        @if let Some(project) = &group.project {
                            "Project " (project.name) " "
                            small.muted { @for m in &project.markers { code { (m) } " " } }
                        } @else {
                            "Outside any project"
                        }
                    }
                }
                (folder_boxes(&group.files, chosen))
            }
        }
    }
}

fn folder_boxes(files: &[TestFile], chosen: &[String]) -> Markup {
    let mut folders: BTreeMap<&str, Vec<&TestFile>> = BTreeMap::new();
    for file in files {
        folders.entry(file.folder()).or_default().push(file);
    }
    html! {
        div.folders {
            @for (folder, files) in &folders {
                details open data-folder-box {
                    summary {
                        label.folder {
                            input type="checkbox" data-select-folder;
                            @if folder.is_empty() { "(top level)" } @else { (folder) "/" }
                        }
                        " " small.muted { (files.len()) }
                    }
                    ul {
                        @for file in files {
                            li data-path=(file.as_str()) {
                                label {
                                    input type="checkbox" name="files" value=(file.as_str())
                                        checked[chosen.iter().any(|c| c == file.as_str())];
                                    (file.as_str().rsplit('/').next().unwrap_or(file.as_str()))
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
