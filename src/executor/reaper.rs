//! Removes the containers of finished runs behind running tests. Removing a
//! container costs the engine about as much CPU as a tenth of a warm run;
//! done at once, it slowed the next run of a burst by as much. A finished
//! run's container has exited (its outcome is recorded, its environment is
//! free): it holds only disk until it is removed, when no run of this worker
//! has been going for `QUIET`, or at once when `MAX_PENDING` are waiting.
//! What a crash leaves is removed by the reconciler (containers of runs that
//! are over), and shutdown removes the rest.

use std::{sync::Mutex, time::Duration};

use tokio::{sync::Notify, time::Instant};

use super::Shared;

/// How long this worker must have had no run before the removals start.
const QUIET: Duration = Duration::from_millis(300);
/// Removals that wait at most; one more, and they all go at once.
const MAX_PENDING: usize = 16;

#[derive(Default)]
pub struct Reaper {
    /// The containers to remove, and when the last was added.
    pending: Mutex<(Vec<String>, Option<Instant>)>,
    added: Notify,
}

impl Reaper {
    /// Removes `container` (which has exited) soon.
    pub fn later(&self, container: &str) {
        let mut pending = self.pending.lock().unwrap();
        pending.0.push(container.to_owned());
        pending.1 = Some(Instant::now());
        self.added.notify_one();
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut self.pending.lock().unwrap().0)
    }

    /// Whether to remove now: too many wait, or none was added for `QUIET`
    /// and no run is going (the gap between two runs of a burst is shorter).
    fn due(&self, running: bool, now: Instant) -> bool {
        let pending = self.pending.lock().unwrap();
        let quiet = pending.1.is_none_or(|at| now >= at + QUIET);
        pending.0.len() > MAX_PENDING || (quiet && !running)
    }
}

/// Removes pending containers whenever the worker is quiet, or too many wait.
pub async fn keep_reaping(shared: &Shared) {
    let reaper = &shared.reaper;
    loop {
        reaper.added.notified().await;
        loop {
            tokio::time::sleep(QUIET).await;
            let running = !shared.active.lock().unwrap().is_empty();
            if reaper.due(running, Instant::now()) {
                break;
            }
        }
        remove_all(shared).await;
    }
}

/// Removes every pending container now (and at shutdown).
pub async fn remove_all(shared: &Shared) {
    for container in shared.reaper.take() {
        if let Err(err) = shared.engine.remove(&container).await {
            tracing::warn!(
                container,
                error = format!("{err:#}"),
                "removing a finished run's container; the reconciler will retry"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removals_wait_for_a_quiet_worker_or_too_many() {
        let reaper = Reaper::default();
        assert!(reaper.due(false, Instant::now()), "nothing added: quiet");
        reaper.later("a");
        let later = Instant::now() + QUIET;
        assert!(
            !reaper.due(false, Instant::now()),
            "just added: the next run may come"
        );
        assert!(!reaper.due(true, later), "a run is going");
        assert!(reaper.due(false, later));
        for i in 0..MAX_PENDING {
            reaper.later(&format!("c{i}"));
        }
        assert!(
            reaper.due(true, Instant::now()),
            "too many wait, even while runs go"
        );
        assert_eq!(reaper.take().len(), MAX_PENDING + 1);
    }
}
