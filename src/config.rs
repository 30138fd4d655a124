//! Configuration, read from the environment (or flags), with defaults that
//! work with `scripts/run`.

use std::{net::SocketAddr, path::PathBuf};

mod dependencies;
mod services;
mod worker;
pub use dependencies::DependencyBuildConfig;
pub use services::{ServiceImages, DEFAULT_SERVICE_IMAGES};
pub use worker::{engine_address, WorkerConfig};

/// Default of `MAX_QUEUED_PER_USER`: room for a person's suite in 20
/// environments twice over and then some.
pub const DEFAULT_MAX_QUEUED_PER_USER: u32 = 50;
/// Default of `MAX_QUEUED`: ten people's worth of full queues.
pub const DEFAULT_MAX_QUEUED: u32 = 500;

#[derive(clap::Parser, Debug, Clone)]
#[command(version, about = "Runs pytest files in sandboxed Docker containers")]
pub struct Config {
    /// Postgres connection string; `scripts/run` provisions a local one when unset.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,

    /// Address the web server listens on.
    #[arg(long, env = "BIND", default_value = "127.0.0.1:8000")]
    pub bind: SocketAddr,

    /// Folder whose `test_*.py` / `*_test.py` files make the test catalog.
    #[arg(long, env = "TESTS_DIR", default_value = "sample-tests")]
    pub tests_dir: PathBuf,

    /// Image every run's container is created from.
    #[arg(
        long,
        env = "RUNNER_IMAGE",
        default_value = "test-executor-runner:latest"
    )]
    pub runner_image: String,

    /// Runs executing at once in this process; default: the number of CPUs.
    #[arg(long, env = "MAX_PARALLEL_RUNS")]
    pub max_parallel_runs: Option<usize>,

    /// Secret that lets operators change environments; unset disables that.
    #[arg(long, env = "OPERATOR_TOKEN", hide_env_values = true)]
    pub operator_token: Option<String>,

    /// Secret a Prometheus scrape of `/metrics` must send as a bearer
    /// token; unset: `/metrics` is open, like `/healthz`.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Runs one username may have waiting as `queued`; more are refused (429).
    #[arg(long, env = "MAX_QUEUED_PER_USER", default_value_t = DEFAULT_MAX_QUEUED_PER_USER)]
    pub max_queued_per_user: u32,

    /// Runs all users together may have waiting as `queued`; more are
    /// refused (429), so no one can grow the queue without bound.
    #[arg(long, env = "MAX_QUEUED", default_value_t = DEFAULT_MAX_QUEUED)]
    pub max_queued: u32,

    /// Per-run cap on stored log output, in bytes.
    #[arg(long, env = "LOG_CAP_BYTES", default_value_t = 32 * 1024 * 1024)]
    pub log_cap_bytes: u64,

    /// Per-run cap on stored log lines (an empty line costs a row too).
    #[arg(long, env = "LOG_CAP_LINES", default_value_t = 1_000_000)]
    pub log_cap_lines: u64,

    /// Sandboxes kept started and waiting, so a run need not wait for a
    /// container; default: MAX_PARALLEL_RUNS; 0 turns the pool off.
    #[arg(long, env = "WARM_POOL")]
    pub warm_pool: Option<usize>,

    /// CPU weight (`cpu-shares`, 2–1024) of a waiting warm sandbox; a run's
    /// claim raises it to 1024. Lower lets refills yield to tests when the
    /// cores are contended; measured, it gained nothing on a quiet host and
    /// left sandboxes cold on a host busy with other work (README, Figures).
    #[arg(long, env = "WARM_POOL_CPU_SHARES", default_value_t = 1024)]
    pub warm_pool_cpu_shares: i64,
    /// Sample each run's CPU, memory and pids about once a second (`false`
    /// turns it off, e.g. to measure what it costs).
    #[arg(long, env = "SAMPLE_RESOURCES", default_value_t = true, action = clap::ArgAction::Set)]
    pub sample_resources: bool,

    /// Do not start the executor in this process (web only).
    #[arg(long, env = "NO_EXECUTOR", default_value_t = false)]
    pub no_executor: bool,

    /// Largest project tree a run may send into its container, in bytes
    /// (the sandbox's tmpfs grows with it).
    #[arg(long, env = "PROJECT_CAP_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub project_cap_bytes: u64,

    /// Most files a project tree sent into a run's container may have.
    #[arg(long, env = "PROJECT_CAP_FILES", default_value_t = 20_000)]
    pub project_cap_files: usize,

    /// Bytes of tree contents (`submit --tree`) one username may have
    /// stored; unused trees go after RETENTION_DAYS.
    #[arg(long, env = "TREE_QUOTA_BYTES", default_value_t = 1024 * 1024 * 1024)]
    pub tree_quota_bytes: u64,

    /// Bytes of tree contents all usernames together may have stored (a
    /// username is free text: this is what bounds the disk).
    #[arg(long, env = "TREE_TOTAL_BYTES", default_value_t = 10 * 1024 * 1024 * 1024)]
    pub tree_total_bytes: u64,

    /// Seconds an upload's whole body may take to arrive (`PUT /api/v1/blobs`,
    /// the tree calls, the browser's archive); a slower one is answered 408.
    #[arg(long, env = "UPLOAD_BODY_TIMEOUT_SECS", default_value_t = 120)]
    pub upload_body_timeout_secs: u64,

    /// Folder with htmx, Pico CSS and the app's own CSS.
    #[arg(long, env = "ASSETS_DIR", default_value = "assets")]
    pub assets_dir: PathBuf,

    /// Mark the session and CSRF cookies `Secure` (browsers then send them over HTTPS
    /// only): set it when the app is reached through HTTPS.
    #[arg(long, env = "SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// How often expired browser sessions are deleted from Postgres, in seconds.
    #[arg(long, env = "SESSION_CLEANUP_SECS", default_value_t = 3600)]
    pub session_cleanup_secs: u64,

    /// How the server writes its own log lines: `text`, or `json` (one
    /// object a line).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,

    /// Days after which a finished run's logs, samples and test results are
    /// deleted (its row stays); unset keeps everything.
    #[arg(long, env = "RETENTION_DAYS")]
    pub retention_days: Option<u32>,

    /// How often the retention pass looks for runs past RETENTION_DAYS, in seconds.
    #[arg(long, env = "RETENTION_INTERVAL_SECS", default_value_t = 3600)]
    pub retention_interval_secs: u64,

    /// How dependency images are built (pip's settings among them).
    #[command(flatten)]
    pub dependencies: DependencyBuildConfig,

    /// Who this process is among the workers sharing the database.
    #[command(flatten)]
    pub worker: WorkerConfig,
}

