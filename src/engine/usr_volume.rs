//! An image's `/usr` served from a named volume, mounted read-only into its
//! sandboxes. On an engine whose storage driver is `fuse-overlayfs` (this
//! project's machines) every file a container opens in its image goes
//! through a FUSE process; Python importing pytest opens hundreds. A volume
//! is a plain directory of the host, read by the kernel directly: each
//! container then costs about 65 ms less CPU and starts about 95 ms sooner
//! (README, Figures). With merged-usr images `/usr` holds Python, its
//! libraries and pytest; `/etc` and the rest stay in the image.
//!
//! The volume is named after the image's id and filled by a filler
//! container of that image: under a lock file in the volume it copies the
//! image's `/usr` in (`cp -a`) and writes a marker last, so several
//! processes preparing one volume copy it once, and a copy cut short is
//! redone rather than used. Sandboxes mount it only once a filler saw the
//! marker, and never let the engine copy into it (`NoCopy`).

use std::{collections::HashMap, time::Duration};

use anyhow::{Context, Result};
use bollard::{
    models::{
        ContainerCreateBody, HostConfig, Mount, MountTypeEnum, MountVolumeOptions,
        VolumeCreateOptions,
    },
    query_parameters::{
        CreateContainerOptions, ListContainersOptions, ListVolumesOptions, RemoveVolumeOptions,
    },
};

use super::{timed, Engine, CALL_TIMEOUT};

/// On each `/usr` volume: the id of the image it was filled from.
pub const LABEL_USR_OF: &str = "te.usr-of";
/// On filler containers.
const LABEL_USR_FILLER: &str = "te.usr-filler";
/// Where a sandbox mounts the volume, and where a filler does.
const USR: &str = "/usr";
const FILL_AT: &str = "/te-usr";
/// Copies the image's `/usr` once, under a lock, marker last. The marker is
/// checked before the lock too: once complete, the volume is mounted in
/// sandboxes, where a test could hold the lock file.
const FILL: &str = "test -e /te-usr/.te-complete && exit 0
exec 9>/te-usr/.te-lock
flock 9
test -e /te-usr/.te-complete && exit 0
cp -a /usr/. /te-usr/
touch /te-usr/.te-complete";
/// How long a filler may take (it copies ~100 MB the first time).
const FILL_WITHIN: Duration = Duration::from_secs(120);
/// A filler older than this is a dead process's leftover (a live one waits
/// at most `FILL_WITHIN` for its own, then removes it).
const STALE_FILLER: Duration = Duration::from_secs(600);

/// The volume holding `/usr` of the image `image_id` (`sha256:…`).
pub fn usr_volume_name(image_id: &str) -> String {
    let hex = image_id.trim_start_matches("sha256:");
    format!("te-usr-{}", &hex[..hex.len().min(20)])
}

