//! Drives one run from claimed to finished: create the sandbox, attach,
//! start, send the files, follow the container (`follow`), then record the
//! outcome — retrying through a database outage — and have the container
//! removed (at once if it may still run, else behind the next runs).
//! A run whose end cannot be vouched for is left to the reconciler.

use std::{collections::HashMap, sync::Arc, time::Duration};

use anyhow::{Context, Result};
use bollard::container::AttachContainerResults;
use time::OffsetDateTime;
use tokio::{io::AsyncWriteExt, task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use crate::{
    catalog::Catalog,
    dependencies::{self, declaration::Service, ProjectSource},
    engine::{Extras, DEFAULT_CPU_SHARES, LABEL_INSTANCE, LABEL_RUN},
    limits::DEFAULT_LIMITS,
    store::lifecycle::{self, ClaimedRun, Outcome},
};

use super::{
    follow::{follow, GaveUp},
    payload, services, shard_feed, source, writer, Shared,
};

/// How long a run waits for a warm container being started when none is
/// ready: less than a container made for it would take to start.
const WAIT_FOR_STARTING: Duration = Duration::from_millis(250);

pub fn container_name(instance: &str, run_id: i64) -> String {
    format!("te-{instance}-run-{run_id}")
}

/// Executes a freshly claimed run.
#[tracing::instrument(skip_all, fields(run_id = run.id))]
pub async fn execute(shared: Arc<Shared>, run: ClaimedRun, cancel: CancellationToken) {
    let name = container_name(&shared.instance, run.id);
    let result = start_and_follow(&shared, &run, &name, cancel).await;
    conclude(&shared, &run, &name, result).await;
    services::remove(&shared, run.id).await;
}

/// Picks up a run whose executor died, from its container's logs.
#[tracing::instrument(skip_all, fields(run_id = run.id))]
pub async fn resume(shared: Arc<Shared>, run: ClaimedRun, cancel: CancellationToken) {
    let name = container_name(&shared.instance, run.id);
    tracing::info!("resuming run from its container");
    let output = shared.engine.follow_logs(&name);
    let elapsed = run.started_at.map_or(Duration::ZERO, |t| {
        (OffsetDateTime::now_utc() - t)
            .try_into()
            .unwrap_or(Duration::ZERO)
    });
    let limit = Duration::from_secs(run.limits.timeout_secs as u64);
    let deadline = Instant::now() + limit.saturating_sub(elapsed);
    // A resumed shard's stdin is gone: its runner reads the end of it and
    // ends its share; its tests stay in the queue for the other shards.
    let result = follow(
        &shared,
        &run,
        &name,
        (output, None),
        deadline,
        cancel,
        Some(0),
    )
    .await
    .map_err(RunError::Executor);
    conclude(&shared, &run, &name, result).await;
}

async fn start_and_follow(
    shared: &Arc<Shared>,
    run: &ClaimedRun,
    name: &str,
    cancel: CancellationToken,
) -> Result<Outcome, RunError> {
    let catalog = source::catalog_for(shared, run)
        .await
        .map_err(RunError::Setup)?;
    // A project's tree may be tens of MiB: read it off the async threads.
    let (for_payload, claimed) = (catalog.clone(), run.clone());
    let offered = shared.config.dependencies.service_images.names();
    let prepared =
        tokio::task::spawn_blocking(move || payload::for_run(&for_payload, &claimed, &offered))
            .await
            .context("reading the run's files")?
            .map_err(|e| RunError::Setup(format!("{e:#}")))?;
    let image = image_for(shared, &catalog, run).await?;
    lifecycle::record_start(&shared.db, run.id, &image, prepared.tree_sha256.as_deref()).await?;
    let payload = prepared.tar;
    let (attached, warm, cpu_before) =
        sandbox(shared, run, (name, &image), &prepared.services, &cancel).await?;
    let deadline = Instant::now() + Duration::from_secs(run.limits.timeout_secs as u64);
    let (asker, writer) = send_files(shared, run, payload, attached.input);
    let ready_at = OffsetDateTime::now_utc();
    let mut finished = follow(
        shared,
        run,
        name,
        (attached.output, asker),
        deadline,
        cancel,
        cpu_before,
    )
    .await;
    if let Ok(finished) = &mut finished {
        finished.ready_at = Some(ready_at);
        finished.warm = Some(warm);
    }
    if let Ok(Err(err)) = writer.await {
        tracing::debug!(error = %err, "writing the files to the container's stdin");
    }
    finished.map_err(RunError::Executor)
}

/// Writes the files to the container's stdin, on the side so a full pipe can
/// never stall the output loop (the runner reads the whole tar before it
/// prints much). A shard's stdin stays open after it: its tests come that
/// way, answered by its feed through the returned `Asker`.
fn send_files(
    shared: &Shared,
    run: &ClaimedRun,
    payload: Vec<u8>,
    mut input: shard_feed::Input,
) -> (Option<shard_feed::Asker>, JoinHandle<std::io::Result<()>>) {
    match run.shard_of {
        None => (
            None,
            tokio::spawn(async move {
                input.write_all(&payload).await?;
                input.shutdown().await
            }),
        ),
        Some(parent) => {
            let (asker, task) =
                shard_feed::start(shared.db.clone(), parent, run.id, payload, input);
            (Some(asker), task)
        }
    }
}

/// The run's container, attached: a warm one when there is one of its image
/// (and whether it was, and the CPU it used while waiting), else a fresh one;
/// always a fresh one for a run with services, which then join it and are
/// waited for.
async fn sandbox(
    shared: &Shared,
    run: &ClaimedRun,
    (name, image): (&str, &str),
    services: &[Service],
    cancel: &CancellationToken,
) -> Result<(AttachContainerResults, bool, Option<u64>), RunError> {
    if !services.is_empty() {
        let hosts = services::hosts(services);
        let attached = start_plain(shared, run, name, image, hosts).await?;
        services::start(shared, run, name, services, cancel)
            .await
            .map_err(RunError::Setup)?;
        return Ok((attached, false, Some(0)));
    }
    if let (Some(project), true) = (&run.project, image != shared.config.runner_image) {
        shared.pool.used(project, image);
    }
    match take_warm(shared, run, name, image).await {
        Some((attached, cpu_before)) => Ok((attached, true, cpu_before)),
        None => Ok((
            start_plain(shared, run, name, image, Vec::new()).await?,
            false,
            Some(0),
        )),
    }
}

/// The image a run's container is created from: the runner image, or the
/// project's dependency image (built first if need be).
async fn image_for(
    shared: &Shared,
    catalog: &Catalog,
    run: &ClaimedRun,
) -> Result<String, RunError> {
    let Some(name) = run.project.clone() else {
        return Ok(shared.config.runner_image.clone());
    };
    let project =
        catalog.listing().await?.project(&name).ok_or_else(|| {
            RunError::Setup(format!("project {name} is no longer in the catalog"))
        })?;
    let root = project.dir(catalog.root());
    let source = tokio::task::spawn_blocking(move || ProjectSource::discover(&name, &root))
        .await
        .context("reading the project's dependency files")??;
    let source = match &run.tree_id {
        Some(id) => source.of_tree(id).built_for(&run.username),
        None => source,
    };
    if !source.declares_anything() {
        return Ok(shared.config.runner_image.clone());
    }
    let key = dependencies::key_of(
        &shared.db,
        &shared.engine,
        &shared.config.runner_image,
        &source,
    )
    .await?;
    lifecycle::installing(&shared.db, run.id, key.as_deref()).await?;
    let image = dependencies::ensure_image(
        &shared.db,
        &shared.engine,
        &shared.config.dependencies,
        &shared.config.runner_image,
        &source,
    )
    .await;
    lifecycle::installing(&shared.db, run.id, None).await?;
    match image {
        Ok(image) => Ok(image.image),
        Err(failure) => Err(RunError::Setup(format!(
            "installing the project's dependencies failed: {}",
            failure.reason
        ))),
    }
}

/// A fresh container, attached before it starts.
async fn start_plain(
    shared: &Shared,
    run: &ClaimedRun,
    name: &str,
    image: &str,
    extra_hosts: Vec<String>,
) -> Result<AttachContainerResults, RunError> {
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_string(), shared.instance.clone()),
        (LABEL_RUN.to_string(), run.id.to_string()),
    ]);
    let engine = &shared.engine;
    let missing = || {
        RunError::Setup(if image == shared.config.runner_image {
            format!("the runner image {image} is missing; `scripts/run` builds it")
        } else {
            format!("the image {image} is missing")
        })
    };
    // Made from the image's id, so that its `/usr` volume is that image's.
    let image_id = engine.image_id(image).await?.ok_or_else(missing)?;
    let usr_volume = if image == shared.config.runner_image {
        shared.usr_volumes.for_image(engine, &image_id).await
    } else {
        None
    };
    let extras = Extras {
        cpu_shares: None,
        usr_volume,
        extra_hosts,
    };
    if let Err(err) = engine
        .create_sandbox_with(name, &image_id, labels, &run.limits, &extras)
        .await
    {
        if !engine.image_exists(&image_id).await.unwrap_or(true) {
            return Err(missing());
        }
        return Err(err.into());
    }
    let attached = engine.attach(name).await?;
    engine.start(name).await?;
    Ok(attached)
}