impl Config {
    /// Refuses settings that would start a server weaker than its operator
    /// meant: a blank `OPERATOR_TOKEN` (what compose's `- OPERATOR_TOKEN`
    /// passes when the variable is unset) would make a blank sign-in an operator.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let Some(token) = &self.operator_token {
            if token.trim().is_empty() {
                anyhow::bail!(
                    "OPERATOR_TOKEN is set but blank: unset it to disable operator actions, \
                     or set it to a long random secret (e.g. `openssl rand -hex 32`)"
                );
            }
            if token.trim() != token {
                anyhow::bail!(
                    "OPERATOR_TOKEN starts or ends with white space: remove it, so the token \
                     an operator types is the token the server expects"
                );
            }
        }
        if !(2..=1024).contains(&self.warm_pool_cpu_shares) {
            anyhow::bail!(
                "WARM_POOL_CPU_SHARES must be from 2 (waiting sandboxes yield to tests) to 1024 (the default weight)"
            );
        }
        if self
            .metrics_token
            .as_deref()
            .is_some_and(|t| t.trim().is_empty() || t.trim() != t)
        {
            anyhow::bail!(
                "METRICS_TOKEN is blank or padded with white space: unset it to leave /metrics \
                 open, or set it to a random secret and give it to Prometheus"
            );
        }
        if self.max_queued_per_user == 0 || self.max_queued == 0 {
            anyhow::bail!(
                "MAX_QUEUED_PER_USER and MAX_QUEUED must be at least 1 (0 would refuse every run)"
            );
        }
        if self.session_cleanup_secs == 0 {
            anyhow::bail!("SESSION_CLEANUP_SECS must be at least 1");
        }
        if self.retention_interval_secs == 0 {
            anyhow::bail!("RETENTION_INTERVAL_SECS must be at least 1");
        }
        self.worker.validate()
    }

    pub fn project_caps(&self) -> Caps {
        Caps {
            bytes: self.project_cap_bytes,
            files: self.project_cap_files,
        }
    }

    pub fn queue_caps(&self) -> QueueCaps {
        QueueCaps {
            per_user: self.max_queued_per_user,
            total: self.max_queued,
        }
    }

    pub fn warm_pool(&self) -> usize {
        self.warm_pool.unwrap_or_else(|| self.max_parallel_runs())
    }

    /// What tree contents may take on this server.
    pub fn tree_quota(&self) -> TreeQuota {
        TreeQuota {
            per_user: self.tree_quota_bytes,
            total: self.tree_total_bytes,
        }
    }

    pub fn max_parallel_runs(&self) -> usize {
        self.max_parallel_runs
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

/// How big a tree a run may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub bytes: u64,
    pub files: usize,
}

