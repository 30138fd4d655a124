//! JSON API for projects: `GET /api/v1/projects`, and the operators'
//! `POST /api/v1/projects/{name}/rebuild`.

use axum::{extract::State, http::StatusCode};
use serde::Serialize;

use crate::{
    dependencies::{self, store::DependencyImage},
    error::AppResult,
    operators::Operator,
    state::AppState,
    web::extract::{Json, Path},
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct ProjectJson {
    pub name: String,
    pub root: String,
    pub markers: Vec<String>,
    /// How many test files the catalog lists in it.
    pub files: usize,
    /// Its most recently used dependency image, if it ever needed one.
    pub dependency_image: Option<ImageJson>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ImageJson {
    /// `building`, `ready` or `failed`.
    pub state: String,
    pub image: String,
    pub size_bytes: Option<i64>,
    pub build_secs: i64,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<time::OffsetDateTime>,
    pub error: Option<String>,
    /// The build's output (its head and tail), for the page.
    #[serde(skip)]
    pub log: String,
}

impl From<DependencyImage> for ImageJson {
    fn from(image: DependencyImage) -> ImageJson {
        ImageJson {
            build_secs: image.build_duration().whole_seconds(),
            state: image.state,
            image: image.image,
            size_bytes: image.size_bytes,
            finished_at: image.finished_at,
            error: image.error,
            log: image.log,
        }
    }
}

/// Each project with its test-file count and dependency image, by name.
pub async fn listed(state: &AppState) -> AppResult<Vec<ProjectJson>> {
    let mut images = dependencies::store::newest_per_project(&state.db).await?;
    Ok(state
        .catalog
        .listing()
        .await?
        .groups()
        .iter()
        .filter_map(|group| {
            let project = group.project.clone()?;
            let dependency_image = images
                .iter()
                .position(|i| i.project == project.name)
                .map(|at| images.swap_remove(at).into());
            Some(ProjectJson {
                name: project.name,
                root: project.root,
                markers: project.markers,
                files: group.files.len(),
                dependency_image,
            })
        })
        .collect())
}

/// Each project under `TESTS_DIR`, by name.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects",
    responses((status = 200, body = [ProjectJson])))]
pub async fn list(State(state): State<AppState>) -> AppResult<Json<Vec<ProjectJson>>> {
    Ok(Json(listed(&state).await?))
}

/// `POST /api/v1/projects/{name}/rebuild` (operators): 202 once the old
/// image is forgotten and the new build has started.
#[utoipa::path(post, path = "/api/v1/projects/{name}/rebuild", tag = "projects",
    params(("name" = String, Path, description = "the project's name")),
    security(("operator_token" = [])),
    responses(
        (status = 202, body = super::rebuild::Rebuilding),
        (status = 401, description = "no or a wrong operator token", body = crate::error::ErrorBody),
        (status = 404, description = "no such project", body = crate::error::ErrorBody),
        (status = 409, description = "no image yet, or one being built", body = crate::error::ErrorBody)))]
pub async fn rebuild(
    State(state): State<AppState>,
    _: Operator,
    Path(name): Path<String>,
) -> AppResult<(StatusCode, Json<super::rebuild::Rebuilding>)> {
    let rebuilding = super::rebuild::rebuild(&state, &name).await?;
    Ok((StatusCode::ACCEPTED, Json(rebuilding)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TestFileJson {
    path: String,
    /// The project it belongs to; `null` outside any.
    project: Option<String>,
}

/// `GET /api/v1/test-files`: every file the catalog lists, sorted by path.
#[utoipa::path(get, path = "/api/v1/test-files", tag = "projects",
    responses((status = 200, body = [TestFileJson])))]
pub async fn test_files(State(state): State<AppState>) -> AppResult<Json<Vec<TestFileJson>>> {
    let listing = state.catalog.listing().await?;
    let mut files: Vec<TestFileJson> = listing
        .groups()
        .iter()
        .flat_map(|group| {
            let project = group.project.as_ref().map(|p| p.name.clone());
            group.files.iter().map(move |f| TestFileJson {
                path: f.as_str().to_owned(),
                project: project.clone(),
            })
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(files))
}
