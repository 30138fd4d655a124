//! Engine operations for a run's services (a database beside its tests):
//! a service container that joins the run container's network namespace
//! (`container:<run>`, so it has no network but the run's loopback), with
//! the run's sandbox settings; a command run inside a container (the
//! readiness probe); and a container's last log lines. Every call is timed.

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::{
    container::LogOutput,
    exec::{CreateExecOptions, StartExecOptions, StartExecResults},
    models::{ContainerCreateBody, HostConfig, HostConfigLogConfig},
    query_parameters::{CreateContainerOptions, LogsOptions},
};
use futures_util::StreamExt;

use super::{timed, Engine, CALL_TIMEOUT};
use crate::limits::Limits;

/// MiB of the tmpfs at each folder the image declares a volume (a
/// database's data) and at `/tmp` and `/run`; they count against the
/// service's memory limit.
const DATA_TMPFS_MIB: u64 = 512;
const SCRATCH_TMPFS_MIB: u64 = 64;
/// Output of a command run inside a container, kept at most.
const MAX_EXEC_OUTPUT: usize = 64 * 1024;
/// Bytes of a container's log read for its last lines, at most.
const MAX_TAIL_BYTES: usize = 16 * 1024;

/// A service image, as inspect tells it.
#[derive(Debug, Clone)]
pub struct ServiceImage {
    pub id: String,
    /// The image's user; `None` when it is root (or unset).
    pub user: Option<String>,
    /// The folders it declares as volumes (`VOLUME`): each gets a tmpfs.
    pub volumes: Vec<String>,
}

/// One service container of a run.
pub struct ServiceSpec<'a> {
    pub name: &'a str,
    pub image: &'a ServiceImage,
    /// `NAME=value`, the project's declared `env` of the service.
    pub env: Vec<String>,
    pub labels: HashMap<String, String>,
    pub limits: &'a Limits,
    /// The run's container, whose network namespace it joins.
    pub run_container: &'a str,
}

