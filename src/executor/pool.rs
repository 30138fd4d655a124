//! Warm sandboxes: containers started ahead of time with the full sandbox,
//! attached and waiting on stdin with pytest already imported. A claimed run
//! takes one of its image, has its environment's limits applied (`docker
//! update`) before any file arrives, and is then exactly like a plain run's
//! container. One container, one run: a warm container is never reused, and
//! the pool is refilled in the background.
//!
//! Which images: the runner image always, and the most recently used
//! projects' dependency images, within the same total (`WARM_POOL`): the
//! slots go one each to the runner image and the newest projects, then round
//! again (`targets`).
//!
//! A waiting container's CPU weight is `WARM_POOL_CPU_SHARES` (default
//! 1024, the engine's default); a run's claim sets 1024 together with its
//! limits, in the same `docker update`, unless the container has them
//! already (an environment with the default limits, at the default weight).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use anyhow::{Context, Result};
use bollard::container::AttachContainerResults;
use serde::Serialize;
use tokio::sync::Notify;

use super::Shared;
use crate::{
    engine::{stats::Figures, Extras, DEFAULT_CPU_SHARES, LABEL_INSTANCE, LABEL_POOL_WORKER},
    limits::DEFAULT_LIMITS,
};

mod idle_cpu;
mod targets;
pub use idle_cpu::IdleCpu;
use targets::targets;

/// How often the pool checks its containers and images.
const CHECK_EVERY: Duration = Duration::from_secs(2);

pub struct Warm {
    pub id: String,
    /// The image's name (`repo:tag`), as runs ask for it.
    image: String,
    /// What the name pointed to when the container was made.
    image_id: String,
    /// The CPU weight it was made with (its limits are `DEFAULT_LIMITS`).
    pub cpu_shares: i64,
    pub attached: AttachContainerResults,
    /// CPU time the container used while it started and waited: not the
    /// run's.
    pub idle_cpu: Arc<IdleCpu>,
}

/// When a warm container is idle on stdin, pytest imported.
const IDLE_AFTER: Duration = Duration::from_secs(3);

pub struct Pool {
    size: usize,
    /// The CPU weight of a waiting container (`WARM_POOL_CPU_SHARES`).
    cpu_shares: i64,
    ready: Mutex<Vec<Warm>>,
    /// Dependency images by project, the most recently used first.
    recent: Mutex<Vec<(String, String)>>,
    last_error: Mutex<Option<String>>,
    refill: Notify,
    /// The image of the container being started now (one at a time).
    starting: Mutex<Option<String>>,
    /// Told when that start ends, made or failed.
    pushed: Notify,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolStatus {
    pub size: usize,
    pub ready: usize,
    /// Ready containers per image.
    pub images: Vec<ImageStatus>,
    /// Why the pool could not start containers lately (runs then take the
    /// plain path).
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageStatus {
    pub image: String,
    pub ready: usize,
}

impl Pool {
    pub fn new(size: usize, cpu_shares: i64) -> Pool {
        Pool {
            size,
            cpu_shares,
            ready: Mutex::new(Vec::new()),
            recent: Mutex::new(Vec::new()),
            last_error: Mutex::new(None),
            refill: Notify::new(),
            starting: Mutex::new(None),
            pushed: Notify::new(),
        }
    }

    /// A warm container of `image`, if one is ready, or being started and
    /// ready within `within` (sooner than a container made for the run
    /// would be, and without starting one more); the pool starts a new one.
    pub async fn take(&self, image: &str, within: Duration) -> Option<Warm> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let pushed = self.pushed.notified();
            tokio::pin!(pushed);
            pushed.as_mut().enable();
            let warm = self.take_ready(image);
            self.refill.notify_one();
            if warm.is_some() {
                return warm;
            }
            let starting = self.starting.lock().unwrap().as_deref() == Some(image);
            if !starting {
                // A start may have ended between the two looks: `tend`
                // pushes its container before it clears `starting`.
                return self.take_ready(image);
            }
            if tokio::time::timeout_at(deadline, pushed).await.is_err() {
                return None;
            }
        }
    }

    fn take_ready(&self, image: &str) -> Option<Warm> {
        let mut ready = self.ready.lock().unwrap();
        ready
            .iter()
            .position(|w| w.image == image)
            .map(|at| ready.remove(at))
    }

