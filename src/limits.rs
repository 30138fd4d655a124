//! An environment's resource limits and the defaults a new environment and
//! a warm container start with. A leaf: the engine, the executor and the
//! environments all use it.

use serde::Serialize;

/// An environment's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct Limits {
    pub millicpus: i32,
    pub memory_mb: i32,
    pub pids_limit: i32,
    pub timeout_secs: i32,
}

impl Limits {
    pub fn cpus(&self) -> f64 {
        f64::from(self.millicpus) / 1000.0
    }

    pub fn nano_cpus(&self) -> i64 {
        i64::from(self.millicpus) * 1_000_000
    }

    pub fn memory_bytes(&self) -> i64 {
        i64::from(self.memory_mb) * 1024 * 1024
    }
}

/// What a new environment gets unless the operator says otherwise; warm
/// containers start with these too, and take a run's own on claim.
pub const DEFAULT_LIMITS: Limits = Limits {
    millicpus: 1000,
    memory_mb: 512,
    pids_limit: 256,
    timeout_secs: 900,
};
