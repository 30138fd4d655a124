//! The projects page (`/projects`): each project under the tests folder with
//! its root, the markers that made it one and its test files.

use axum::{
    extract::State,
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use tower_sessions::Session;

use crate::{
    error::AppError,
    state::AppState,
    web::{
        components::timestamp,
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

/// The operators' rebuild button: back to the page, the problem on top when
/// it was refused.
pub async fn rebuild(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    Path(name): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult<Response> {
    session::verify_operator_form(&session, &cookie, &form._csrf, "rebuild dependency images")
        .await?;
    match super::rebuild::rebuild(&state, &name).await {
        Ok(_) => Ok(Redirect::to("/projects").into_response()),
        Err(err @ (AppError::Conflict(_) | AppError::NotFound(_))) => Ok((
            err.status(),
            render(&state, &session, &cookie, Some(&err.to_string())).await?,
        )
            .into_response()),
        Err(err) => Err(err.into()),
    }
}

async fn render(
    state: &AppState,
    session: &Session,
    cookie: &CsrfCookie,
    flash: Option<&str>,
) -> PageResult<Markup> {
    let projects = super::api::listed(state).await?;
    let operator = session::is_operator(session).await?;
    let csrf = session::csrf_token(session, cookie).await?;
    let tests_dir = state.config.tests_dir.display().to_string();
    Ok(page(
        "Projects",
        Nav::Projects,
        html! {
            h1 { "Projects" }
            @if let Some(message) = flash { article.warning role="alert" { p { (message) } } }
            p.muted {
                "A project is a folder under " code { (tests_dir) } " holding "
                code { "pyproject.toml" } ", " code { "setup.py" } ", " code { "setup.cfg" } ", "
                code { "pytest.ini" } ", " code { "tox.ini" } ", " code { "test-executor.toml" }
                " or " code { "requirements*.txt" }
                ". A run of its files receives its whole tree (less .git, virtualenvs, caches, "
                "build outputs and what .gitignore excludes) and runs pytest from its root."
            }
            @if projects.is_empty() {
                p { "No projects: every test file runs with the conftest files above it." }
            } @else {
                div.overflow-auto {
                    table.projects.cards {
                        thead { tr {
                            th { "Project" } th { "Root" } th { "Markers" } th { "Test files" }
                            th { "Dependencies" }
                        } }
                        tbody {
                            @for p in &projects {
                                tr data-project=(p.name) {
                                    td { strong { (p.name) } }
                                    td data-label="Root" { code { (p.root) } }
                                    td data-label="Markers" { @for (i, m) in p.markers.iter().enumerate() {
                                        @if i > 0 { " " } code { (m) }
                                    } }
                                    td data-label="Test files" { a href="/runs/new" { (p.files) } }
                                    td data-label="Dependencies" {
                                        (dependency_cell(p.dependency_image.as_ref()))
                                        @if operator && p.dependency_image.as_ref().is_some_and(|i| i.state != "building") {
                                            form.rebuild method="post" action={ "/projects/" (path_segment(&p.name)) "/rebuild" } {
                                                input type="hidden" name="_csrf" value=(csrf);
                                                button.outline.secondary type="submit" { "Rebuild" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        },
    ))
}

/// The dependency image: state, size, build time, age, and the build log.
fn dependency_cell(image: Option<&super::api::ImageJson>) -> Markup {
    let Some(image) = image else {
        return html! { span.muted { "runner image (none built)" } };
    };
    let mib = image.size_bytes.map(|b| b / (1024 * 1024));
    html! {
        span.badge data-state=(image.state) { (image.state) } " "
        code { (image.image) }
        br;
        small.muted {
            @if let Some(mib) = mib { (mib) " MiB · " }
            "built in " (image.build_secs) " s"
            @if image.finished_at.is_some() { " · " (timestamp(image.finished_at)) }
        }
        @if let Some(error) = &image.error { p.reason { (error) } }
        @if !image.log.is_empty() {
            details { summary { "Build log" } pre.build-log { (image.log) } }
        }
    }
}

/// A project name as one path segment (a nested project's name has slashes).
fn path_segment(name: &str) -> String {
    let mut out = String::new();
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_nested_project_name_is_one_path_segment() {
        assert_eq!(super::path_segment("apps/my app"), "apps%2Fmy%20app");
        assert_eq!(super::path_segment("six-1.16.0"), "six-1.16.0");
    }
}