    /// Records that a run of `project` uses the dependency image `image`: it
    /// becomes the most recently used, and the pool keeps it warm (in place
    /// of the project's older image, if it had one).
    pub fn used(&self, project: &str, image: &str) {
        let mut recent = self.recent.lock().unwrap();
        if recent
            .first()
            .is_some_and(|(p, i)| p == project && i == image)
        {
            return;
        }
        recent.retain(|(p, _)| p != project);
        recent.insert(0, (project.to_owned(), image.to_owned()));
        recent.truncate(self.size.saturating_sub(1));
        drop(recent);
        self.refill.notify_one();
    }

    /// Takes out (for removal) the ready containers of `image`, and stops
    /// keeping it warm: an operator's rebuild is about to remove it.
    pub fn forget_image(&self, image: &str) -> Vec<String> {
        self.recent.lock().unwrap().retain(|(_, i)| i != image);
        let mut ready = self.ready.lock().unwrap();
        let (gone, kept) = ready.drain(..).partition(|w| w.image == image);
        *ready = kept;
        gone.into_iter().map(|w: Warm| w.id).collect()
    }

    pub fn status(&self) -> PoolStatus {
        let ready = self.ready.lock().unwrap();
        let mut images: Vec<ImageStatus> = Vec::new();
        for warm in ready.iter() {
            match images.iter_mut().find(|s| s.image == warm.image) {
                Some(status) => status.ready += 1,
                None => images.push(ImageStatus {
                    image: warm.image.clone(),
                    ready: 1,
                }),
            }
        }
        PoolStatus {
            size: self.size,
            ready: ready.len(),
            images,
            error: self.last_error.lock().unwrap().clone(),
        }
    }

    fn drain(&self) -> Vec<Warm> {
        self.ready.lock().unwrap().drain(..).collect()
    }

    fn recent_images(&self) -> Vec<String> {
        let recent = self.recent.lock().unwrap();
        recent.iter().map(|(_, image)| image.clone()).collect()
    }

