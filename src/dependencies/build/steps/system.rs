//! The project's Debian packages (`[build] system_packages`): the runner
//! image with them installed, made once per package list and runner image
//! and shared by every build that asks for the same list. No code of the
//! project runs in either step, and no code of a package runs with a
//! network:
//!
//! 1. **download**: apt as root on the host's network, fetching the lists
//!    and the packages (`--download-only`: no package's scripts run) from
//!    the runner image's own Debian sources into two volumes of this build;
//! 2. **install**: apt offline (`--no-download`), as root with only the
//!    capabilities `dpkg` needs, no network; the container is committed as
//!    `te-system:<hash>`, whose user, folder, environment and command are
//!    the runner image's. The volumes are not part of the commit.
//!
//! The names were checked against Debian's naming rule when the
//! declaration was read; they reach apt as arguments, never through a shell.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::Build;
use crate::{
    dependencies::{
        build::infra,
        step::{self, Ended},
    },
    engine::{CommitSpec, ImageFacts},
};

pub(super) const DOWNLOAD: &str = "system-download";
pub(super) const INSTALL: &str = "system-install";
pub(super) const LISTS: &str = "apt-lists";
pub(super) const CACHE: &str = "apt-cache";
const REPOSITORY: &str = "te-system";
/// Changes when the steps below change what the image holds.
const RECIPE: &str = "te-system-1";
/// On the images made here: the packages, for operators reading the engine.
const LABEL_PACKAGES: &str = "te.system-packages";
/// What `dpkg` and maintainer scripts need as root (owners, modes, users).
const DPKG_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "SETUID",
    "SETGID",
];

const DOWNLOAD_SCRIPT: &str = r#"set -eu
mkdir -p /var/lib/apt/lists/partial /var/cache/apt/archives/partial
echo "==> apt-get update (the runner image's Debian sources)"
apt-get -q -o APT::Sandbox::User=root update
echo "==> apt-get install --download-only --no-install-recommends $*"
exec apt-get -q -o APT::Sandbox::User=root install --download-only -y --no-install-recommends "$@"
"#;

const INSTALL_SCRIPT: &str = r#"set -eu
export DEBIAN_FRONTEND=noninteractive
echo "==> apt-get install --no-download --no-install-recommends $* (offline)"
apt-get -q -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0 install --no-download -y --no-install-recommends "$@"
rm -rf /var/log/apt /var/log/dpkg.log
echo "==> done"
"#;

