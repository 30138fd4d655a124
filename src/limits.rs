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

    /// Whether a container made with `self` is already capped as `other`
    /// asks (the timeout is the executor's, not the engine's).
    pub fn same_caps(&self, other: &Limits) -> bool {
        (self.millicpus, self.memory_mb, self.pids_limit)
            == (other.millicpus, other.memory_mb, other.pids_limit)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_engine_caps_count_not_the_timeout() {
        let shorter = Limits {
            timeout_secs: 5,
            ..DEFAULT_LIMITS
        };
        assert!(DEFAULT_LIMITS.same_caps(&shorter));
        for other in [
            Limits {
                millicpus: 500,
                ..DEFAULT_LIMITS
            },
            Limits {
                memory_mb: 256,
                ..DEFAULT_LIMITS
            },
            Limits {
                pids_limit: 64,
                ..DEFAULT_LIMITS
            },
        ] {
            assert!(!DEFAULT_LIMITS.same_caps(&other), "{other:?}");
        }
    }
}