impl Default for Caps {
    fn default() -> Self {
        Caps {
            bytes: 64 * 1024 * 1024,
            files: 20_000,
        }
    }
}

/// How many runs may wait as `queued`: per username and in all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCaps {
    pub per_user: u32,
    pub total: u32,
}

/// What tree contents may take: per username (`TREE_QUOTA_BYTES`) and all
/// together (`TREE_TOTAL_BYTES`).
#[derive(Debug, Clone, Copy)]
pub struct TreeQuota {
    pub per_user: u64,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Config;

    fn with_token(token: Option<&str>) -> Config {
        let mut args = vec!["test-executor", "--database-url", "postgres://x/y"];
        if let Some(token) = token {
            args.extend(["--operator-token", token]);
        }
        Config::try_parse_from(args).unwrap()
    }

    #[test]
    fn a_blank_operator_token_is_refused() {
        for blank in ["", " ", "\t\n"] {
            let err = with_token(Some(blank)).validate().unwrap_err().to_string();
            assert!(err.contains("OPERATOR_TOKEN is set but blank"), "{err}");
        }
    }

    #[test]
    fn a_token_with_surrounding_space_is_refused() {
        assert!(with_token(Some(" secret ")).validate().is_err());
    }

    fn with_args(extra: &[&str]) -> Config {
        let mut args = vec!["test-executor", "--database-url", "postgres://x/y"];
        args.extend(extra);
        Config::try_parse_from(args).unwrap()
    }

    #[test]
    fn worker_labels_are_split_sorted_and_checked() {
        let config = with_args(&["--worker-labels", " gpu, big,,gpu "]);
        assert_eq!(config.worker.labels(), ["big", "gpu"]);
        config.validate().unwrap();
        let err = with_args(&["--worker-labels", "GPU"])
            .validate()
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("WORKER_LABELS: \"GPU\" is not a label"),
            "{err}"
        );
    }

    #[test]
    fn a_worker_name_is_a_short_word() {
        let config = with_args(&["--worker-name", "beta-2.eu"]);
        assert_eq!(config.worker.name(), "beta-2.eu");
        config.validate().unwrap();
        for bad in ["", "a b", "x/y"] {
            assert!(
                with_args(&["--worker-name", bad]).validate().is_err(),
                "{bad:?}"
            );
        }
        assert!(with_args(&["--worker-lost-after", "0"]).validate().is_err());
    }

    #[test]
    fn the_default_worker_name_is_the_host_and_a_hash_of_the_engine() {
        let name = with_args(&[]).worker.name();
        let (_, hash) = name.rsplit_once('-').unwrap();
        assert_eq!(hash.len(), 6, "{name}");
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{name}");
    }

    #[test]
    fn queue_caps_default_to_50_per_user_and_500_in_all_and_zero_is_refused() {
        let caps = with_args(&[]).queue_caps();
        assert_eq!((caps.per_user, caps.total), (50, 500));
        let set = with_args(&["--max-queued-per-user", "3", "--max-queued", "7"]);
        assert_eq!((set.queue_caps().per_user, set.queue_caps().total), (3, 7));
        for zero in ["--max-queued", "--max-queued-per-user"] {
            let err = with_args(&[zero, "0"]).validate().unwrap_err().to_string();
            assert!(err.contains("must be at least 1"), "{zero}: {err}");
        }
    }

    #[test]
    fn an_unset_or_real_token_is_accepted() {
        with_token(None).validate().unwrap();
        with_token(Some("a-long-random-secret")).validate().unwrap();
    }

    #[test]
    fn log_format_is_text_json_or_refused() {
        use crate::telemetry::LogFormat;
        assert_eq!(with_token(None).log_format, LogFormat::Text);
        let json = Config::try_parse_from([
            "test-executor",
            "--database-url",
            "postgres://x/y",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert_eq!(json.log_format, LogFormat::Json);
        let err = Config::try_parse_from([
            "test-executor",
            "--database-url",
            "postgres://x/y",
            "--log-format",
            "xml",
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("possible values: text, json"), "{err}");
    }
}
