//! Who this process is among the workers sharing one database.

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
    /// When another worker whose lock is free counts as lost.
    pub fn lost_after(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.worker_lost_after)
    }

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

    pub(super) fn validate(&self) -> anyhow::Result<()> {
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
