//! Engine operations for building and removing derived images (the
//! dependency images of `src/dependencies`): a builder container with the
//! network the build needs and a cache volume, files put into it, and the
//! result committed as an image.

use std::collections::HashMap;

use anyhow::{Context, Result};
use bollard::{
    models::{ContainerConfig, ContainerCreateBody, HostConfig, Mount, MountTypeEnum},
    query_parameters::{
        CommitContainerOptions, CreateContainerOptions, ListImagesOptions, RemoveImageOptions,
        UploadToContainerOptions,
    },
};

use super::Engine;

/// A container that builds an image: unlike a sandbox it has a writable
/// root and a network, but still no capabilities and no new privileges.
pub struct BuilderSpec<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub user: &'a str,
    pub cmd: Vec<String>,
    /// `host` on engines without a bridge network.
    pub network: &'a str,
    /// A named volume (created on first use) and where it is mounted.
    pub cache: Option<(&'a str, &'a str)>,
    pub labels: HashMap<String, String>,
    pub memory_bytes: i64,
    pub pids_limit: i64,
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
        let mounts = spec.cache.map(|(volume, target)| {
            vec![Mount {
                typ: Some(MountTypeEnum::VOLUME),
                source: Some(volume.into()),
                target: Some(target.into()),
                ..Default::default()
            }]
        });
        let host_config = HostConfig {
            network_mode: Some(spec.network.into()),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            memory: Some(spec.memory_bytes),
            memory_swap: Some(spec.memory_bytes),
            pids_limit: Some(spec.pids_limit),
            mounts,
            ..Default::default()
        };
        let body = ContainerCreateBody {
            image: Some(spec.image.into()),
            user: Some(spec.user.into()),
            cmd: Some(spec.cmd),
            labels: Some(spec.labels),
            env: Some(vec![]),
            host_config: Some(host_config),
            ..Default::default()
        };
        let options = CreateContainerOptions {
            name: Some(spec.name.into()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .with_context(|| {
                format!(
                    "creating builder container {} from {}",
                    spec.name, spec.image
                )
            })?;
        Ok(created.id)
    }

    /// Unpacks a tar into a folder of a (created, not necessarily started)
    /// container; the folder must exist.
    pub async fn upload(&self, id: &str, folder: &str, tar: Vec<u8>) -> Result<()> {
        let options = UploadToContainerOptions {
            path: folder.into(),
            ..Default::default()
        };
        self.docker
            .upload_to_container(id, Some(options), bollard::body_full(tar.into()))
            .await
            .with_context(|| format!("copying files into {folder} of container {id}"))
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
        let committed = self
            .docker
            .commit_container(options, config)
            .await
            .with_context(|| format!("committing container {id} as {}:{}", spec.repo, spec.tag))?;
        Ok(committed.id)
    }

    /// The image's environment (`KEY=value`) and command, or `None` if it is
    /// missing.
    pub async fn image_env_and_cmd(
        &self,
        image: &str,
    ) -> Result<Option<(Vec<String>, Vec<String>)>> {
        match self.docker.inspect_image(image).await {
            Ok(found) => {
                let config = found.config.unwrap_or_default();
                Ok(Some((
                    config.env.unwrap_or_default(),
                    config.cmd.unwrap_or_default(),
                )))
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("inspecting image {image}")),
        }
    }

    /// The image's size in bytes, or `None` if it is missing.
    pub async fn image_size(&self, image: &str) -> Result<Option<i64>> {
        match self.docker.inspect_image(image).await {
            Ok(found) => Ok(found.size),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(err) => Err(err).with_context(|| format!("inspecting image {image}")),
        }
    }

    /// Removes an image unless a container (running or not) uses it: returns
    /// whether it is gone.
    pub async fn remove_image(&self, image: &str) -> Result<bool> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
        };
        match self.docker.remove_image(image, Some(options), None).await {
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
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .with_context(|| format!("listing images labelled {label}"))?;
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
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .with_context(|| format!("listing untagged images labelled {label}"))?;
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
        let found = self
            .docker
            .list_containers(Some(options))
            .await
            .with_context(|| format!("listing containers labelled {label}"))?;
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
