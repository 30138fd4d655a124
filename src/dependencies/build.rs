//! One dependency build: a builder container from the base image (network
//! for pip, pip's cache volume, no capabilities), the context uploaded, the
//! script run with a deadline and its output kept (bounded), and the
//! container committed as the project's image.

use std::{collections::HashMap, time::Duration};

use futures_util::StreamExt;

use super::{context, ProjectSource, VENV};
use crate::{
    config::DependencyBuildConfig,
    engine::{BuilderSpec, CommitSpec, Engine},
};

/// Labels of builder containers and of the images they make.
pub const LABEL_KEY: &str = "te.dependency-key";
pub const LABEL_PROJECT: &str = "te.project";
/// Builder containers are named `te-depbuild-<database>-<key>`.
pub const BUILDER_PREFIX: &str = "te-depbuild-";
/// On builder containers and dependency images: the database of the
/// installation that made them.
pub const LABEL_DATABASE: &str = "te.dependency-db";
/// Kept of a build's output: its head (what was resolved) and its tail
/// (where it failed).
const LOG_HEAD: usize = 16 * 1024;
const LOG_TAIL: usize = 48 * 1024;
const BUILDER_MEMORY: i64 = 2 * 1024 * 1024 * 1024;
const BUILDER_PIDS: i64 = 1024;

pub struct Built {
    pub size_bytes: Option<i64>,
    pub log: String,
}

pub struct Failed {
    /// pip's own line when it said why, else what went wrong.
    pub reason: String,
    pub log: String,
}

/// Builds `tag` from `base` for the project; the image replaces any of the
/// same tag.
pub async fn run(
    engine: &Engine,
    settings: &DependencyBuildConfig,
    base: &str,
    project: &ProjectSource,
    pip_args: &[String],
    (key, database): (&str, &str),
    (repo, tag): (&str, &str),
) -> Result<Built, Failed> {
    // Named by installation (database) and key: two installations sharing an
    // engine never take each other's builder for a stale one.
    let database: String = database
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .take(40)
        .collect();
    let name = format!("{BUILDER_PREFIX}{database}-{}", &key[..16]);
    // A builder left by a process that died while building this key.
    engine.remove(&name).await.map_err(infra)?;
    let context = context::build_context(project, pip_args, settings).map_err(|e| Failed {
        reason: format!("could not prepare the dependency build: {e:#}"),
        log: String::new(),
    })?;
    let (env, cmd) = engine
        .image_env_and_cmd(base)
        .await
        .map_err(infra)?
        .ok_or_else(|| Failed {
            reason: format!("the runner image {base} is missing"),
            log: String::new(),
        })?;
    // The image carries the database too, so what built it is known (and a
    // test can remove what it built).
    let labels = HashMap::from([
        (LABEL_KEY.to_owned(), key.to_owned()),
        (LABEL_PROJECT.to_owned(), project.name.clone()),
        (LABEL_DATABASE.to_owned(), database.clone()),
    ]);
    let id = engine
        .create_builder(BuilderSpec {
            name: &name,
            image: base,
            user: "1000:1000",
            cmd: vec!["sh".into(), format!("{}/build.sh", context::BUILD_DIR)],
            network: &settings.deps_build_network,
            cache: Some((&settings.deps_pip_cache_volume, context::PIP_CACHE)),
            labels: labels.clone(),
            memory_bytes: BUILDER_MEMORY,
            pids_limit: BUILDER_PIDS,
        })
        .await
        .map_err(infra)?;
    let result = build_in(engine, settings, &id, context).await;
    let outcome = match result {
        Ok((0, log)) => {
            let committed = engine
                .commit(
                    &id,
                    CommitSpec {
                        repo,
                        tag,
                        user: "1000:1000",
                        working_dir: "/tmp",
                        env: with_venv_path(&env),
                        cmd,
                        labels,
                    },
                )
                .await;
            match committed {
                Ok(_) => {
                    let size = engine
                        .image_size(&format!("{repo}:{tag}"))
                        .await
                        .ok()
                        .flatten();
                    Ok(Built {
                        size_bytes: size,
                        log,
                    })
                }
                Err(err) => Err(Failed {
                    reason: format!("could not save the dependency image: {err:#}"),
                    log,
                }),
            }
        }
        Ok((code, log)) => Err(Failed {
            reason: failure_line(&log).unwrap_or_else(|| {
                let last = log
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                format!("the dependency build failed (exit {code}): {}", last.trim())
                    .chars()
                    .take(500)
                    .collect()
            }),
            log,
        }),
        Err(failed) => Err(failed),
    };
    if let Err(err) = engine.remove(&id).await {
        tracing::warn!("{err:#}");
    }
    outcome
}

