//! Turning what a person asked for into a queued run: every field checked
//! before anything is written.

use serde::Deserialize;

use super::{NewRun, Run, Username};
use crate::{
    catalog::{Project, TreeError},
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
        let selection = state.catalog.resolve(&self.files)?;
        let file_sha256 = state.catalog.sha256(&selection.files)?;
        let tree_sha256 = match &selection.project {
            Some(project) => Some(tree_sha256(state, project.clone()).await?),
            None => None,
        };
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

/// Reads and hashes a project's tree, refusing it (422) when it is over a
/// cap, so an oversized project is told at once rather than when it runs.
async fn tree_sha256(state: &AppState, project: Project) -> AppResult<String> {
    let catalog = state.catalog.clone();
    let loaded = tokio::task::spawn_blocking(move || catalog.hash_tree(&project))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("reading a project's tree: {e}")))?;
    match loaded {
        Ok(tree) => Ok(tree.sha256),
        Err(TreeError::TooLarge(message)) => Err(AppError::Invalid(message)),
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
