//! Warm sandboxes: containers started ahead of time with the full sandbox,
//! attached and waiting on stdin with pytest already imported. A claimed run
//! takes one, has its environment's limits applied (`docker update`) before
//! any file arrives, and is then exactly like a plain run's container. One
//! container, one run: a warm container is never reused, and the pool is
//! refilled in the background.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use bollard::container::AttachContainerResults;
use serde::Serialize;
use tokio::sync::Notify;

use super::{
    engine::{LABEL_INSTANCE, LABEL_POOL_WORKER},
    Shared,
};
use crate::limits::DEFAULT_LIMITS;

/// How often the pool checks its containers and the runner image.
const CHECK_EVERY: Duration = Duration::from_secs(2);

pub struct Warm {
    pub id: String,
    image_id: String,
    pub attached: AttachContainerResults,
}

pub struct Pool {
    size: usize,
    ready: Mutex<VecDeque<Warm>>,
    last_error: Mutex<Option<String>>,
    refill: Notify,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub size: usize,
    pub ready: usize,
    /// Why the pool could not start containers lately (runs then take the
    /// plain path).
    pub error: Option<String>,
}

impl Pool {
    pub fn new(size: usize) -> Pool {
        Pool {
            size,
            ready: Mutex::new(VecDeque::new()),
            last_error: Mutex::new(None),
            refill: Notify::new(),
        }
    }

    /// A warm container, if one is ready; the pool starts a new one.
    pub fn take(&self) -> Option<Warm> {
        let warm = self.ready.lock().unwrap().pop_front();
        self.refill.notify_one();
        warm
    }

    pub fn status(&self) -> PoolStatus {
        PoolStatus {
            size: self.size,
            ready: self.ready.lock().unwrap().len(),
            error: self.last_error.lock().unwrap().clone(),
        }
    }

    fn drain(&self) -> Vec<Warm> {
        self.ready.lock().unwrap().drain(..).collect()
    }
}

/// Keeps the pool full and healthy, for the life of the process.
pub async fn keep_filled(shared: Arc<Shared>) {
    let pool = &shared.pool;
    loop {
        if let Err(err) = tend(&shared).await {
            tracing::warn!(
                error = format!("{err:#}"),
                "warm pool: runs take the plain path meanwhile"
            );
            *pool.last_error.lock().unwrap() = Some(format!("{err:#}"));
        } else {
            *pool.last_error.lock().unwrap() = None;
        }
        tokio::select! {
            _ = pool.refill.notified() => {}
            _ = tokio::time::sleep(CHECK_EVERY) => {}
        }
    }
}

/// Removes containers that died or belong to an older image, then starts
/// new ones up to the pool's size.
async fn tend(shared: &Shared) -> Result<()> {
    let pool = &shared.pool;
    let image_id = shared
        .engine
        .image_id(&shared.image)
        .await?
        .with_context(|| format!("the runner image {} is missing", shared.image))?;
    // Check the ready containers without taking them out of the pool, so a
    // run claimed meanwhile still finds them.
    let ready: Vec<(String, String)> = pool
        .ready
        .lock()
        .unwrap()
        .iter()
        .map(|w| (w.id.clone(), w.image_id.clone()))
        .collect();
    for (id, image) in ready {
        let alive = image == image_id
            && shared
                .engine
                .inspect(&id)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.running);
        if !alive {
            let stale = {
                let mut ready = pool.ready.lock().unwrap();
                ready
                    .iter()
                    .position(|w| w.id == id)
                    .and_then(|at| ready.remove(at))
            };
            if stale.is_some() {
                tracing::info!(container = %id, "warm pool: replacing a dead or outdated container");
                shared.engine.remove(&id).await?;
            }
        }
    }
    while pool.ready.lock().unwrap().len() < pool.size {
        let warm = start_one(shared, &image_id).await?;
        pool.ready.lock().unwrap().push_back(warm);
    }
    Ok(())
}

async fn start_one(shared: &Shared, image_id: &str) -> Result<Warm> {
    let name = format!("te-{}-pool-{:016x}", shared.instance, rand::random::<u64>());
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_string(), shared.instance.clone()),
        (LABEL_POOL_WORKER.to_string(), shared.worker_id.to_string()),
    ]);
    let engine = &shared.engine;
    let id = engine
        .create_sandbox(&name, image_id, labels, &DEFAULT_LIMITS)
        .await?;
    let started = async {
        let attached = engine.attach(&id).await?;
        engine.start(&id).await?;
        anyhow::Ok(attached)
    };
    match started.await {
        Ok(attached) => Ok(Warm {
            id,
            image_id: image_id.to_owned(),
            attached,
        }),
        Err(err) => {
            let _ = engine.remove(&id).await;
            Err(err)
        }
    }
}

/// Removes this process's warm containers (on shutdown).
pub async fn empty(shared: &Shared) {
    for warm in shared.pool.drain() {
        let _ = shared.engine.remove(&warm.id).await;
    }
}
