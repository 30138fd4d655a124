//! The executor: claims queued runs from Postgres, runs each in its own
//! sandboxed container, and keeps the database and the engine in agreement.
//! It runs inside the server by default; several processes (on several
//! Docker hosts) can share one database.

mod follow;
pub(crate) mod outcome;
pub(crate) mod output;
mod payload;
pub(crate) mod pool;
mod presence;
mod reaper;
mod reconcile;
mod run_task;
mod sampler;
mod services;
mod shard_feed;
pub(crate) mod sink;
mod source;
mod usr_volumes;
mod writer;

use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use anyhow::{Context, Result};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
pub use run_task::container_name;

use crate::store::{database, lifecycle};
use crate::{catalog::Catalog, config::Config};

/// How often the executor looks for work when nobody wakes it.
const POLL: Duration = Duration::from_millis(1000);
/// How often running runs are matched with containers.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

/// What every run task needs.
pub struct Shared {
    pub db: PgPool,
    pub engine: Engine,
    pub catalog: Catalog,
    /// The process's configuration, the same `Arc` the web handlers read:
    /// a setting is read where it is used, never copied here.
    pub config: Arc<Config>,
    /// Names this database's containers on a shared engine.
    pub instance: String,
    /// This process; it holds a Postgres advisory lock on it while alive.
    pub worker_id: i64,
    pub pool: pool::Pool,
    /// The runner image's `/usr` volume, once prepared.
    pub usr_volumes: usr_volumes::UsrVolumes,
    /// Finished runs' containers, removed behind running tests.
    pub reaper: reaper::Reaper,
    /// The service containers of the runs going here.
    pub services: services::Running,
    /// The worker's stable name (`WORKER_NAME`, else from the hostname, read
    /// once) and its labels, sorted: derived from `config` at the start.
    pub name: String,
    pub labels: Vec<String>,
    /// Set by an operator: finish the runs, take no new ones.
    draining: AtomicBool,
    slot_count: usize,
    active: Mutex<HashMap<i64, CancellationToken>>,
    slots: Arc<Semaphore>,
    wake: Notify,
}

/// A handle to the running executor.
#[derive(Clone)]
pub struct Executor {
    shared: Arc<Shared>,
}

impl Executor {
    /// Starts the executor loop in the background.
    pub async fn start(db: PgPool, catalog: Catalog, config: Arc<Config>) -> Result<Executor> {
        let engine = Engine::connect()?.with_tree_room(catalog.caps().bytes);
        let instance = database::installation_id(&db).await?;
        let worker_id: i64 = rand::random::<i64>().abs().max(1);
        let lock = database::hold_worker_lock(&db, worker_id).await?;
        let shared = Arc::new(Shared {
            db,
            engine,
            catalog,
            instance,
            worker_id,
            pool: pool::Pool::new(config.warm_pool(), config.warm_pool_cpu_shares),
            usr_volumes: usr_volumes::UsrVolumes::default(),
            reaper: reaper::Reaper::default(),
            services: services::Running::default(),
            name: config.worker.name(),
            labels: config.worker.labels(),
            draining: AtomicBool::new(false),
            slot_count: config.max_parallel_runs().max(1),
            active: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(config.max_parallel_runs().max(1))),
            config,
            wake: Notify::new(),
        });
        presence::register(&shared).await?;
        let engine = shared.engine.clone();
        tokio::spawn(async move {
            match engine.remove_orphan_usr_volumes().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("removed {n} /usr volume(s) of images that are gone"),
                Err(err) => tracing::warn!(error = format!("{err:#}"), "removing old /usr volumes"),
            }
        });
        tokio::spawn(presence::keep_alive(shared.clone()));
        let reaping = shared.clone();
        tokio::spawn(async move { reaper::keep_reaping(&reaping).await });
        if shared.config.warm_pool() > 0 {
            tokio::spawn(pool::keep_filled(shared.clone()));
        }
        tokio::spawn(run_loop(shared.clone(), lock));
        Ok(Executor { shared })
    }

    /// Tells the loop there may be work (a run was created or freed).
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Kills a run's container at once if this process executes it; other
    /// executors notice the cancel at their next write.
    pub fn cancel(&self, run_id: i64) {
        if let Some(token) = self.shared.active.lock().unwrap().get(&run_id) {
            token.cancel();
        }
        self.wake();
    }

    pub fn pool_status(&self) -> pool::PoolStatus {
        self.shared.pool.status()
    }

    /// Removes this process's warm containers of `image` and stops keeping
    /// it warm (before an operator's rebuild removes it).
    pub async fn forget_image(&self, image: &str) {
        for id in self.shared.pool.forget_image(image) {
            if let Err(err) = self.shared.engine.remove(&id).await {
                tracing::warn!(error = format!("{err:#}"), "removing a warm container");
            }
        }
    }

    /// Removes the warm containers; running runs go on and are resumed by
    /// the next executor.
    pub async fn shutdown(&self) {
        pool::empty(&self.shared).await;
        reaper::remove_all(&self.shared).await;
    }

    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// The service containers of a run this process executes.
    pub fn services_of(&self, run_id: i64) -> Vec<String> {
        self.shared.services.of(run_id)
    }

    /// The executor's pool (as `te_worker`): what builds and runs write
    /// goes through it, never through the web's.
    pub fn db(&self) -> &PgPool {
        &self.shared.db
    }
}