/// The volume mounted at `target`; the engine never copies into it.
fn volume_mount(volume: &str, target: &str, read_only: bool) -> Mount {
    Mount {
        typ: Some(MountTypeEnum::VOLUME),
        source: Some(volume.into()),
        target: Some(target.into()),
        read_only: Some(read_only),
        volume_options: Some(MountVolumeOptions {
            no_copy: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A sandbox's mount of the volume: read-only over `/usr`.
pub fn usr_mount(volume: &str) -> Mount {
    volume_mount(volume, USR, true)
}

impl Engine {
    /// Makes (the first time) and fills the `/usr` volume of `image_id`;
    /// its name once the filler saw it complete.
    pub async fn prepare_usr_volume(&self, image_id: &str) -> Result<String> {
        let volume = usr_volume_name(image_id);
        let create = VolumeCreateOptions {
            name: Some(volume.clone()),
            labels: Some(HashMap::from([(LABEL_USR_OF.into(), image_id.into())])),
            ..Default::default()
        };
        let what = || format!("creating volume {volume}");
        timed(CALL_TIMEOUT, what, self.docker.create_volume(create))
            .await?
            .with_context(what)?;
        let name = format!("{volume}-fill-{:08x}", rand::random::<u32>());
        let filled = self.fill(image_id, &volume, &name).await;
        // Also when the create timed out: the engine may make it later.
        let _ = self.remove(&name).await;
        match filled? {
            0 => Ok(volume),
            code => anyhow::bail!("filling volume {volume}: the filler exited with {code}"),
        }
    }

    /// Runs the filler: root with only the capabilities `cp -a` needs to
    /// keep owners and modes, no network; the image's own command, ours.
    async fn fill(&self, image_id: &str, volume: &str, name: &str) -> Result<i64> {
        let body = ContainerCreateBody {
            image: Some(image_id.into()),
            user: Some("0:0".into()),
            entrypoint: Some(vec!["/bin/sh".into(), "-ec".into()]),
            cmd: Some(vec![FILL.into()]),
            env: Some(vec![]),
            labels: Some(HashMap::from([(LABEL_USR_FILLER.into(), image_id.into())])),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                cap_drop: Some(vec!["ALL".into()]),
                cap_add: Some(
                    ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"]
                        .map(String::from)
                        .to_vec(),
                ),
                security_opt: Some(vec!["no-new-privileges".into()]),
                mounts: Some(vec![volume_mount(volume, FILL_AT, false)]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(name.into()),
            ..Default::default()
        };
        let what = || format!("creating the filler of {volume}");
        timed(
            CALL_TIMEOUT,
            what,
            self.docker.create_container(Some(options), body),
        )
        .await?
        .with_context(what)?;
        self.start(name).await?;
        self.wait(name, FILL_WITHIN).await
    }

    /// Whether the volume is there (an operator may have removed it).
    pub async fn volume_exists(&self, volume: &str) -> Result<bool> {
        let what = || format!("inspecting volume {volume}");
        match timed(CALL_TIMEOUT, what, self.docker.inspect_volume(volume)).await? {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(err) => Err(err).with_context(what),
        }
    }

    /// Removes a volume; one still in use stays, a missing one is fine.
    pub async fn remove_volume(&self, volume: &str) -> Result<()> {
        let what = || format!("removing volume {volume}");
        let call = self
            .docker
            .remove_volume(volume, Some(RemoveVolumeOptions { force: false }));
        match timed(CALL_TIMEOUT, what, call).await? {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            Err(err) => Err(err).with_context(what),
        }
    }

    /// Removes old stopped fillers (a process that died mid-fill leaves one)
    /// and the `/usr` volumes whose image is gone (pruned or rebuilt),
    /// whichever installation made them; returns how many volumes went.
    pub async fn remove_orphan_usr_volumes(&self) -> Result<usize> {
        let fillers = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([
                ("label".to_string(), vec![LABEL_USR_FILLER.to_string()]),
                (
                    "status".to_string(),
                    vec!["exited".into(), "created".into()],
                ),
            ])),
            ..Default::default()
        };
        // Only old ones: another process may be filling now (a filler it
        // just made is "created" until it starts), and removes its own.
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        for filler in self.docker.list_containers(Some(fillers)).await? {
            let old = filler
                .created
                .is_some_and(|at| now - at > STALE_FILLER.as_secs() as i64);
            if let (Some(id), true) = (filler.id, old) {
                let _ = self.remove(&id).await;
            }
        }
        let options = ListVolumesOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![LABEL_USR_OF.to_string()],
            )])),
        };
        let listed = self
            .docker
            .list_volumes(Some(options))
            .await
            .context("listing the /usr volumes")?;
        let mut removed = 0;
        for volume in listed.volumes.unwrap_or_default() {
            let Some(image_id) = volume.labels.get(LABEL_USR_OF) else {
                continue;
            };
            let gone = async {
                if self.image_id(image_id).await?.is_none() {
                    self.remove_volume(&volume.name).await?;
                    return anyhow::Ok(true);
                }
                Ok(false)
            };
            match gone.await {
                Ok(true) => removed += 1,
                Ok(false) => {}
                Err(err) => tracing::warn!(
                    error = format!("{err:#}"),
                    volume = volume.name,
                    "removing an old /usr volume"
                ),
            }
        }
        Ok(removed)
    }
}
