//! The sandbox a run's pytest lives in, as one container create: what it
//! may not do (network, capabilities, privileges, writes outside `/tmp`) and
//! what it may use (its environment's limits).

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::{
    models::{ContainerCreateBody, HostConfig, HostConfigLogConfig},
    query_parameters::CreateContainerOptions,
};

use super::{timed, usr_volume::usr_mount, Engine, CALL_TIMEOUT};
use crate::limits::Limits;

/// What a sandbox may have besides the defaults.
#[derive(Debug, Default)]
pub struct Extras {
    /// CPU weight (`cpu-shares`, 2 to 262144; the engine's default is
    /// 1024): a warm container waits at the lowest.
    pub cpu_shares: Option<i64>,
    /// The image's `/usr` volume (`usr_volume.rs`), mounted read-only; it
    /// must be the volume of the very image the container is made from.
    pub usr_volume: Option<String>,
    /// `host:127.0.0.1` lines for `/etc/hosts`: a run with services reaches
    /// each by its name on the loopback its services share. The container
    /// then has a network namespace of its own (still no network) that
    /// they join.
    pub extra_hosts: Vec<String>,
}

impl Engine {
    /// Creates a sandboxed container: no network, no capabilities, no new
    /// privileges, uid 1000, read-only root with a capped tmpfs at `/tmp`,
    /// the given limits, and stdin open for the files it will receive.
    pub async fn create_sandbox(
        &self,
        name: &str,
        image: &str,
        labels: HashMap<String, String>,
        limits: &Limits,
    ) -> Result<String> {
        self.create_sandbox_with(name, image, labels, limits, &Extras::default())
            .await
    }

    /// `create_sandbox` with `extras`.
    pub async fn create_sandbox_with(
        &self,
        name: &str,
        image: &str,
        labels: HashMap<String, String>,
        limits: &Limits,
        extras: &Extras,
    ) -> Result<String> {
        let Extras {
            cpu_shares,
            usr_volume,
            extra_hosts,
        } = extras;
        let host_config = HostConfig {
            cpu_shares: *cpu_shares,
            memory: Some(limits.memory_bytes()),
            memory_swap: Some(limits.memory_bytes()),
            nano_cpus: Some(limits.nano_cpus()),
            pids_limit: Some(i64::from(limits.pids_limit)),
            network_mode: Some("none".into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            readonly_rootfs: Some(true),
            tmpfs: Some(HashMap::from([(
                "/tmp".into(),
                format!("rw,exec,nosuid,nodev,size={}m,mode=1777", self.tmpfs_mib),
            )])),
            ipc_mode: Some("private".into()),
            mounts: usr_volume.as_ref().map(|v| vec![usr_mount(v)]),
            extra_hosts: (!extra_hosts.is_empty()).then(|| extra_hosts.clone()),
            // The engine's default log rotation drops lines; keep one file big
            // enough that a run can be replayed after an executor crash.
            log_config: Some(HostConfigLogConfig {
                typ: Some("json-file".into()),
                config: Some(HashMap::from([
                    ("max-size".into(), "256m".into()),
                    ("max-file".into(), "1".into()),
                ])),
            }),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(image.into()),
            user: Some("1000:1000".into()),
            labels: Some(labels),
            env: Some(vec![]),
            open_stdin: Some(true),
            stdin_once: Some(true),
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            // Disabled, the engine gives it no `/etc/hosts` to name services in.
            network_disabled: Some(extra_hosts.is_empty()),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.into()),
            ..Default::default()
        };
        let what = || format!("creating container {name} from {image}");
        let created = timed(
            CALL_TIMEOUT,
            what,
            self.docker.create_container(Some(options), body),
        )
        .await?
        .with_context(what)?;
        Ok(created.id)
    }
}