async fn run_loop(shared: Arc<Shared>, lock: PgConnection) {
    let mut lock = Some(lock);
    let mut engine_id: Option<String> = None;
    let mut last_reconcile: Option<tokio::time::Instant> = None;
    loop {
        if last_reconcile.is_none_or(|t| t.elapsed() >= RECONCILE_EVERY)
            && !database::lock_alive(&mut lock).await
        {
            lock = None;
            let retaken = tokio::time::timeout(
                Duration::from_secs(5),
                database::hold_worker_lock(&shared.db, shared.worker_id),
            )
            .await;
            match retaken {
                Ok(Ok(conn)) => {
                    tracing::info!("took the executor's lock again after losing its connection");
                    lock = Some(conn);
                }
                Ok(Err(err)) => tracing::warn!(
                    error = format!("{err:#}"),
                    "taking the executor's lock again"
                ),
                Err(_) => tracing::warn!(
                    "taking the executor's lock again: Postgres did not answer within 5 s"
                ),
            }
        }
        if engine_id.is_none() {
            match shared.engine.info().await {
                Ok(info) => engine_id = Some(info.id),
                Err(err) => tracing::warn!(
                    error = format!("{err:#}"),
                    "Docker engine unreachable; retrying"
                ),
            }
        }
        if let Some(engine_id) = &engine_id {
            if last_reconcile.is_none_or(|t| t.elapsed() >= RECONCILE_EVERY) {
                if let Err(err) = reconcile::reconcile(&shared, engine_id).await {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "reconciling runs with containers"
                    );
                }
                last_reconcile = Some(tokio::time::Instant::now());
            }
            if let Err(err) = claim_and_spawn(&shared, engine_id).await {
                tracing::warn!(error = format!("{err:#}"), "claiming queued runs");
            }
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(POLL) => {}
        }
    }
}

async fn claim_and_spawn(shared: &Arc<Shared>, engine_id: &str) -> Result<()> {
    crate::store::runs::promote_waiters(&shared.db).await?;
    let free = shared.slots.available_permits();
    if free == 0 || shared.draining.load(Ordering::SeqCst) {
        return Ok(());
    }
    let claimed = lifecycle::claim(&shared.db, free, &shared.me(engine_id)).await?;
    for run in claimed {
        let permit = shared
            .slots
            .clone()
            .try_acquire_owned()
            .context("no free slot after claiming")?;
        spawn_run(shared, run, Some(permit), false);
    }
    Ok(())
}

impl Shared {
    /// Who claims and reconciles, as the store wants it.
    fn me<'a>(&'a self, engine_id: &'a str) -> lifecycle::Me<'a> {
        lifecycle::Me {
            worker_id: self.worker_id,
            engine_id,
            name: &self.name,
            labels: &self.labels,
        }
    }
}

/// Starts (or resumes) a run's task; the slot is given back when it ends.
fn spawn_run(
    shared: &Arc<Shared>,
    run: lifecycle::ClaimedRun,
    permit: Option<OwnedSemaphorePermit>,
    resume: bool,
) {
    let token = CancellationToken::new();
    shared.active.lock().unwrap().insert(run.id, token.clone());
    let following = Following {
        shared: shared.clone(),
        run_id: run.id,
        _permit: permit,
    };
    let shared = shared.clone();
    tokio::spawn(async move {
        if resume {
            run_task::resume(shared, run, token).await;
        } else {
            run_task::execute(shared, run, token).await;
        }
        drop(following);
    });
}

/// A run's task follows it while this lives; dropped when the task ends —
/// even by a panic — so the reconciler sees the run unfollowed if it was not
/// finished, and the slot is given back.
struct Following {
    shared: Arc<Shared>,
    run_id: i64,
    _permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.shared.active.lock().unwrap().remove(&self.run_id);
        self.shared.wake.notify_one();
    }
}
