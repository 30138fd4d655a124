//! Dependency images: a project's declared dependencies (its test extra,
//! its requirements files, its build backend) and the project itself as a
//! development install, built once per hash into an image derived from the
//! runner image, reused by every run of the same inputs, and pruned.
//!
//! The project is installed editable from `RUNTIME_ROOT`, where each run
//! unpacks the project's tree, with a path `.pth` (setuptools' `compat`
//! mode, hatchling's and flit's default): the code imported is the tree the
//! run brought, and its metadata (`importlib.metadata.version`) is the one
//! installed. A change to the declaring files makes a new key, so a new
//! image; a change elsewhere (a new top-level package of a flat layout, a
//! version read from a source file) needs a rebuild (`rebuild`).
//!
//! A tree a client sent whose metadata is static (`static_meta.rs`) is the
//! exception: pip never builds it, the server writes its install
//! (`own_files.rs`), and its image is keyed by its declaring files alone.

mod build;
mod context;
pub mod declaration;
mod declared;
pub mod egress;
mod own_files;
pub mod requirements;
mod static_meta;
mod step;
pub mod store;

use std::time::Duration;

use anyhow::Result;
use sqlx::PgPool;

pub use build::{failure_line, LABEL_DATABASE, LABEL_INSTALLATION, LABEL_KEY, LABEL_PROJECT};
pub use context::MAX_TREE_BYTES;
pub use declared::{DeclaringFile, ProjectSource};

use crate::{config::DependencyBuildConfig, engine::Engine};

/// Where a run's container holds the project's root (the runner unpacks
/// the tree there); the editable install points at it.
pub const RUNTIME_ROOT: &str = "/tmp/work";
/// The virtual environment of a dependency image (it sees the runner image's
/// own packages, pytest among them).
pub const VENV: &str = "/opt/venv";
/// Image repositories are `te-deps/<project>`.
const REPOSITORY_PREFIX: &str = "te-deps";
/// How often a run waiting for another process's build looks again.
const WAIT_POLL: Duration = Duration::from_millis(500);
/// How often a build's output so far is stored for the pages that show it.
const LIVE_EVERY: Duration = Duration::from_secs(1);
/// A failed build is answered from its row for this long (many waiting runs
/// get the same answer); after it the next run tries again, in case the
/// index was unreachable.
const FAILURE_REUSED_FOR: time::Duration = time::Duration::minutes(10);

/// The image a run of the project uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `repo:tag`, or the base image when the project declares nothing.
    pub image: String,
    /// The dependency key, `None` for the base image.
    pub key: Option<String>,
    /// Whether this call built it.
    pub built: bool,
}

/// Why a project's image could not be had; `reason` is one line for the
/// run's reason (pip's own when pip said why).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason}")]
pub struct BuildFailure {
    pub reason: String,
    pub key: Option<String>,
}

impl BuildFailure {
    fn new(reason: impl Into<String>, key: Option<&str>) -> BuildFailure {
        BuildFailure {
            reason: reason.into(),
            key: key.map(str::to_owned),
        }
    }

    fn infra(err: anyhow::Error, key: Option<&str>) -> BuildFailure {
        tracing::error!("dependency image: {err:#}");
        BuildFailure::new(format!("could not get the dependency image: {err:#}"), key)
    }
}

/// The dependency key of the project on this base image for this
/// installation, or `None` when the project declares nothing (its runs use
/// the base image).
pub async fn key_of(
    db: &PgPool,
    engine: &Engine,
    base_image: &str,
    project: &ProjectSource,
) -> Result<Option<String>> {
    if !project.declares_anything() {
        return Ok(None);
    }
    let base_id = engine
        .image_id(base_image)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the runner image {base_image} is missing"))?;
    let installation = store::installation(db).await?;
    Ok(Some(project.key(&installation, &base_id)))
}

