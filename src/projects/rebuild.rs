//! The operators' rebuild of a project's dependency image: the image is
//! forgotten (and removed, with this process's warm containers of it), and
//! a new build starts at once in the background (in a process with an
//! executor; in a web-only one, the next run builds it); runs that arrive
//! meanwhile wait for it as for any build.

use serde::Serialize;

use crate::{
    dependencies::{self, ProjectSource},
    error::{AppError, AppResult},
    state::AppState,
};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rebuilding {
    pub project: String,
    /// The image forgotten.
    pub previous_image: String,
}

pub async fn rebuild(state: &AppState, name: &str) -> AppResult<Rebuilding> {
    let project = state
        .catalog
        .listing()
        .await?
        .project(name)
        .ok_or_else(|| AppError::NotFound(format!("no project named {name:?}")))?;
    let newest = dependencies::store::for_project(&state.db, name)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            AppError::Conflict(format!(
                "project {name} has no dependency image yet: its next run builds one"
            ))
        })?;
    if newest.state == "building" {
        return Err(AppError::Conflict(format!(
            "project {name}'s dependency image is being built; wait for the build to end"
        )));
    }
    if let Some(executor) = &state.executor {
        executor.forget_image(&newest.image).await;
    }
    if !dependencies::rebuild(&state.db, &state.engine, &newest.key).await? {
        return Err(AppError::Conflict(format!(
            "project {name}'s dependency image is being built; wait for the build to end"
        )));
    }
    tracing::info!(project = name, image = %newest.image, "dependency image rebuild asked by an operator");
    // The build writes what only workers write: it runs with the
    // executor's pool, and in a web-only process at the next run.
    let Some(db) = state.executor.as_ref().map(|e| e.db().clone()) else {
        return Ok(Rebuilding {
            project: name.to_owned(),
            previous_image: newest.image,
        });
    };
    let root = project.dir(state.catalog.root());
    let (engine, config) = (state.engine.clone(), state.config.clone());
    let project_name = name.to_owned();
    tokio::spawn(async move {
        let source =
            tokio::task::spawn_blocking(move || ProjectSource::discover(&project_name, &root))
                .await;
        let source = match source {
            Ok(Ok(source)) => source,
            Ok(Err(err)) => {
                tracing::warn!("rebuild: reading the project's dependency files: {err:#}");
                return;
            }
            Err(err) => {
                tracing::warn!("rebuild: {err}");
                return;
            }
        };
        if let Err(failure) = dependencies::ensure_image(
            &db,
            &engine,
            &config.dependencies,
            &config.runner_image,
            &source,
        )
        .await
        {
            tracing::warn!(reason = %failure.reason, "rebuild failed");
        }
    });
    Ok(Rebuilding {
        project: name.to_owned(),
        previous_image: newest.image,
    })
}