/// A warm container of the run's image from the pool, given the run's limits
/// (and the default CPU weight; nothing to do when it was made with them)
/// and name before it receives any file, and
/// the CPU time it used while waiting (not the run's; zero if not read yet,
/// as for a container started for the run); `None` when none is ready (or
/// usable).
async fn take_warm(
    shared: &Shared,
    run: &ClaimedRun,
    name: &str,
    image: &str,
) -> Option<(AttachContainerResults, Option<u64>)> {
    while let Some(warm) = shared.pool.take(image, WAIT_FOR_STARTING).await {
        let engine = &shared.engine;
        let prepared = async {
            let state = engine.inspect(&warm.id).await?;
            anyhow::ensure!(state.is_some_and(|s| s.running), "it stopped while waiting");
            let capped =
                warm.cpu_shares == DEFAULT_CPU_SHARES && DEFAULT_LIMITS.same_caps(&run.limits);
            let limits = async {
                if capped {
                    return Ok(());
                }
                engine.update_limits(&warm.id, &run.limits).await
            };
            let (limits, renamed) = tokio::join!(limits, engine.rename(&warm.id, name));
            limits.and(renamed)
        };
        match prepared.await {
            Ok(()) => {
                let waited = warm.idle_cpu.claim();
                return Some((warm.attached, Some(waited)));
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "a warm container could not be used"
                );
                let _ = engine.remove(&warm.id).await;
            }
        }
    }
    None
}

