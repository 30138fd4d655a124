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

    /// Do not start the executor in this process (web only).
    #[arg(long, env = "NO_EXECUTOR", default_value_t = false)]
    pub no_executor: bool,

    /// Folder with htmx, Pico CSS and the app's own CSS.
    #[arg(long, env = "ASSETS_DIR", default_value = "assets")]
    pub assets_dir: PathBuf,
}

impl Config {
    pub fn warm_pool(&self) -> usize {
        self.warm_pool.unwrap_or_else(|| self.max_parallel_runs())
    }

    pub fn max_parallel_runs(&self) -> usize {
        self.max_parallel_runs
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}
