//! One dependency build, in steps, each its own container from the base
//! image with no capabilities, no new privileges, uid 1000, CPU, memory and
//! process caps, under one deadline, and never a network:
//!
//! 1. **install, kept wheels only**: when every wheel is kept already, the
//!    project installs offline at once (the common rebuild);
//! 2. **download** (`egress.rs`): the checked requirements, wheels only, into
//!    the kept wheels; failing that, source archives too, into this build's
//!    own volume. No code of the project runs; only the index is reachable;
//! 3. **metadata**: the project's own requirements, read offline from its
//!    build backend (project code: no network, no pip settings, the wheels
//!    read-only), checked and downloaded as in 2;
//! 4. **install**: the venv, offline, committed as the project's image.
//!
//! A project that declares Debian packages (`[build] system_packages`)
//! builds on the runner image with them installed (`steps/system.rs`).

mod steps;

use steps::Build;
pub use steps::BUILDER_PREFIX;

use super::{
    declaration::Declaration,
    requirements::{Refused, Requirements},
    step::Live,
    ProjectSource, VENV,
};
use crate::{
    config::DependencyBuildConfig,
    engine::{CommitSpec, Engine},
};

/// Labels of builder containers and of the images they make.
pub const LABEL_KEY: &str = "te.dependency-key";
pub const LABEL_PROJECT: &str = "te.project";
/// On builder containers and dependency images: the database of the
/// installation that made them.
pub const LABEL_DATABASE: &str = "te.dependency-db";
/// On dependency images: the installation's id (checked on reuse).
pub const LABEL_INSTALLATION: &str = "te.installation";

pub struct Built {
    pub size_bytes: Option<i64>,
    pub log: String,
}

pub struct Failed {
    /// pip's own line when it said why, else what went wrong.
    pub reason: String,
    pub log: String,
}

/// Who a build is for: its key, the database and id of the installation.
pub struct Owner<'a> {
    pub key: &'a str,
    pub database: &'a str,
    pub installation: &'a str,
}

/// Builds `tag` from `base` for the project; the image replaces any of the
/// same tag.
pub async fn run(
    engine: &Engine,
    settings: &DependencyBuildConfig,
    base: &str,
    project: &ProjectSource,
    owner: Owner<'_>,
    (repo, tag): (&str, &str),
    live: Live,
) -> Result<Built, Failed> {
    let (mut reqs, declared) = inputs(settings, project)?;
    let mut build = Build::new(engine, settings, base, project, &owner, live);
    build.env = declared
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let image = match build.base_image(&declared.system_packages).await {
        Ok(image) => image,
        Err(reason) => {
            let log = build.finish().await;
            return Err(Failed { reason, log });
        }
    };
    let installed = build.steps(&mut reqs).await;
    let outcome = match installed {
        Ok(id) => {
            let committed = engine
                .commit(
                    &id,
                    CommitSpec {
                        repo,
                        tag,
                        user: "1000:1000",
                        working_dir: "/tmp",
                        env: with_venv_path(&image.env),
                        cmd: image.cmd,
                        labels: build.labels.clone(),
                    },
                )
                .await;
            match committed {
                Ok(_) => {
                    let facts = engine.image_facts(&format!("{repo}:{tag}")).await;
                    Ok(facts.ok().flatten().and_then(|f| f.size))
                }
                Err(err) => Err(format!("could not save the dependency image: {err:#}")),
            }
        }
        Err(reason) => Err(reason),
    };
    let log = build.finish().await;
    match outcome {
        Ok(size_bytes) => Ok(Built { size_bytes, log }),
        Err(reason) => Err(Failed { reason, log }),
    }
}

/// What the build installs, checked, and what the project declares.
fn inputs(
    settings: &DependencyBuildConfig,
    project: &ProjectSource,
) -> Result<(Requirements, Declaration), Failed> {
    let refused = |reason: String| Failed {
        reason,
        log: String::new(),
    };
    let mut reqs = Requirements::of_files(project).map_err(|r| refused(r.to_string()))?;
    let build_requires = project.build_requires().map_err(refused)?;
    reqs.add("pyproject.toml [build-system] requires", &build_requires)
        .map_err(|r: Refused| refused(r.to_string()))?;
    let offered = settings.service_images.names();
    let declared = project
        .declaration(&offered)
        .map_err(|invalid| refused(invalid.to_string()))?;
    Ok((reqs, declared))
}

fn infra(err: anyhow::Error, doing: &str) -> Failed {
    tracing::error!("dependency build, {doing}: {err:#}");
    Failed {
        reason: format!("could not build the dependency image: {err:#}"),
        log: String::new(),
    }
}

/// The base image's environment with the venv first on `PATH`, so the
/// image's command (`python3 …`) is the venv's Python.
fn with_venv_path(env: &[String]) -> Vec<String> {
    let path = env
        .iter()
        .find_map(|v| v.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    vec![
        format!("PATH={VENV}/bin:{path}"),
        format!("VIRTUAL_ENV={VENV}"),
    ]
}

/// The line of pip's output that says why it failed: its last `ERROR:` line
/// that is not a generic summary.
pub fn failure_line(log: &str) -> Option<String> {
    let generic = |line: &str| {
        line.starts_with("Could not find a version that satisfies")
            || line.starts_with("Command errored out")
            || line.starts_with("Failed building")
    };
    let errors: Vec<&str> = log
        .lines()
        .filter_map(|line| line.trim().strip_prefix("ERROR: "))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    // A build backend's own failure ends its quoted output: pip prints it
    // between `╰─> [N lines of output]` and `[end of output]`.
    let backend = || {
        let lines: Vec<&str> = log.lines().map(str::trim).collect();
        let end = lines.iter().rposition(|l| *l == "[end of output]")?;
        lines[..end].iter().rev().find(|l| !l.is_empty()).copied()
    };
    errors
        .iter()
        .rev()
        .find(|line| !generic(line))
        .copied()
        .or_else(backend)
        .or(errors.last().copied())
        .map(|line| line.chars().take(500).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pips_own_reason_is_the_failure_line() {
        let log = "Collecting frobnicate==9\n\
                   ERROR: Could not find a version that satisfies the requirement frobnicate==9 (from versions: none)\n\
                   ERROR: No matching distribution found for frobnicate==9\n";
        assert_eq!(
            failure_line(log).unwrap(),
            "No matching distribution found for frobnicate==9"
        );
        assert_eq!(failure_line("all good\n"), None);
    }

    #[test]
    fn a_build_backends_failure_is_its_last_quoted_line() {
        let log = "  error: subprocess-exited-with-error\n\
                   \u{20}\u{20}× Getting requirements to build editable did not run successfully.\n\
                   \u{20}\u{20}╰─> [3 lines of output]\n\
                   \u{20}\u{20}    Traceback (most recent call last):\n\
                   \u{20}\u{20}    ValueError: `project` must contain ['version'] properties\n\
                   \u{20}\u{20}    [end of output]\n\
                   \u{20}\u{20}note: This error originates from a subprocess, and is likely not a problem with pip.\n";
        assert_eq!(
            failure_line(log).unwrap(),
            "ValueError: `project` must contain ['version'] properties"
        );
    }

    #[test]
    fn the_venv_comes_first_on_the_images_path() {
        let env = with_venv_path(&["PATH=/usr/bin:/bin".into(), "HOME=/tmp".into()]);
        assert_eq!(env[0], format!("PATH={VENV}/bin:/usr/bin:/bin"));
    }
}
