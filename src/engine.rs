//! The Docker engine, wrapped: one method per operation, each error naming
//! the operation and the container it was for. Every call has a time limit
//! (`timed`), so an engine that stops answering never stalls a run: the
//! caller gets an error saying which operation timed out.

use std::{collections::HashMap, future::Future, time::Duration};

use anyhow::{Context, Result};
use bollard::{
    container::{AttachContainerResults, LogOutput},
    models::ContainerUpdateBody,
    query_parameters::{
        AttachContainerOptions, InspectContainerOptions, KillContainerOptions,
        ListContainersOptions, LogsOptions, RemoveContainerOptions, WaitContainerOptions,
    },
    Docker,
};
use futures_util::{Stream, StreamExt};

use crate::limits::Limits;

mod images;
mod sandbox;
mod services;
pub mod stats;
mod usr_volume;
pub use images::{BuilderSpec, CommitSpec, ImageFacts};
pub use sandbox::Extras;
pub use services::{ServiceImage, ServiceSpec};
pub use usr_volume::{usr_volume_name, LABEL_USR_OF};

/// Labels every container of ours carries.
pub const LABEL_INSTANCE: &str = "te.instance";
pub const LABEL_RUN: &str = "te.run";
/// On warm (pooled) containers: the executor that keeps them.
pub const LABEL_POOL_WORKER: &str = "te.pool-worker";

/// Size of each sandbox's writable scratch space (it counts against memory),
/// besides the room for a project's tree (see `with_tree_room`).
const SCRATCH_MIB: u64 = 192;
/// The engine's default CPU weight, which every running test gets.
pub const DEFAULT_CPU_SHARES: i64 = 1024;
const DEFAULT_TREE_MIB: u64 = 64;

/// How long one call to the engine may take before it counts as failed.
/// Generous: a loaded engine answers in well under a second, and a create or
/// remove under I/O pressure in a few.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs one engine call with a time limit; the error names the operation.
async fn timed<T>(
    within: Duration,
    operation: impl FnOnce() -> String,
    call: impl Future<Output = T>,
) -> Result<T> {
    match tokio::time::timeout(within, call).await {
        Ok(answer) => Ok(answer),
        Err(_) => anyhow::bail!(
            "{}: the Docker engine did not answer within {} s",
            operation(),
            within.as_secs_f64()
        ),
    }
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    /// MiB of the `/tmp` tmpfs: scratch plus the largest tree a run may get.
    tmpfs_mib: u64,
}

/// What the engine says about itself.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    pub id: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub warnings: Vec<String>,
    pub version: String,
}

/// How a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContainerEnd {
    pub running: bool,
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
}

/// One of our containers found by label.
#[derive(Debug, Clone)]
pub struct FoundContainer {
    pub id: String,
    pub name: String,
    /// From the name (`te-<instance>-run-<id>`): a warm container takes its
    /// run's name when it is handed the run, but labels cannot change.
    pub run_id: Option<i64>,
    /// The executor keeping it, for a warm container not yet handed a run.
    pub pool_worker: Option<i64>,
    pub running: bool,
    /// Docker's word for it: `created`, `running`, `exited`, …
    pub state: String,
    /// A service of its run (`te-<instance>-run-<id>-svc-<name>`).
    pub service: bool,
}

pub type OutputStream =
    std::pin::Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>;

impl Engine {
    /// Connects as the Docker CLI would (`DOCKER_HOST`, else the local socket).
    pub fn connect() -> Result<Engine> {
        let docker = Docker::connect_with_defaults().context("connecting to the Docker engine")?;
        Ok(Engine {
            docker,
            tmpfs_mib: SCRATCH_MIB + DEFAULT_TREE_MIB,
        })
    }

    /// Sizes each sandbox's tmpfs so that a project tree of up to `bytes`
    /// fits beside the usual scratch space.
    pub fn with_tree_room(mut self, bytes: u64) -> Engine {
        self.tmpfs_mib = SCRATCH_MIB + bytes.div_ceil(1024 * 1024);
        self
    }

    pub async fn info(&self) -> Result<EngineInfo> {
        let info = timed(
            CALL_TIMEOUT,
            || "asking the Docker engine for its info".into(),
            self.docker.info(),
        )
        .await?
        .context("asking the Docker engine for its info")?;
        Ok(EngineInfo {
            id: info.id.unwrap_or_default(),
            cpus: info.ncpu.unwrap_or(1),
            memory_bytes: info.mem_total.unwrap_or(0),
            warnings: info.warnings.unwrap_or_default(),
            version: info.server_version.unwrap_or_default(),
        })
    }

    pub async fn image_exists(&self, image: &str) -> Result<bool> {
        Ok(self.image_id(image).await?.is_some())
    }

