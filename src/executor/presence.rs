//! The worker among others: it registers under its stable name, sends a
//! heartbeat (what it runs, its warm sandboxes; it learns whether it is
//! draining), and ends the running runs of workers that are lost — their
//! lock is free and their heartbeat older than `WORKER_LOST_AFTER`.

use std::{
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use anyhow::Result;
use time::OffsetDateTime;

use super::Shared;
use crate::store::{lifecycle, workers};

/// Registers this worker with what its engine reports (if it answers).
pub async fn register(shared: &Shared) -> Result<()> {
    let info = shared.engine.info().await.ok();
    let registration = workers::Registration {
        name: shared.name.clone(),
        lock_id: shared.worker_id,
        engine: crate::config::engine_address(),
        engine_id: info.as_ref().map(|i| i.id.clone()).unwrap_or_default(),
        engine_version: info.as_ref().map(|i| i.version.clone()).unwrap_or_default(),
        cpus: info.as_ref().map_or(0, |i| i.cpus),
        memory_bytes: info.as_ref().map_or(0, |i| i.memory_bytes),
        slots: shared.slot_count,
        warm_pool: shared.pool.status().size,
        labels: shared.labels.clone(),
    };
    workers::register(&shared.db, &registration).await
}

/// How often the heartbeat goes: a few times within `WORKER_LOST_AFTER`,
/// at most every 5 s.
pub fn heartbeat_every(lost_after: Duration) -> Duration {
    (lost_after / 4).clamp(Duration::from_millis(250), Duration::from_secs(5))
}

/// Sends heartbeats and looks for lost workers, for the life of the process.
pub async fn keep_alive(shared: Arc<Shared>) {
    let every = heartbeat_every(shared.config.worker.lost_after());
    loop {
        tokio::time::sleep(every).await;
        if let Err(err) = beat(&shared).await {
            tracing::warn!(error = format!("{err:#}"), "worker heartbeat");
        }
        if let Err(err) = end_lost(&shared).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "ending the runs of lost workers"
            );
        }
    }
}

async fn beat(shared: &Shared) -> Result<()> {
    let running = shared.active.lock().unwrap().len();
    let warm_ready = shared.pool.status().ready;
    match workers::heartbeat(
        &shared.db,
        &shared.name,
        shared.worker_id,
        running,
        warm_ready,
    )
    .await?
    {
        Some(draining) => {
            if shared.draining.swap(draining, Ordering::SeqCst) != draining {
                tracing::info!(draining, "worker draining changed");
            }
        }
        None => {
            // The row went (or a process of the same name took it while this
            // one looked dead): register again, if the name is free.
            tracing::warn!("this worker's row is gone or taken; registering again");
            register(shared).await?;
        }
    }
    Ok(())
}

/// Ends the running runs of every lost worker as `error`, naming it.
async fn end_lost(shared: &Shared) -> Result<()> {
    let lost_after = shared.config.worker.lost_after().as_secs_f64();
    for (name, last_seen) in workers::lost_with_runs(&shared.db, lost_after).await? {
        if name == shared.name {
            continue;
        }
        let reason = format!("worker {name} lost (last seen {})", clock(last_seen));
        let ended = lifecycle::end_lost_worker_runs(&shared.db, &name, &reason, lost_after).await?;
        if !ended.is_empty() {
            tracing::warn!(worker = %name, runs = ?ended, "ended the runs of a lost worker");
            crate::store::runs::promote_waiters(&shared.db).await?;
            shared.wake.notify_one();
        }
    }
    Ok(())
}

/// `12:03:04` (UTC).
fn clock(at: OffsetDateTime) -> String {
    format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn the_heartbeat_goes_a_few_times_within_the_lost_time() {
        assert_eq!(
            super::heartbeat_every(Duration::from_secs(60)),
            Duration::from_secs(5)
        );
        assert_eq!(
            super::heartbeat_every(Duration::from_secs(4)),
            Duration::from_secs(1)
        );
        assert_eq!(
            super::heartbeat_every(Duration::from_millis(100)),
            Duration::from_millis(250)
        );
    }
}