/// The image for a run of `project`: the base image when it declares
/// nothing, else its dependency image, built now if no process built it
/// before (one build per key, even with many callers in many processes).
#[tracing::instrument(skip_all, fields(project = %project.name))]
pub async fn ensure_image(
    db: &PgPool,
    engine: &Engine,
    settings: &DependencyBuildConfig,
    base_image: &str,
    project: &ProjectSource,
) -> Result<ImageRef, BuildFailure> {
    if !project.declares_anything() {
        return Ok(ImageRef {
            image: base_image.to_owned(),
            key: None,
            built: false,
        });
    }
    let key = key_of(db, engine, base_image, project)
        .await
        .map_err(|e| BuildFailure::infra(e, None))?
        .expect("a project with pip arguments has a key");
    let failure = |e| BuildFailure::infra(e, Some(&key));
    loop {
        if let Some(answer) = reuse(db, engine, &key).await.map_err(failure)? {
            return answer;
        }
        if store::locked(db, &key).await.map_err(failure)? {
            tokio::time::sleep(WAIT_POLL).await;
            continue;
        }
        // The lock lives on a connection of its own, taken out of the pool:
        // if this future is dropped mid-build, the connection closes and the
        // lock goes with it (a pooled one would keep it).
        let mut conn = db.acquire().await.map_err(|e| failure(e.into()))?.detach();
        if !store::try_lock(&mut conn, &key).await.map_err(failure)? {
            continue;
        }
        // Another process may have finished between the look and the lock.
        if let Some(answer) = reuse(db, engine, &key).await.map_err(failure)? {
            return answer;
        }
        if let Err(err) = remove_orphan_builders(db, engine).await {
            tracing::warn!("removing dependency builders left by dead processes: {err:#}");
        }
        let built = build_locked(db, engine, settings, base_image, project, &key).await;
        drop(conn);
        if built.is_ok() {
            let group = project.prune_group();
            if let Err(err) = prune(db, engine, &group, settings.deps_keep_images).await {
                tracing::warn!("pruning dependency images: {err:#}");
            }
        }
        return built;
    }
}

/// What an existing row answers: a ready image that is still there and
/// carries this key and installation in its labels, or a recent failure;
/// `None` when a build is needed.
async fn reuse(
    db: &PgPool,
    engine: &Engine,
    key: &str,
) -> Result<Option<Result<ImageRef, BuildFailure>>> {
    let Some(row) = store::get(db, key).await? else {
        return Ok(None);
    };
    match row.state.as_str() {
        "ready" if ours(db, engine, &row.image, key).await? => {
            store::touch(db, key).await?;
            Ok(Some(Ok(ImageRef {
                image: row.image,
                key: Some(row.key),
                built: false,
            })))
        }
        "failed"
            if row
                .finished_at
                .is_some_and(|t| time::OffsetDateTime::now_utc() - t < FAILURE_REUSED_FOR) =>
        {
            let reason = row
                .error
                .unwrap_or_else(|| "the dependency build failed".into());
            Ok(Some(Err(BuildFailure::new(reason, Some(key)))))
        }
        _ => Ok(None),
    }
}

/// Whether `image` exists and was built for `key` by this installation: an
/// image of the same tag made elsewhere (another installation on the same
/// engine, or by hand) is not taken.
async fn ours(db: &PgPool, engine: &Engine, image: &str, key: &str) -> Result<bool> {
    let Some(facts) = engine.image_facts(image).await? else {
        return Ok(false);
    };
    let installation = store::installation(db).await?;
    let label = |name: &str| facts.labels.get(name).map(String::as_str);
    Ok(label(LABEL_KEY) == Some(key) && label(LABEL_INSTALLATION) == Some(installation.as_str()))
}

async fn build_locked(
    db: &PgPool,
    engine: &Engine,
    settings: &DependencyBuildConfig,
    base_image: &str,
    project: &ProjectSource,
    key: &str,
) -> Result<ImageRef, BuildFailure> {
    let repo = format!("{REPOSITORY_PREFIX}/{}", slug(&project.name));
    let tag = &key[..20];
    let image = format!("{repo}:{tag}");
    let failure = |e| BuildFailure::infra(e, Some(key));
    store::start(db, key, &project.name, &project.prune_group(), &image)
        .await
        .map_err(failure)?;
    tracing::info!(%image, "building the dependency image");
    let started = std::time::Instant::now();
    let database = store::database_name(db).await.map_err(failure)?;
    let installation = store::installation(db).await.map_err(failure)?;
    let owner = build::Owner {
        key,
        database: &database,
        installation: &installation,
    };
    let live = step::Live::default();
    let showing = tokio::spawn(show_live(db.clone(), key.to_owned(), live.clone()));
    let result = build::run(
        engine,
        settings,
        base_image,
        project,
        owner,
        (&repo, tag),
        live,
    )
    .await;
    showing.abort();
    match result {
        Ok(built) => {
            store::finish(db, key, built.size_bytes, &built.log, None)
                .await
                .map_err(failure)?;
            tracing::info!(%image, secs = started.elapsed().as_secs_f64(), "dependency image built");
            Ok(ImageRef {
                image,
                key: Some(key.to_owned()),
                built: true,
            })
        }
        Err(failed) => {
            store::finish(db, key, None, &failed.log, Some(&failed.reason))
                .await
                .map_err(failure)?;
            tracing::warn!(%image, reason = %failed.reason, "dependency build failed");
            Err(BuildFailure::new(failed.reason, Some(key)))
        }
    }
}

