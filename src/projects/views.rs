//! The projects page (`/projects`): each project under the tests folder with
//! its root, the markers that made it one and its test files.

use axum::extract::State;
use maud::{html, Markup};

use crate::{
    state::AppState,
    web::{
        components::timestamp,
        html_error::PageResult,
        page::{page, Nav},
    },
};

pub async fn index(State(state): State<AppState>) -> PageResult<Markup> {
    let projects = super::api::listed(&state).await?;
    let tests_dir = state.config.tests_dir.display().to_string();
    Ok(page(
        "Projects",
        Nav::Projects,
        html! {
            h1 { "Projects" }
            p.muted {
                "A project is a folder under " code { (tests_dir) } " holding "
                code { "pyproject.toml" } ", " code { "setup.py" } ", " code { "setup.cfg" } ", "
                code { "pytest.ini" } ", " code { "tox.ini" } " or " code { "requirements*.txt" }
                ". A run of its files receives its whole tree (less .git, virtualenvs, caches, "
                "build outputs and what .gitignore excludes) and runs pytest from its root."
            }
            @if projects.is_empty() {
                p { "No projects: every test file runs with the conftest files above it." }
            } @else {
                div.overflow-auto {
                    table.projects {
                        thead { tr {
                            th { "Project" } th { "Root" } th { "Markers" } th { "Test files" }
                            th { "Dependencies" }
                        } }
                        tbody {
                            @for p in &projects {
                                tr data-project=(p.name) {
                                    td { strong { (p.name) } }
                                    td { code { (p.root) } }
                                    td { @for (i, m) in p.markers.iter().enumerate() {
                                        @if i > 0 { " " } code { (m) }
                                    } }
                                    td { a href="/runs/new" { (p.files) } }
                                    td { (dependency_cell(p.dependency_image.as_ref())) }
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