    /// The id the image's name points to now (it changes when rebuilt).
    pub async fn image_id(&self, image: &str) -> Result<Option<String>> {
        let what = || format!("inspecting image {image}");
        match timed(CALL_TIMEOUT, what, self.docker.inspect_image(image)).await? {
            Ok(found) => Ok(found.id),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("inspecting image {image}")),
        }
    }

    pub async fn rename(&self, id: &str, new_name: &str) -> Result<()> {
        let options = bollard::query_parameters::RenameContainerOptions {
            name: new_name.into(),
        };
        let what = || format!("renaming container {id} to {new_name}");
        timed(
            CALL_TIMEOUT,
            what,
            self.docker.rename_container(id, options),
        )
        .await?
        .with_context(what)
    }

    /// Attaches to stdin, stdout and stderr; done before start so no byte is missed.
    pub async fn attach(&self, id: &str) -> Result<AttachContainerResults> {
        let options = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            ..Default::default()
        };
        let what = || format!("attaching to container {id}");
        timed(
            CALL_TIMEOUT,
            what,
            self.docker.attach_container(id, Some(options)),
        )
        .await?
        .with_context(what)
    }

    pub async fn start(&self, id: &str) -> Result<()> {
        let what = || format!("starting container {id}");
        let call = self
            .docker
            .start_container(id, None::<bollard::query_parameters::StartContainerOptions>);
        timed(CALL_TIMEOUT, what, call).await?.with_context(what)
    }

    /// Everything the container printed so far and, until it stops, what it
    /// prints next (used to resume after an executor crash).
    pub fn follow_logs(&self, id: &str) -> OutputStream {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        Box::pin(self.docker.logs(id, Some(options)))
    }

    /// Waits until the container is not running and returns its exit code;
    /// gives up after `within` (the caller knows how long it may take).
    pub async fn wait(&self, id: &str, within: Duration) -> Result<i64> {
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut stream = self.docker.wait_container(id, Some(options));
        let what = || format!("waiting for container {id} to stop");
        match timed(within, what, stream.next()).await? {
            Some(Ok(done)) => Ok(done.status_code),
            // bollard reports a non-zero exit as an error; it is an answer here
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(err)) => Err(err).with_context(|| format!("waiting for container {id}")),
            None => anyhow::bail!("waiting for container {id}: the engine closed the stream"),
        }
    }

    pub async fn inspect(&self, id: &str) -> Result<Option<ContainerEnd>> {
        let what = || format!("inspecting container {id}");
        let call = self
            .docker
            .inspect_container(id, None::<InspectContainerOptions>);
        match timed(CALL_TIMEOUT, what, call).await? {
            Ok(info) => {
                let state = info.state.unwrap_or_default();
                Ok(Some(ContainerEnd {
                    running: state.running.unwrap_or(false),
                    exit_code: state.exit_code,
                    oom_killed: state.oom_killed.unwrap_or(false),
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("inspecting container {id}")),
        }
    }

    /// Sends SIGKILL; a container that already stopped or is gone is fine.
    pub async fn kill(&self, id: &str) -> Result<()> {
        self.signal(id, "KILL").await
    }

    /// Sends `signal` (`KILL`, `USR1`) to the container's PID 1; a container
    /// that already stopped or is gone is fine.
    pub async fn signal(&self, id: &str, signal: &str) -> Result<()> {
        let options = KillContainerOptions {
            signal: signal.to_owned(),
        };
        let what = || format!("sending SIG{signal} to container {id}");
        match timed(
            CALL_TIMEOUT,
            what,
            self.docker.kill_container(id, Some(options)),
        )
        .await?
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(err) => Err(err).with_context(what),
        }
    }

    /// Removes the container (and its anonymous volumes), running or not.
    pub async fn remove(&self, id: &str) -> Result<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        let what = || format!("removing container {id}");
        match timed(
            CALL_TIMEOUT,
            what,
            self.docker.remove_container(id, Some(options)),
        )
        .await?
        {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409,
                message,
            }) if message.contains("already in progress") => Ok(()),
            Err(err) => Err(err).with_context(|| format!("removing container {id}")),
        }
    }

    /// Changes a container's limits while it exists, and gives it the
    /// default CPU weight (a warm container waited at the lowest).
    pub async fn update_limits(&self, id: &str, limits: &Limits) -> Result<()> {
        let body = ContainerUpdateBody {
            cpu_shares: Some(DEFAULT_CPU_SHARES),
            memory: Some(limits.memory_bytes()),
            memory_swap: Some(limits.memory_bytes()),
            nano_cpus: Some(limits.nano_cpus()),
            pids_limit: Some(i64::from(limits.pids_limit)),
            ..Default::default()
        };
        let what = || format!("updating the limits of container {id}");
        timed(CALL_TIMEOUT, what, self.docker.update_container(id, body))
            .await?
            .with_context(what)?;
        Ok(())
    }

    /// All containers (running or not) of this installation.
    pub async fn list_ours(&self, instance: &str) -> Result<Vec<FoundContainer>> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={instance}")],
        )]);
        let options = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        let what = || "listing this installation's containers".to_string();
        let found = timed(
            CALL_TIMEOUT,
            what,
            self.docker.list_containers(Some(options)),
        )
        .await?
        .with_context(what)?;
        let run_prefix = format!("te-{instance}-run-");
        Ok(found
            .into_iter()
            .map(|c| {
                let labels = c.labels.unwrap_or_default();
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned();
                let run_part = name.strip_prefix(&run_prefix);
                let service = run_part.is_some_and(|p| p.contains("-svc-"));
                let run_id = run_part
                    .map(|p| p.split("-svc-").next().unwrap_or(p))
                    .and_then(|id| id.parse().ok());
                FoundContainer {
                    id: c.id.unwrap_or_default(),
                    pool_worker: match run_id {
                        Some(_) => None,
                        None => labels.get(LABEL_POOL_WORKER).and_then(|v| v.parse().ok()),
                    },
                    run_id,
                    name,
                    running: c.state.as_ref().map(|s| s.to_string()) == Some("running".into()),
                    service,
                    state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_the_engine_does_not_answer_fails_naming_the_operation() {
        let what = || "killing container te-x-run-1".to_string();
        let err = timed(
            Duration::from_millis(20),
            what,
            std::future::pending::<()>(),
        )
        .await
        .unwrap_err();
        let text = format!("{err:#}");
        assert!(text.contains("killing container te-x-run-1"), "{text}");
        assert!(text.contains("did not answer within 0.02 s"), "{text}");
    }
}
