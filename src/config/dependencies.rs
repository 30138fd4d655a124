//! How dependency images are built (pip's settings among them), and the
//! service images a project's declared services run from.

use std::path::PathBuf;

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

    /// More `HOST:PORT` the download step may reach besides the hosts of the
    /// index and links above (space-separated): e.g. the files host of a
    /// private index. Nothing else is reachable from a build.
    #[arg(long, env = "DEPS_ALLOWED_HOSTS", default_value = "")]
    pub deps_allowed_hosts: String,

    /// Named volume of the wheels kept across builds: written only by the
    /// download step (wheels the index served, checked against its hashes),
    /// read-only to every step that runs a project's code.
    #[arg(long, env = "DEPS_PIP_CACHE_VOLUME", default_value = "te-wheels")]
    pub deps_pip_cache_volume: String,

    /// CPUs each step of a build may use.
    #[arg(long, env = "DEPS_BUILD_CPUS", default_value_t = 1.0)]
    pub deps_build_cpus: f64,

    /// A build taking longer is stopped and fails.
    #[arg(long, env = "DEPS_BUILD_TIMEOUT_SECS", default_value_t = 900)]
    pub deps_build_timeout_secs: u64,

    /// Dependency images kept per project (the most recently used).
    #[arg(long, env = "DEPS_KEEP_IMAGES", default_value_t = 3)]
    pub deps_keep_images: usize,

    /// Service images a project may declare (`[[services]] image =
    /// "postgres"`), as `NAME=IMAGE,...`: e.g. `postgres=postgres:16` on a
    /// machine with a registry; empty offers none.
    #[arg(long, env = "SERVICE_IMAGES", default_value = super::services::DEFAULT_SERVICE_IMAGES)]
    pub service_images: super::services::ServiceImages,

    /// How long a run waits for its services' `ready` ports before it ends
    /// `error` naming the service (not counted in its time limit).
    #[arg(long, env = "SERVICE_READY_TIMEOUT_SECS", default_value_t = 60)]
    pub service_ready_timeout_secs: u64,
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