/// The image's tag for these packages on this runner image.
fn tag(runner_id: &str, packages: &[String]) -> String {
    let mut hash = Sha256::new();
    for part in [RECIPE, runner_id]
        .into_iter()
        .chain(packages.iter().map(String::as_str))
    {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    format!("{:x}", hash.finalize())[..20].to_owned()
}

/// The packages sorted, without repeats: the same set, the same image.
fn normalized(packages: &[String]) -> Vec<String> {
    let mut packages = packages.to_vec();
    packages.sort();
    packages.dedup();
    packages
}

impl Build<'_> {
    /// The image the build starts from, made first when the project
    /// declares Debian packages: what it says of itself (its environment
    /// and command are the committed image's).
    pub(in crate::dependencies::build) async fn base_image(
        &mut self,
        packages: &[String],
    ) -> Result<ImageFacts, String> {
        self.with_system_packages(packages).await?;
        self.engine
            .image_facts(&self.base)
            .await
            .map_err(|e| infra(e, "inspecting the base image").reason)?
            .ok_or_else(|| format!("the base image {} is missing", self.base))
    }

    /// Makes the build's base the runner image with `packages` installed,
    /// building that image first unless it exists.
    async fn with_system_packages(&mut self, packages: &[String]) -> Result<(), String> {
        if packages.is_empty() {
            return Ok(());
        }
        let packages = normalized(packages);
        let runner_id = self
            .engine
            .image_id(&self.base)
            .await
            .map_err(|e| infra(e, "inspecting the runner image").reason)?
            .ok_or_else(|| format!("the runner image {} is missing", self.base))?;
        let image = format!("{REPOSITORY}:{}", tag(&runner_id, &packages));
        let found = self.engine.image_id(&image).await;
        if found
            .map_err(|e| infra(e, "looking for the system image").reason)?
            .is_some()
        {
            self.log.line(&format!(
                "==> Debian packages {}: {image} (made before)",
                packages.join(" ")
            ));
            self.base = image;
            return Ok(());
        }
        for volume in [LISTS, CACHE] {
            let volume = format!("{}-{volume}", self.name);
            self.engine
                .remove_volume(&volume)
                .await
                .map_err(|e| infra(e, "removing a stale apt volume").reason)?;
        }
        let id = self
            .system_step(DOWNLOAD, DOWNLOAD_SCRIPT, &packages)
            .await?;
        self.remove(&id).await;
        let id = self.system_step(INSTALL, INSTALL_SCRIPT, &packages).await?;
        let committed = self.commit_system(&id, &image, &packages).await;
        self.remove(&id).await;
        committed?;
        self.base = image;
        Ok(())
    }

    /// One apt step; the container's id when apt succeeded.
    async fn system_step(
        &mut self,
        which: &str,
        script: &str,
        packages: &[String],
    ) -> Result<String, String> {
        let name = format!("{}-{which}", self.name);
        let lists = format!("{}-{LISTS}", self.name);
        let cache = format!("{}-{CACHE}", self.name);
        let download = which == DOWNLOAD;
        let mut cmd = vec!["sh".into(), "-c".into(), script.into(), "sh".into()];
        cmd.extend(packages.iter().cloned());
        let mut spec = self.spec(
            &name,
            cmd,
            if download { "host" } else { "none" },
            vec![
                (lists.as_str(), "/var/lib/apt/lists", false),
                (cache.as_str(), "/var/cache/apt", false),
            ],
            None,
        );
        spec.user = "0:0";
        spec.caps = if download { &[] } else { DPKG_CAPS };
        let (id, ended) = step::run(
            self.engine,
            spec,
            None,
            self.deadline,
            &mut self.log,
            &self.live,
        )
        .await
        .map_err(|e| infra(e, "starting an apt step").reason)?;
        match ended {
            Ended::Exited(0) => Ok(id),
            Ended::Exited(_) => {
                self.remove(&id).await;
                Err(self.failure_of_apt())
            }
            other => {
                self.remove(&id).await;
                Err(self.ended_badly(other))
            }
        }
    }

    async fn commit_system(
        &self,
        id: &str,
        image: &str,
        packages: &[String],
    ) -> Result<(), String> {
        let runner = self
            .engine
            .image_facts(&self.base)
            .await
            .map_err(|e| infra(e, "inspecting the runner image").reason)?
            .ok_or_else(|| format!("the runner image {} is missing", self.base))?;
        let (repo, tag) = image.split_once(':').unwrap_or((image, "latest"));
        // A commit keeps the builder's labels unless given others: this
        // image is no project's and no installation's (pruning and the
        // tests' cleanup select dependency images by those labels).
        let mut labels: HashMap<String, String> = self
            .labels
            .keys()
            .map(|label| (label.clone(), String::new()))
            .collect();
        labels.insert(LABEL_PACKAGES.to_owned(), packages.join(" "));
        self.engine
            .commit(
                id,
                CommitSpec {
                    repo,
                    tag,
                    user: "1000:1000",
                    working_dir: "/tmp",
                    env: runner.env,
                    cmd: runner.cmd,
                    labels,
                },
            )
            .await
            .map(drop)
            .map_err(|e| format!("could not save the image with the Debian packages: {e:#}"))
    }

    /// apt's own reason (`E: Unable to locate package frobnicate`), else
    /// the last line it printed.
    fn failure_of_apt(&self) -> String {
        let log = self.log.text();
        let reason = log
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("E: "))
            .map(|l| format!("installing the Debian packages failed: {l}"));
        reason.unwrap_or_else(|| self.failure("installing the Debian packages failed"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_set_of_packages_on_the_same_runner_is_the_same_image() {
        let a = normalized(&["gcc".into(), "libpq-dev".into(), "gcc".into()]);
        let b = normalized(&["libpq-dev".into(), "gcc".into()]);
        assert_eq!(tag("sha256:1", &a), tag("sha256:1", &b));
        assert_ne!(tag("sha256:1", &a), tag("sha256:2", &a));
        assert_ne!(
            tag("sha256:1", &a),
            tag("sha256:1", &normalized(&["gcc".into()]))
        );
    }
}