impl Engine {
    /// A service image's id, user and volumes; `None` when it is missing.
    pub async fn service_image(&self, image: &str) -> Result<Option<ServiceImage>> {
        let what = || format!("inspecting service image {image}");
        match timed(CALL_TIMEOUT, what, self.docker.inspect_image(image)).await? {
            Ok(found) => {
                let config = found.config.unwrap_or_default();
                let user = config
                    .user
                    .filter(|u| !matches!(u.as_str(), "" | "root" | "0" | "0:0" | "root:root"));
                let mut volumes: Vec<String> = config
                    .volumes
                    .unwrap_or_default()
                    .into_keys()
                    .filter(|v| v.starts_with('/') && !matches!(v.as_str(), "/tmp" | "/run"))
                    .collect();
                volumes.sort();
                Ok(Some(ServiceImage {
                    id: found.id.unwrap_or_else(|| image.to_owned()),
                    user,
                    volumes,
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err).with_context(what),
        }
    }

    /// Creates a service container in the run's network namespace: no
    /// capabilities, no new privileges, the image's own user (uid 1000
    /// when that is root), a read-only root with capped tmpfs at `/tmp`,
    /// `/run` and the image's volumes, and the run's memory, CPU and
    /// process limits.
    pub async fn create_service(&self, spec: ServiceSpec<'_>) -> Result<String> {
        // An image that runs as root runs as uid 1000 here, which then owns
        // its volumes' tmpfs (its start may chmod them: the well-known
        // Postgres image's does); another user gets them at mode 1777.
        let owner = match spec.image.user {
            Some(_) => "",
            None => ",uid=1000,gid=1000",
        };
        let mut tmpfs = HashMap::from([
            ("/tmp".to_owned(), tmpfs_options(SCRATCH_TMPFS_MIB, "")),
            ("/run".to_owned(), tmpfs_options(SCRATCH_TMPFS_MIB, "")),
        ]);
        for volume in &spec.image.volumes {
            tmpfs.insert(volume.clone(), tmpfs_options(DATA_TMPFS_MIB, owner));
        }
        let limits = spec.limits;
        let host_config = HostConfig {
            memory: Some(limits.memory_bytes()),
            memory_swap: Some(limits.memory_bytes()),
            nano_cpus: Some(limits.nano_cpus()),
            pids_limit: Some(i64::from(limits.pids_limit)),
            network_mode: Some(format!("container:{}", spec.run_container)),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(tmpfs),
            ipc_mode: Some("private".into()),
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".into(), "1m".into()),
                    ("max-file".into(), "1".into()),
                ])),
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.id.clone()),
            user: Some(
                spec.image
                    .user
                    .clone()
                    .unwrap_or_else(|| "1000:1000".into()),
            ),
            labels: Some(spec.labels),
            env: Some(spec.env),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.into()),
            ..Default::default()
        };
        let what = || format!("creating service container {}", spec.name);
        let created = timed(
            CALL_TIMEOUT,
            what,
            self.docker.create_container(Some(options), body),
        )
        .await?
        .with_context(what)?;
        Ok(created.id)
    }

    /// Runs `cmd` in a running container as uid 1000 and returns its exit
    /// code and output (at most 64 KiB), giving up after `within`.
    pub async fn exec(
        &self,
        container: &str,
        cmd: Vec<String>,
        within: std::time::Duration,
    ) -> Result<(i64, String)> {
        let options = CreateExecOptions {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            user: Some("1000:1000".to_owned()),
            cmd: Some(cmd),
            ..Default::default()
        };
        let what = || format!("running a command in container {container}");
        let created = timed(
            CALL_TIMEOUT,
            what,
            self.docker.create_exec(container, options),
        )
        .await?
        .with_context(what)?;
        let start = StartExecOptions {
            detach: false,
            ..Default::default()
        };
        let started = timed(
            CALL_TIMEOUT,
            what,
            self.docker.start_exec(&created.id, Some(start)),
        )
        .await?
        .with_context(what)?;
        let mut text = String::new();
        if let StartExecResults::Attached { mut output, .. } = started {
            let read = async {
                while let Some(Ok(piece)) = output.next().await {
                    append_bounded(&mut text, &piece, MAX_EXEC_OUTPUT);
                }
            };
            timed(within, what, read).await?;
        }
        let inspected = timed(CALL_TIMEOUT, what, self.docker.inspect_exec(&created.id))
            .await?
            .with_context(what)?;
        Ok((inspected.exit_code.unwrap_or(-1), text))
    }

    /// A container's last `lines` lines of output (at most 16 KiB).
    pub async fn last_lines(&self, container: &str, lines: usize) -> Result<String> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let mut stream = self.docker.logs(container, Some(options));
        let mut text = String::new();
        let what = || format!("reading the output of container {container}");
        let read = async {
            while let Some(piece) = stream.next().await {
                append_bounded(&mut text, &piece?, MAX_TAIL_BYTES);
            }
            Ok::<(), bollard::errors::Error>(())
        };
        timed(CALL_TIMEOUT, what, read).await?.with_context(what)?;
        Ok(text)
    }
}

fn tmpfs_options(mib: u64, owner: &str) -> String {
    format!("rw,noexec,nosuid,nodev,size={mib}m,mode=1777{owner}")
}

/// Appends a piece of output, keeping the last `max` bytes (on a character
/// boundary).
fn append_bounded(text: &mut String, piece: &LogOutput, max: usize) {
    text.push_str(&String::from_utf8_lossy(&piece.clone().into_bytes()));
    if text.len() > max {
        let mut cut = text.len() - max;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text.drain(..cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_its_last_bytes() {
        let mut text = String::new();
        for _ in 0..10 {
            let piece = LogOutput::StdOut {
                message: "é123456789".into(),
            };
            append_bounded(&mut text, &piece, 25);
        }
        assert!(text.len() <= 25, "{text}");
        assert!(text.ends_with("é123456789"), "{text}");
    }
}