    fn remove_from_recent(&self, image: &str) {
        self.recent.lock().unwrap().retain(|(_, i)| i != image);
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

/// Removes containers that died, belong to an older image or to an image no
/// longer kept warm (or beyond its share), then starts new ones up to the
/// pool's size, the image furthest below its share first.
async fn tend(shared: &Shared) -> Result<()> {
    let current = current_images(shared).await?;
    let targets = targets(
        shared.pool.size,
        &shared.config.runner_image,
        &shared.pool.recent_images(),
    );
    prune(shared, &targets, &current).await?;
    fill(shared, &targets, &current).await
}

/// The images kept warm, each with its current id; an image gone from the
/// engine is no longer kept warm.
async fn current_images(shared: &Shared) -> Result<HashMap<String, String>> {
    let pool = &shared.pool;
    let base_id = shared
        .engine
        .image_id(&shared.config.runner_image)
        .await?
        .with_context(|| format!("the runner image {} is missing", shared.config.runner_image))?;
    let mut current: HashMap<String, String> =
        HashMap::from([(shared.config.runner_image.clone(), base_id)]);
    for image in pool.recent_images() {
        match shared.engine.image_id(&image).await? {
            Some(id) => {
                current.insert(image, id);
            }
            // Pruned or rebuilt away: no longer kept warm.
            None => pool.remove_from_recent(&image),
        }
    }
    Ok(current)
}

/// Removes the ready containers that died, belong to an older image or to
/// an image no longer kept warm (or beyond its share).
async fn prune(
    shared: &Shared,
    targets: &[(String, usize)],
    current: &HashMap<String, String>,
) -> Result<()> {
    let pool = &shared.pool;
    // Check the ready containers without taking them out of the pool, so a
    // run claimed meanwhile still finds them.
    let ready: Vec<(String, String, String)> = pool
        .ready
        .lock()
        .unwrap()
        .iter()
        .map(|w| (w.id.clone(), w.image.clone(), w.image_id.clone()))
        .collect();
    let mut kept: HashMap<String, usize> = HashMap::new();
    for (id, image, image_id) in ready {
        let share = targets
            .iter()
            .find(|(i, _)| *i == image)
            .map_or(0, |(_, n)| *n);
        let have = kept.get(&image).copied().unwrap_or(0);
        let wanted = have < share && current.get(&image) == Some(&image_id);
        let alive = wanted
            && shared
                .engine
                .inspect(&id)
                .await
                .ok()
                .flatten()
                .is_some_and(|s| s.running);
        if alive {
            *kept.entry(image).or_default() += 1;
            continue;
        }
        let stale = {
            let mut ready = pool.ready.lock().unwrap();
            ready
                .iter()
                .position(|w| w.id == id)
                .map(|at| ready.remove(at))
        };
        if stale.is_some() {
            tracing::info!(container = %id, %image, "warm pool: removing a dead, outdated or surplus container");
            shared.engine.remove(&id).await?;
        }
    }
    Ok(())
}

/// Starts containers up to the pool's size, the image furthest below its
/// share first.
async fn fill(
    shared: &Shared,
    targets: &[(String, usize)],
    current: &HashMap<String, String>,
) -> Result<()> {
    let pool = &shared.pool;
    loop {
        let next = {
            let ready = pool.ready.lock().unwrap();
            if ready.len() >= pool.size {
                None
            } else {
                targets
                    .iter()
                    .map(|(image, share)| {
                        let have = ready.iter().filter(|w| w.image == *image).count();
                        (image, share.saturating_sub(have))
                    })
                    .filter(|(_, missing)| *missing > 0)
                    .max_by_key(|(_, missing)| *missing)
                    .map(|(image, _)| image.clone())
            }
        };
        let Some(image) = next else { break };
        let Some(image_id) = current.get(&image) else {
            break;
        };
        *pool.starting.lock().unwrap() = Some(image.clone());
        let started = start_one(shared, &image, image_id).await;
        // Pushed first, then `starting` cleared: see `take`.
        let started = started.map(|warm| pool.ready.lock().unwrap().push(warm));
        *pool.starting.lock().unwrap() = None;
        pool.pushed.notify_waiters();
        started?;
    }
    Ok(())
}

async fn start_one(shared: &Shared, image: &str, image_id: &str) -> Result<Warm> {
    let name = format!("te-{}-pool-{:016x}", shared.instance, rand::random::<u64>());
    let labels = HashMap::from([
        (LABEL_INSTANCE.to_string(), shared.instance.clone()),
        (LABEL_POOL_WORKER.to_string(), shared.worker_id.to_string()),
    ]);
    let engine = &shared.engine;
    let usr_volume = if image == shared.config.runner_image {
        shared.usr_volumes.for_image(engine, image_id).await
    } else {
        None
    };
    let extras = Extras {
        cpu_shares: Some(shared.pool.cpu_shares),
        usr_volume,
        ..Extras::default()
    };
    let id = engine
        .create_sandbox_with(&name, image_id, labels, &DEFAULT_LIMITS, &extras)
        .await?;
    let started = async {
        let attached = engine.attach(&id).await?;
        engine.start(&id).await?;
        anyhow::Ok(attached)
    };
    match started.await {
        Ok(attached) => {
            let idle_cpu = Arc::new(IdleCpu::new());
            let (engine, container, idle) = (engine.clone(), id.clone(), idle_cpu.clone());
            tokio::spawn(async move {
                tokio::time::sleep(IDLE_AFTER).await;
                // A stats reading costs the engine about 8 ms of CPU: none
                // for a container a run has taken already (as in a burst).
                if idle.claimed() {
                    return;
                }
                let stats = engine.stats_now(&container).await.ok().flatten();
                if let Some(figures) = stats.as_ref().and_then(Figures::of) {
                    idle.record(figures.cpu_total_ns);
                }
            });
            Ok(Warm {
                id,
                image: image.to_owned(),
                image_id: image_id.to_owned(),
                cpu_shares: extras.cpu_shares.unwrap_or(DEFAULT_CPU_SHARES),
                attached,
                idle_cpu,
            })
        }
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

#[cfg(test)]
mod tests {
    use super::{targets::names, *};

    #[test]
    fn a_project_used_again_moves_to_the_front_with_its_new_image() {
        let pool = Pool::new(3, 2);
        pool.used("p", "te-deps/p:1");
        pool.used("q", "te-deps/q:1");
        pool.used("p", "te-deps/p:2");
        assert_eq!(pool.recent_images(), names(&["te-deps/p:2", "te-deps/q:1"]));
        pool.used("r", "te-deps/r:1");
        assert_eq!(pool.recent_images(), names(&["te-deps/r:1", "te-deps/p:2"]));
    }
}
