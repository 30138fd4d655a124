//! Engine operations for building and removing derived images (the
//! dependency images of `src/dependencies`): the containers of a build's
//! steps (sandboxed like a run's; only the download step's proxy has a
//! network), the volumes they share, files put into them, and the result
//! committed as an image. Every call has a time limit.

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::{
    models::{
        ContainerConfig, ContainerCreateBody, HostConfig, Mount, MountTypeEnum, VolumeCreateOptions,
    },
    query_parameters::{
        CommitContainerOptions, CreateContainerOptions, ListImagesOptions, RemoveImageOptions,
        UploadToContainerOptions,
    },
};

use super::{timed, Engine, CALL_TIMEOUT};

/// A commit writes the whole venv layer: it may take longer than a call.
const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// A container of one step of a dependency build: no capabilities, no new
/// privileges, a fixed uid, CPU, memory and process caps, and no network
/// unless `network` says otherwise (only the egress proxy, which runs no
/// code a project chose, gets the host's).
pub struct BuilderSpec<'a> {
    pub name: &'a str,
    pub image: String,
    pub user: &'a str,
    /// Capabilities given back after dropping all: none, but for the step
    /// that installs Debian's packages as root (`dpkg` changes owners).
    pub caps: &'static [&'static str],
    pub cmd: Vec<String>,
    /// `NAME=value`: the project's declared `[env]` in the steps that run
    /// its code, nothing elsewhere.
    pub env: Vec<String>,
    /// `none`, except for the egress proxy (`host`).
    pub network: &'a str,
    /// Named volumes (created on first use): volume, mount point, read-only.
    pub volumes: Vec<(&'a str, &'a str, bool)>,
    /// A read-only root with a tmpfs of this many MiB at `/tmp`; `None`
    /// keeps the root writable (a step whose result is committed).
    pub read_only_with_tmp_mib: Option<u64>,
    pub labels: HashMap<String, String>,
    pub memory_bytes: i64,
    pub nano_cpus: i64,
    pub pids_limit: i64,
}

/// An image's configuration, as inspect tells it.
pub struct ImageFacts {
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub labels: HashMap<String, String>,
    pub size: Option<i64>,
}

/// The image config a commit writes (the builder's own command, user and
/// environment are not kept).
pub struct CommitSpec<'a> {
    pub repo: &'a str,
    pub tag: &'a str,
    pub user: &'a str,
    pub working_dir: &'a str,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub labels: HashMap<String, String>,
}

