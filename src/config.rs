//! Configuration, read from the environment (or flags), with defaults that
//! work with `scripts/run`.

use std::{net::SocketAddr, path::PathBuf};

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

    /// Folder with htmx, Pico CSS and the app's own CSS.
    #[arg(long, env = "ASSETS_DIR", default_value = "assets")]
    pub assets_dir: PathBuf,

    /// Mark the session cookie `Secure` (browsers then send it over HTTPS
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

/// A worker's identity among several sharing one database (`src/executor/presence.rs`).
#[derive(clap::Args, Debug, Clone)]
pub struct WorkerConfig {
    /// Stable name of this worker; default: the hostname and a short hash of
    /// `DOCKER_HOST`.
    #[arg(long, env = "WORKER_NAME")]
    pub worker_name: Option<String>,

    /// Labels of this worker (comma-separated, e.g. `gpu,big`); environments
    /// requiring labels go only to workers having them all.
    #[arg(long, env = "WORKER_LABELS", default_value = "")]
    pub worker_labels: String,

    /// Seconds after its last heartbeat (with its lock free) that a worker
    /// is lost and its running runs are ended by the others.
    #[arg(long, env = "WORKER_LOST_AFTER", default_value_t = 60)]
    pub worker_lost_after: u64,
}

impl WorkerConfig {
    /// The settings from the environment alone (for tests and tools that
    /// build a `Config` by hand).
    pub fn from_env() -> WorkerConfig {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: WorkerConfig,
        }
        <Only as clap::Parser>::parse_from(["test-executor"]).settings
    }

    /// The worker's name: `WORKER_NAME`, else `<hostname>-<6 hex of DOCKER_HOST>`.
    pub fn name(&self) -> String {
        if let Some(name) = &self.worker_name {
            return name.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "worker".into());
        use sha2::Digest;
        let hash = sha2::Sha256::digest(engine_address().as_bytes());
        let hex: String = hash[..3].iter().map(|b| format!("{b:02x}")).collect();
        format!("{host}-{hex}")
    }

    /// The labels, trimmed, without empty ones, sorted and distinct.
    pub fn labels(&self) -> Vec<String> {
        let mut labels: Vec<String> = self
            .worker_labels
            .split(',')
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        labels.sort();
        labels.dedup();
        labels
    }

    fn validate(&self) -> anyhow::Result<()> {
        let name = self.name();
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        {
            anyhow::bail!(
                "WORKER_NAME {name:?} must be 1 to 64 characters of letters, digits, `.`, `_` and `-`"
            );
        }
        if let Err(err) = crate::labels::check(&self.labels()) {
            anyhow::bail!("WORKER_LABELS: {err}");
        }
        if self.worker_lost_after == 0 {
            anyhow::bail!("WORKER_LOST_AFTER must be at least 1 (seconds)");
        }
        Ok(())
    }
}

/// The Docker engine's address as the Docker CLI reads it.
pub fn engine_address() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.trim().is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".into())
}

/// Building a project's dependency image (`src/dependencies`). pip inside
/// the build container sees none of the machine's pip configuration, so the
/// settings a deployment needs (a private index, a corporate CA, timeouts)
/// are read here, under pip's own variable names, and passed in.
#[derive(clap::Args, Debug, Clone)]
pub struct DependencyBuildConfig {
    /// Index pip installs from; unset: pip's default.
    #[arg(long, env = "PIP_INDEX_URL", hide_env_values = true)]
    pub pip_index_url: Option<String>,

    /// Further indexes (space-separated, as pip takes them).
    #[arg(long, env = "PIP_EXTRA_INDEX_URL", hide_env_values = true)]
    pub pip_extra_index_url: Option<String>,

    /// Hosts pip trusts without TLS verification (space-separated).
    #[arg(long, env = "PIP_TRUSTED_HOST")]
    pub pip_trusted_host: Option<String>,

    /// CA bundle (a file on this machine) the index's TLS is verified
    /// against; it is copied into each build.
    #[arg(long, env = "PIP_CERT")]
    pub pip_cert: Option<PathBuf>,

    /// pip's network timeout in seconds.
    #[arg(long, env = "PIP_DEFAULT_TIMEOUT")]
    pub pip_default_timeout: Option<String>,

    /// Extra places pip looks for packages: URLs are passed on, a local
    /// folder's files are copied into each build.
    #[arg(long, env = "PIP_FIND_LINKS")]
    pub pip_find_links: Option<String>,

    /// Network of the build containers (`host` where the engine has no
    /// bridge); runs never have one.
    #[arg(long, env = "DEPS_BUILD_NETWORK", default_value = "host")]
    pub deps_build_network: String,

    /// Named volume that keeps pip's cache across builds.
    #[arg(long, env = "DEPS_PIP_CACHE_VOLUME", default_value = "te-pip-cache")]
    pub deps_pip_cache_volume: String,

    /// A build taking longer is stopped and fails.
    #[arg(long, env = "DEPS_BUILD_TIMEOUT_SECS", default_value_t = 900)]
    pub deps_build_timeout_secs: u64,

    /// Dependency images kept per project (the most recently used).
    #[arg(long, env = "DEPS_KEEP_IMAGES", default_value_t = 3)]
    pub deps_keep_images: usize,
}

impl DependencyBuildConfig {
    /// The settings from the environment alone (for tests and tools that
    /// build a `Config` by hand).
    pub fn from_env() -> DependencyBuildConfig {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: DependencyBuildConfig,
        }
        <Only as clap::Parser>::parse_from(["test-executor"]).settings
    }
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

    pub fn warm_pool(&self) -> usize {
        self.warm_pool.unwrap_or_else(|| self.max_parallel_runs())
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
