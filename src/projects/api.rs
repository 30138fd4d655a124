//! JSON API for projects: `GET /api/v1/projects`.

use axum::extract::State;
use serde::Serialize;

use crate::{error::AppResult, server::AppState, web::extract::Json};

#[derive(Serialize)]
pub struct ProjectJson {
    pub name: String,
    pub root: String,
    pub markers: Vec<String>,
    /// How many test files the catalog lists in it.
    pub files: usize,
}

/// Each project with its test-file count, by name.
pub fn listed(state: &AppState) -> AppResult<Vec<ProjectJson>> {
    Ok(state
        .catalog
        .groups()?
        .into_iter()
        .filter_map(|group| {
            let project = group.project?;
            Some(ProjectJson {
                name: project.name,
                root: project.root,
                markers: project.markers,
                files: group.files.len(),
            })
        })
        .collect())
}

pub async fn list(State(state): State<AppState>) -> AppResult<Json<Vec<ProjectJson>>> {
    Ok(Json(listed(&state)?))
}
