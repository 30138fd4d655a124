//! What a warm container's start and wait cost in CPU, read once it idles
//! unless a run claimed it first.

use std::sync::atomic::{AtomicU64, Ordering};

/// The CPU time (ns) a warm container used while it started and waited,
/// read in the background once it idles (`IDLE_AFTER`), unless a run claimed
/// it first. Read at the claim, the engine would answer at its next stats
/// tick (up to a second later), which the run would wait for.
pub struct IdleCpu(AtomicU64);

const NOT_READ: u64 = u64::MAX;
const CLAIMED: u64 = u64::MAX - 1;

impl IdleCpu {
    pub(super) fn new() -> IdleCpu {
        IdleCpu(AtomicU64::new(NOT_READ))
    }

    /// At the claim: what was read, or 0 when the container is claimed
    /// before it was read (counted from zero, as a container started for
    /// the run is, its Python's start included); no reading is taken after.
    pub fn claim(&self) -> u64 {
        match self.0.swap(CLAIMED, Ordering::Relaxed) {
            NOT_READ | CLAIMED => 0,
            ns => ns,
        }
    }

    pub(super) fn claimed(&self) -> bool {
        self.0.load(Ordering::Relaxed) == CLAIMED
    }

    pub(super) fn record(&self, ns: u64) {
        let _ = self
            .0
            .compare_exchange(NOT_READ, ns, Ordering::Relaxed, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_cpu_read_before_the_claim_counts_and_after_it_does_not() {
        let read = IdleCpu::new();
        read.record(5);
        assert_eq!(read.claim(), 5);
        let unread = IdleCpu::new();
        assert_eq!(unread.claim(), 0, "claimed before it was read");
        assert!(unread.claimed(), "no reading is taken after the claim");
        unread.record(7);
        assert_eq!(unread.claim(), 0);
    }
}