/// Stores the build's output so far in its row every second while it
/// changes, for the pages of the runs waiting for it (aborted when the
/// build ends; its end stores the whole log).
async fn show_live(db: PgPool, key: String, live: step::Live) {
    let mut shown = 0;
    let mut every = tokio::time::interval(LIVE_EVERY);
    loop {
        every.tick().await;
        let (version, text) = live.snapshot();
        if version == shown {
            continue;
        }
        match store::progress(&db, &key, &text).await {
            Ok(()) => shown = version,
            Err(err) => tracing::debug!("storing a build's output so far: {err:#}"),
        }
    }
}

/// What a run waiting on the build of `key` says, e.g.
/// "installing dependencies (42 s)"; `None` when it is not being built.
pub async fn waiting_for(db: &PgPool, key: &str) -> Result<Option<String>> {
    Ok(store::get(db, key)
        .await?
        .filter(|row| row.state == "building")
        .map(|row| waiting_text(row.build_duration().whole_seconds().max(0))))
}

pub fn waiting_text(seconds: i64) -> String {
    format!("installing dependencies ({seconds} s)")
}

/// Removes the images of a prune group (`ProjectSource::prune_group`: a
/// catalog project's name) beyond the `keep` most recently used, and
/// this installation's untagged ones (an image rebuilt while a container
/// used it loses its tag to the new one), except those a container
/// (running or not) still uses.
pub async fn prune(db: &PgPool, engine: &Engine, group: &str, keep: usize) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for old in store::beyond_newest(db, group, keep).await? {
        if old.state == "failed" || engine.remove_image(&old.image).await? {
            store::forget(db, &old.key).await?;
            removed.push(old.image);
        }
    }
    let ours = format!("{LABEL_DATABASE}={}", store::database_name(db).await?);
    for id in engine.dangling_images_labelled(&ours).await? {
        if engine.remove_image(&id).await? {
            removed.push(id);
        }
    }
    Ok(removed)
}

/// Removes builder containers whose builder is gone (a process killed
/// mid-build): no process holds their key's lock. The reconciler may call
/// it too; every build does.
pub async fn remove_orphan_builders(db: &PgPool, engine: &Engine) -> Result<usize> {
    let mut removed = 0;
    let ours = store::database_name(db).await?;
    for (id, name, labels) in engine.containers_labelled(LABEL_KEY).await? {
        // Containers of a dependency image carry its labels too: only a
        // builder has a builder's name.
        let (Some(key), Some(database)) = (labels.get(LABEL_KEY), labels.get(LABEL_DATABASE))
        else {
            continue;
        };
        if !name.starts_with(build::BUILDER_PREFIX) {
            continue;
        }
        if *database == ours && key.len() >= 7 && !store::locked(db, key).await? {
            engine.remove(&id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// The operators' rebuild: forgets the key's image (removing it unless in
/// use), so the next run builds it again.
pub async fn rebuild(db: &PgPool, engine: &Engine, key: &str) -> Result<bool> {
    let Some(row) = store::get(db, key).await? else {
        return Ok(false);
    };
    if row.state == "building" {
        return Ok(false);
    }
    engine.remove_image(&row.image).await?;
    store::forget(db, key).await
}

/// A project name as a Docker repository component: lowercase letters,
/// digits and single dashes, at most 40 characters.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out: String = out.trim_matches('-').chars().take(40).collect();
    let out = out.trim_end_matches('-').to_owned();
    if out.is_empty() {
        "project".into()
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_become_valid_repository_names() {
        assert_eq!(slug("My Project_2"), "my-project-2");
        assert_eq!(slug("../..//"), "project");
        assert_eq!(slug(&"x".repeat(80)).len(), 40);
    }

    #[test]
    fn the_waiting_text_counts_seconds() {
        assert_eq!(waiting_text(42), "installing dependencies (42 s)");
    }
}