impl Engine {
    pub async fn create_builder(&self, spec: BuilderSpec<'_>) -> Result<String> {
        let mounts = spec
            .volumes
            .iter()
            .map(|(volume, target, read_only)| Mount {
                typ: Some(MountTypeEnum::VOLUME),
                source: Some((*volume).into()),
                target: Some((*target).into()),
                read_only: Some(*read_only),
                ..Default::default()
            })
            .collect();
        let tmpfs = spec.read_only_with_tmp_mib.map(|mib| {
            HashMap::from([(
                "/tmp".to_owned(),
                format!("rw,exec,nosuid,nodev,size={mib}m,mode=1777"),
            )])
        });
        let host_config = HostConfig {
            network_mode: Some(spec.network.into()),
            cap_drop: Some(vec!["ALL".into()]),
            cap_add: Some(spec.caps.iter().map(|c| (*c).to_owned()).collect()),
            security_opt: Some(vec!["no-new-privileges".into()]),
            memory: Some(spec.memory_bytes),
            memory_swap: Some(spec.memory_bytes),
            nano_cpus: Some(spec.nano_cpus),
            pids_limit: Some(spec.pids_limit),
            readonly_rootfs: Some(spec.read_only_with_tmp_mib.is_some()),
            tmpfs,
            ipc_mode: Some("private".into()),
            mounts: Some(mounts),
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            user: Some(spec.user.into()),
            cmd: Some(spec.cmd),
            labels: Some(spec.labels),
            env: Some(spec.env),
            network_disabled: Some(spec.network == "none"),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.into()),
            ..Default::default()
        };
        let what = || format!("creating build container {} from {}", spec.name, spec.image);
        let created = timed(
            CALL_TIMEOUT,
            what,
            self.docker.create_container(Some(options), body),
        )
        .await?
        .with_context(what)?;
        Ok(created.id)
    }

    /// Unpacks a tar into a folder of a (created, not necessarily started)
    /// container; the folder must exist (a mounted volume's, when the root
    /// is read-only).
    pub async fn upload(&self, id: &str, folder: &str, tar: Vec<u8>) -> Result<()> {
        let options = UploadToContainerOptions {
            path: folder.into(),
            ..Default::default()
        };
        let what = || format!("copying files into {folder} of container {id}");
        let call =
            self.docker
                .upload_to_container(id, Some(options), bollard::body_full(tar.into()));
        timed(CALL_TIMEOUT, what, call).await?.with_context(what)
    }

    /// Creates a named volume carrying `labels` (an existing one is kept).
    pub async fn create_volume(&self, name: &str, labels: HashMap<String, String>) -> Result<()> {
        let options = VolumeCreateOptions {
            name: Some(name.into()),
            labels: Some(labels),
            ..Default::default()
        };
        let what = || format!("creating volume {name}");
        timed(CALL_TIMEOUT, what, self.docker.create_volume(options))
            .await?
            .with_context(what)?;
        Ok(())
    }

    /// Makes an image of a stopped container's filesystem; returns its id.
    pub async fn commit(&self, id: &str, spec: CommitSpec<'_>) -> Result<String> {
        let options = CommitContainerOptions {
            container: Some(id.into()),
            repo: Some(spec.repo.into()),
            tag: Some(spec.tag.into()),
            pause: false,
            ..Default::default()
        };
        let config = ContainerConfig {
            user: Some(spec.user.into()),
            working_dir: Some(spec.working_dir.into()),
            env: Some(spec.env),
            cmd: Some(spec.cmd),
            labels: Some(spec.labels),
            ..Default::default()
        };
        let what = || format!("committing container {id} as {}:{}", spec.repo, spec.tag);
        let committed = timed(
            COMMIT_TIMEOUT,
            what,
            self.docker.commit_container(options, config),
        )
        .await?
        .with_context(what)?;
        Ok(committed.id)
    }

    /// What the image says of itself, or `None` if it is missing.
    pub async fn image_facts(&self, image: &str) -> Result<Option<ImageFacts>> {
        let what = || format!("inspecting image {image}");
        match timed(CALL_TIMEOUT, what, self.docker.inspect_image(image)).await? {
            Ok(found) => {
                let config = found.config.unwrap_or_default();
                Ok(Some(ImageFacts {
                    env: config.env.unwrap_or_default(),
                    cmd: config.cmd.unwrap_or_default(),
                    labels: config.labels.unwrap_or_default(),
                    size: found.size,
                }))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err).with_context(what),
        }
    }

    /// Removes an image unless a container (running or not) uses it: returns
    /// whether it is gone.
    pub async fn remove_image(&self, image: &str) -> Result<bool> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
        };
        let what = || format!("removing image {image}");
        let call = self.docker.remove_image(image, Some(options), None);
        match timed(CALL_TIMEOUT, what, call).await? {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(false),
            Err(err) => Err(err).with_context(|| format!("removing image {image}")),
        }
    }

    /// The tags (`repo:tag`) of every image carrying the label.
    pub async fn images_labelled(&self, label: &str) -> Result<Vec<String>> {
        let options = ListImagesOptions {
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..Default::default()
        };
        let what = || format!("listing images labelled {label}");
        let images = timed(CALL_TIMEOUT, what, self.docker.list_images(Some(options)))
            .await?
            .with_context(what)?;
        Ok(images.into_iter().flat_map(|i| i.repo_tags).collect())
    }

    /// The ids of untagged ("dangling") images carrying the label: what a
    /// new image of the same tag left behind while a container used the old.
    pub async fn dangling_images_labelled(&self, label: &str) -> Result<Vec<String>> {
        let options = ListImagesOptions {
            filters: Some(HashMap::from([
                ("label".to_string(), vec![label.to_string()]),
                ("dangling".to_string(), vec!["true".to_string()]),
            ])),
            ..Default::default()
        };
        let what = || format!("listing untagged images labelled {label}");
        let images = timed(CALL_TIMEOUT, what, self.docker.list_images(Some(options)))
            .await?
            .with_context(what)?;
        Ok(images.into_iter().map(|i| i.id).collect())
    }
}

impl Engine {
    /// Containers (running or not) carrying `label`: their ids, names and
    /// labels (a container also carries its image's labels).
    pub async fn containers_labelled(
        &self,
        label: &str,
    ) -> Result<Vec<(String, String, HashMap<String, String>)>> {
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([(
                "label".to_string(),
                vec![label.to_string()],
            )])),
            ..Default::default()
        };
        let what = || format!("listing containers labelled {label}");
        let found = timed(
            CALL_TIMEOUT,
            what,
            self.docker.list_containers(Some(options)),
        )
        .await?
        .with_context(what)?;
        Ok(found
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned();
                (c.id.unwrap_or_default(), name, c.labels.unwrap_or_default())
            })
            .collect())
    }
}
