//! Turning what a person asked for into a queued run: every field checked
//! before anything is written.

use serde::Deserialize;

use crate::store::{runs::NewRun, shards::Wanted, Run, Username};
use crate::{
    catalog::{Catalog, Project, Selection, TreeError},
    dependencies::ProjectSource,
    environment_id::EnvironmentId,
    error::{AppError, AppResult},
    state::AppState,
};

/// A request to run files, as the API and the form send it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct RunRequest {
    pub username: String,
    pub environment_id: i64,
    /// Test files: as the catalog names them, or with `tree_id` paths
    /// within the tree (none: every test file the catalog's rules find in it).
    #[serde(default)]
    pub files: Vec<String>,
    /// A tree sent by a client (`POST /api/v1/trees`) instead of the
    /// server's tests folder: the run is of that tree, a project like any other.
    #[serde(default)]
    pub tree_id: Option<String>,
    #[serde(default)]
    pub queue_if_busy: bool,
    /// Only these tests (pytest node ids, e.g. `tests/test_a.py::test_x[1]`,
    /// their paths as pytest names them: within a project, from its root);
    /// each must be in one of `files`. Without it, every test of the files.
    #[serde(default)]
    pub node_ids: Option<Vec<String>>,
    /// Split the tests over several environments: at most this many (the
    /// asked one first, then others free now), or exactly these ids (each
    /// if free now). The run becomes a parent of shard runs that take the
    /// tests one at a time, longest recorded first.
    #[serde(default)]
    pub shards: Option<ShardsRequest>,
}

/// `"shards": 3` or `"shards": [3, 4, 7]`.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum ShardsRequest {
    Count(i64),
    Environments(Vec<i64>),
}

impl ShardsRequest {
    fn wanted(&self, asked: EnvironmentId) -> AppResult<Wanted> {
        let most = crate::store::shards::MAX_SHARDS;
        match self {
            ShardsRequest::Count(n) if (1..=most as i64).contains(n) => {
                Ok(Wanted::Count(*n as usize))
            }
            ShardsRequest::Count(_) => Err(AppError::Invalid(format!(
                "shards: ask for 1 to {most} environments"
            ))),
            ShardsRequest::Environments(ids) if !ids.is_empty() && ids.len() <= most => {
                let mut parsed: Vec<EnvironmentId> = Vec::with_capacity(ids.len());
                for id in ids {
                    let id = EnvironmentId::try_from(*id)?;
                    if !parsed.contains(&id) {
                        parsed.push(id);
                    }
                }
                if !parsed.contains(&asked) {
                    return Err(AppError::Invalid(format!(
                        "shards: the list must hold environment_id ({asked})"
                    )));
                }
                Ok(Wanted::These(parsed))
            }
            ShardsRequest::Environments(_) => Err(AppError::Invalid(format!(
                "shards: list 1 to {most} environment ids"
            ))),
        }
    }
}

/// Node ids a run may name (a rerun of a run's failed tests takes at most
/// this many), and the longest one.
pub const MAX_NODE_IDS: usize = 1000;
const MAX_NODE_ID_BYTES: usize = 512;

impl RunRequest {
    pub async fn validate(&self, state: &AppState) -> AppResult<NewRun> {
        let username = Username::parse(&self.username)?;
        let environment_id = EnvironmentId::try_from(self.environment_id)?;
        let (catalog, tree_id) = match &self.tree_id {
            Some(id) => (tree_catalog(state, id, true).await?, Some(id.clone())),
            None => (state.catalog.clone(), None),
        };
        let listing = catalog.listing().await?;
        let files = match (&tree_id, self.files.is_empty()) {
            (Some(_), true) => listing
                .files()
                .iter()
                .map(|f| f.as_str().to_owned())
                .collect(),
            _ => self.files.clone(),
        };
        let selection = listing.resolve(&files)?;
        let node_ids = match &self.node_ids {
            Some(ids) => Some(check_node_ids(&selection, ids)?),
            None => None,
        };
        let (file_sha256, tree_sha256) =
            hashes(state, &catalog, selection.clone(), tree_id.clone()).await?;
        Ok(NewRun {
            node_ids,
            rerun_of: None,
            check: None,
            shard: None,
            username,
            environment_id,
            files: selection.files,
            file_sha256,
            queue_if_busy: self.queue_if_busy,
            project: selection.project.map(|p| p.name),
            tree_sha256,
            tree_id,
        })
    }
}

/// The catalog of a stored tree, checked out; `touch` when a run uses it
/// (a form only showing its files keeps it no longer).
pub(super) async fn tree_catalog(state: &AppState, id: &str, touch: bool) -> AppResult<Catalog> {
    let mut tree = super::tree_api::find(state, id).await?;
    if touch {
        tree = crate::trees::store::touch(&state.db, &tree.id).await?;
    }
    let root = crate::trees::checkout::checkout(&state.db, &tree).await?;
    Ok(Catalog::new(root).with_caps(state.config.project_caps()))
}

