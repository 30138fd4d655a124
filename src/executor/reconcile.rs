//! Keeps the database and the Docker engine in agreement, at start-up and
//! periodically: runs marked running that no executor follows — their
//! executor died, or its task for the run gave up (the database was down when
//! it recorded the outcome, the engine never confirmed a kill) — are resumed
//! from their container (or, if it is gone, ended as `error`), and containers
//! of runs that are over are removed. "Busy" is derived from run rows, so
//! once a run is ended its environment is free: no stale locks.

use std::{collections::HashMap, sync::Arc};

use anyhow::Result;

use super::Shared;
use crate::{engine::FoundContainer, store::lifecycle};

pub async fn reconcile(shared: &Arc<Shared>, engine_id: &str) -> Result<()> {
    let containers = shared.engine.list_ours(&shared.instance).await?;
    let by_run: HashMap<i64, &FoundContainer> = containers
        .iter()
        .filter(|c| !c.service)
        .filter_map(|c| Some((c.run_id?, c)))
        .collect();

    take_over_unfollowed(shared, engine_id, &by_run).await?;
    remove_leftovers(shared, &containers).await?;
    crate::store::runs::promote_waiters(&shared.db).await?;
    Ok(())
}

/// Takes over the running runs no executor follows: resumed from their
/// container, or ended as lost when it is gone.
async fn take_over_unfollowed(
    shared: &Arc<Shared>,
    engine_id: &str,
    by_run: &HashMap<i64, &FoundContainer>,
) -> Result<()> {
    let followed: Vec<i64> = shared.active.lock().unwrap().keys().copied().collect();
    for (run_id, worker) in
        lifecycle::unfollowed(&shared.db, &shared.me(engine_id), &followed).await?
    {
        let ours = worker == shared.worker_id;
        if !ours && worker != 0 && lifecycle::worker_alive(&shared.db, worker).await? {
            continue;
        }
        let Some(run) = lifecycle::take_over(&shared.db, run_id, worker, shared.worker_id).await?
        else {
            continue;
        };
        if ours {
            tracing::warn!(
                run_id,
                "resuming a run whose task ended without recording it"
            );
        }
        if by_run.contains_key(&run_id) {
            // A resumed run is running already: it goes even over the cap.
            let permit = shared.slots.clone().try_acquire_owned().ok();
            super::spawn_run(shared, run, permit, true);
        } else {
            tracing::warn!(run_id, "run lost: its container is gone");
            let reason = "run lost: its container disappeared while no executor was watching it";
            lifecycle::finish(&shared.db, run_id, &lifecycle::Outcome::error(reason)).await?;
        }
    }
    Ok(())
}

/// Removes the containers of runs that are over and the warm containers of
/// executors that are gone.
async fn remove_leftovers(shared: &Shared, containers: &[FoundContainer]) -> Result<()> {
    // Containers whose run is over (cancelled, or finished just before a
    // crash) and that no task of ours is handling.
    let mut ids: Vec<i64> = containers.iter().filter_map(|c| c.run_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let active = lifecycle::active_ids(&shared.db, &ids).await?;
    let handled: Vec<i64> = shared.active.lock().unwrap().keys().copied().collect();
    // (its services too)
    for container in containers {
        let Some(run_id) = container.run_id else {
            continue;
        };
        if !active.contains(&run_id) && !handled.contains(&run_id) {
            tracing::info!(run_id, container = %container.name, "removing a container of a run that is over");
            shared.engine.remove(&container.id).await?;
        }
    }
    // Warm containers kept by an executor that is gone.
    for container in containers {
        match container.pool_worker {
            Some(worker) if worker == shared.worker_id => {}
            Some(worker) if lifecycle::worker_alive(&shared.db, worker).await? => {}
            Some(_) => {
                tracing::info!(container = %container.name, "removing a warm container left by a stopped executor");
                shared.engine.remove(&container.id).await?;
            }
            None if container.run_id.is_none() => shared.engine.remove(&container.id).await?,
            None => {}
        }
    }
    Ok(())
}