/// Uploads, starts and follows the builder until it exits or the deadline.
async fn build_in(
    engine: &Engine,
    settings: &DependencyBuildConfig,
    id: &str,
    context: Vec<u8>,
) -> Result<(i64, String), Failed> {
    engine.upload(id, "/", context).await.map_err(infra)?;
    engine.start(id).await.map_err(infra)?;
    let mut log = BoundedLog::default();
    let limit = Duration::from_secs(settings.deps_build_timeout_secs);
    let follow = async {
        let mut output = engine.follow_logs(id);
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(chunk) => log.push(&chunk.into_bytes()),
                Err(err) => {
                    tracing::warn!("reading a dependency build's output: {err}");
                    break;
                }
            }
        }
        engine.wait(id, limit).await
    };
    match tokio::time::timeout(limit, follow).await {
        Ok(Ok(code)) => Ok((code, log.text())),
        Ok(Err(err)) => Err(Failed {
            reason: format!("the dependency build was lost: {err:#}"),
            log: log.text(),
        }),
        Err(_) => {
            let _ = engine.kill(id).await;
            Err(Failed {
                reason: format!(
                    "the dependency build took longer than {} s (DEPS_BUILD_TIMEOUT_SECS)",
                    limit.as_secs()
                ),
                log: log.text(),
            })
        }
    }
}

fn infra(err: anyhow::Error) -> Failed {
    tracing::error!("dependency build: {err:#}");
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

/// Keeps the first `LOG_HEAD` and the last `LOG_TAIL` bytes of the output,
/// with a marker where it was cut.
#[derive(Default)]
struct BoundedLog {
    head: Vec<u8>,
    tail: std::collections::VecDeque<u8>,
    dropped: u64,
}

impl BoundedLog {
    fn push(&mut self, bytes: &[u8]) {
        let room = LOG_HEAD.saturating_sub(self.head.len());
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(to_head);
        self.tail.extend(rest);
        while self.tail.len() > LOG_TAIL {
            let over = self.tail.len() - LOG_TAIL;
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
    }

    fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n[… {} bytes of the build's output left out …]\n",
                self.dropped
            ));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        text.replace('\0', "")
    }
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
    fn a_long_build_log_keeps_its_head_and_tail_and_says_where_it_was_cut() {
        let mut log = BoundedLog::default();
        log.push(b"first line\n");
        for _ in 0..10_000 {
            log.push(b"0123456789abcdef\n");
        }
        log.push(b"ERROR: the end\n");
        let text = log.text();
        assert!(text.starts_with("first line\n"));
        assert!(text.ends_with("ERROR: the end\n"));
        assert!(text.contains("bytes of the build's output left out"));
        assert!(text.len() < LOG_HEAD + LOG_TAIL + 100);
    }

    #[test]
    fn the_venv_comes_first_on_the_images_path() {
        let env = with_venv_path(&["PATH=/usr/bin:/bin".into(), "HOME=/tmp".into()]);
        assert_eq!(env[0], format!("PATH={VENV}/bin:/usr/bin:/bin"));
    }
}