/// Why a run ended without an outcome of its own.
#[derive(Debug)]
enum RunError {
    /// The run's own (its files, its project, its image): shown as its reason.
    Setup(String),
    /// The executor's (the engine, the database): logged, and named in the reason.
    Executor(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for RunError {
    fn from(err: E) -> Self {
        RunError::Executor(err.into())
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Setup(reason) => f.write_str(reason),
            RunError::Executor(err) => write!(f, "{err:#}"),
        }
    }
}

/// Records the outcome (or why the run could not be executed), removes the
/// container and lets the next run in line have the environment. The
/// environment is freed only once the container is known to be dead: when the
/// executor cannot tell, or cannot record the outcome, it leaves the run
/// running for the reconciler, which picks up runs no task follows.
async fn conclude(
    shared: &Shared,
    run: &ClaimedRun,
    name: &str,
    result: Result<Outcome, RunError>,
) {
    let finished = match result {
        Ok(finished) => finished,
        Err(RunError::Executor(err)) if err.is::<GaveUp>() => {
            tracing::error!(
                error = format!("{err:#}"),
                "leaving the run to the reconciler"
            );
            return;
        }
        Err(err) => {
            // The container may still be running: remove it (the engine kills
            // it) before the environment is given to anyone else.
            if let Err(removing) = shared.engine.remove(name).await {
                tracing::error!(
                    error = format!("{err:#}"),
                    removing = format!("{removing:#}"),
                    "the run failed and its container could not be removed; leaving it to the reconciler"
                );
                return;
            }
            let reason = match err {
                RunError::Setup(reason) => reason,
                RunError::Executor(err) => {
                    tracing::error!(error = format!("{err:#}"), "run failed in the executor");
                    format!("the executor could not run it: {err:#}")
                }
            };
            Outcome::error(reason)
        }
    };
    tracing::info!(status = finished.status.as_str(), reason = %finished.reason, "run finished");
    let recorded = writer::retry("recording the outcome", || {
        lifecycle::finish(&shared.db, run.id, &finished)
    })
    .await;
    if let Err(err) = recorded {
        // The container stays, so the reconciler can replay and finish it.
        tracing::error!(
            error = format!("{err:#}"),
            "recording the outcome failed; leaving the run to the reconciler"
        );
        return;
    }
    // It has exited: removed behind the next runs (`reaper`).
    shared.reaper.later(name);
    if let Err(err) = crate::store::runs::promote_waiters(&shared.db).await {
        tracing::warn!(error = %err, "promoting waiting runs");
    }
}
