//! Turning what a person asked for into a queued run: every field checked
//! before anything is written.

use serde::Deserialize;

use super::{NewRun, Run, Username};
use crate::{
    catalog::{Catalog, Project, Selection, TreeError},
    dependencies::ProjectSource,
    environments::EnvironmentId,
    error::{AppError, AppResult},
    state::AppState,
};

/// A request to run files, as the API and the form send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RunRequest {
    pub username: String,
    pub environment_id: i64,
    pub files: Vec<String>,
    #[serde(default)]
    pub queue_if_busy: bool,
}

impl RunRequest {
    async fn validate(&self, state: &AppState) -> AppResult<NewRun> {
        let username = Username::parse(&self.username)?;
        let environment_id = EnvironmentId::try_from(self.environment_id)?;
        let selection = state.catalog.listing().await?.resolve(&self.files)?;
        let (file_sha256, tree_sha256) = hashes(state, selection.clone()).await?;
        Ok(NewRun {
            username,
            environment_id,
            files: selection.files,
            file_sha256,
            queue_if_busy: self.queue_if_busy,
            project: selection.project.map(|p| p.name),
            tree_sha256,
        })
    }
}

/// Hashes the chosen files and the project's tree, off the async threads.
/// A file that cannot be read, or a tree over a cap, is refused (422), so a
/// person is told at once rather than when the run starts.
async fn hashes(
    state: &AppState,
    selection: Selection,
) -> AppResult<(Vec<String>, Option<String>)> {
    let catalog = state.catalog.clone();
    let offered = state.config.dependencies.service_images.names();
    tokio::task::spawn_blocking(move || {
        let files = catalog
            .sha256(&selection.files)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let tree = match &selection.project {
            Some(project) => {
                check_declaration(&catalog, project, &offered)?;
                Some(tree_sha256(&catalog, project)?)
            }
            None => None,
        };
        Ok((files, tree))
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("hashing a run's files: {e}")))?
}

/// A project's `test-executor.toml` (or `[tool.test-executor]`) with an
/// unknown key or a bad value is refused, naming the key, before the run
/// is queued; so is a service whose image this server does not offer.
fn check_declaration(catalog: &Catalog, project: &Project, offered: &[String]) -> AppResult<()> {
    let source = ProjectSource::discover(&project.name, &project.dir(catalog.root()))
        .map_err(|e| AppError::Invalid(format!("project {}: {e:#}", project.name)))?;
    source
        .declaration(offered)
        .map(|_| ())
        .map_err(|invalid| AppError::Invalid(format!("project {}: {invalid}", project.name)))
}

fn tree_sha256(catalog: &Catalog, project: &Project) -> AppResult<String> {
    match catalog.hash_tree(project) {
        Ok(tree) => Ok(tree.sha256),
        Err(TreeError::TooLarge(message) | TreeError::Unreadable(message)) => {
            Err(AppError::Invalid(message))
        }
        Err(TreeError::Io(err)) => Err(AppError::Internal(err)),
    }
}

/// Validates, queues and wakes the executor.
pub async fn submit(state: &AppState, request: &RunRequest) -> AppResult<Run> {
    let new = request.validate(state).await?;
    let run = super::create(&state.db, &new, state.config.queue_caps()).await?;
    if let Some(executor) = &state.executor {
        executor.wake();
    }
    Ok(run)
}

/// Cancels a run and kills its container if it is running here.
pub async fn cancel(state: &AppState, run_id: i64, by: &str) -> AppResult<Run> {
    let run = super::get(&state.db, run_id).await?;
    if !run.status.is_active() {
        return Err(AppError::Conflict(format!(
            "run #{run_id} has already finished ({})",
            run.status.label()
        )));
    }
    let previous = crate::store::cancel(&state.db, run_id, by).await?;
    if previous.is_some() {
        if let Some(executor) = &state.executor {
            executor.cancel(run_id);
        }
    }
    // A running run ends once its container is seen dead: usually well
    // within this, so the answer shows it cancelled.
    let within = match previous {
        Some(super::RunStatus::Running) => std::time::Duration::from_secs(5),
        _ => std::time::Duration::ZERO,
    };
    crate::store::wait_until_over(&state.db, run_id, within).await
}