/// Each node id names a test of one of the chosen files, as pytest sees
/// the file in the run's container (within a project, from its root).
fn check_node_ids(selection: &Selection, ids: &[String]) -> AppResult<Vec<String>> {
    if ids.is_empty() || ids.len() > MAX_NODE_IDS {
        return Err(AppError::Invalid(format!(
            "node_ids: name 1 to {MAX_NODE_IDS} tests, or leave it out to run every test of the files"
        )));
    }
    let paths: Vec<&str> = selection
        .files
        .iter()
        .map(|f| match &selection.project {
            Some(project) => project.relative(f.as_str()).unwrap_or(f.as_str()),
            None => f.as_str(),
        })
        .collect();
    for id in ids {
        let file = id.split("::").next().unwrap_or_default();
        let clean = id.len() <= MAX_NODE_ID_BYTES
            && !id.starts_with('-')
            && !id.chars().any(char::is_control);
        if !clean || !paths.contains(&file) {
            return Err(AppError::Invalid(format!(
                "node_ids: {:?} is not a test of the chosen files ({}): a node id is a file's path as pytest names it, then `::` and the test",
                id.chars().take(200).collect::<String>(),
                paths.join(", ")
            )));
        }
    }
    Ok(ids.to_vec())
}

/// Hashes the chosen files and the project's tree, off the async threads.
/// A file that cannot be read, or a tree over a cap, is refused (422), so a
/// person is told at once rather than when the run starts.
async fn hashes(
    state: &AppState,
    catalog: &Catalog,
    selection: Selection,
    tree_id: Option<String>,
) -> AppResult<(Vec<String>, Option<String>)> {
    let catalog = catalog.clone();
    let offered = state.config.dependencies.service_images.names();
    tokio::task::spawn_blocking(move || {
        let files = catalog
            .sha256(&selection.files)
            .map_err(|e| AppError::Invalid(e.to_string()))?;
        let tree = match &selection.project {
            Some(project) => {
                check_declaration(&catalog, project, &offered, tree_id.as_deref())?;
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
/// is queued; so is a service whose image this server does not offer, and
/// a tree's static metadata with a value refused (`static_meta.rs`).
fn check_declaration(
    catalog: &Catalog,
    project: &Project,
    offered: &[String],
    tree_id: Option<&str>,
) -> AppResult<()> {
    let source = ProjectSource::discover(&project.name, &project.dir(catalog.root()))
        .map_err(|e| AppError::Invalid(format!("project {}: {e:#}", project.name)))?;
    let source = match tree_id {
        Some(id) => source.of_tree(id),
        None => source,
    };
    if let Some(refused) = source.refused_metadata() {
        return Err(AppError::Invalid(format!(
            "project {}: {refused}",
            project.name
        )));
    }
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
    let Some(shards) = &request.shards else {
        let new = request.validate(state).await?;
        return queue(state, &new).await;
    };
    let wanted = shards.wanted(EnvironmentId::try_from(request.environment_id)?)?;
    if request.node_ids.is_some() {
        return Err(AppError::Invalid(
            "node_ids and shards cannot go together: a sharded run takes every test of its files"
                .into(),
        ));
    }
    let new = request.validate(state).await?;
    let run =
        crate::store::shards::create(&state.db, &new, wanted, state.config.queue_caps()).await?;
    if let Some(executor) = &state.executor {
        executor.wake();
    }
    Ok(run)
}

/// Queues a checked run and wakes the executor.
pub(super) async fn queue(state: &AppState, new: &NewRun) -> AppResult<Run> {
    let run = crate::store::runs::create(&state.db, new, state.config.queue_caps()).await?;
    if let Some(executor) = &state.executor {
        executor.wake();
    }
    Ok(run)
}

/// Cancels a run and kills its container if it is running here.
pub async fn cancel(state: &AppState, run_id: i64, by: &str) -> AppResult<Run> {
    let run = crate::store::runs::get(&state.db, run_id).await?;
    if !run.status.is_active() {
        return Err(AppError::Conflict(format!(
            "run #{run_id} has already finished ({})",
            run.status.label()
        )));
    }
    let previous = crate::store::runs::cancel(&state.db, run_id, by).await?;
    if previous.is_some() {
        if let Some(executor) = &state.executor {
            executor.cancel(run_id);
        }
    }
    // A running run ends once its container is seen dead: usually well
    // within this, so the answer shows it cancelled.
    let within = match previous {
        Some(crate::store::RunStatus::Running) => std::time::Duration::from_secs(5),
        _ => std::time::Duration::ZERO,
    };
    crate::store::runs::wait_until_over(&state.db, run_id, within).await
}
