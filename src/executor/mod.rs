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
pub(crate) mod sink;
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

pub use crate::engine::{self, Engine};
pub use run_task::container_name;

use crate::catalog::Catalog;
use crate::store::lifecycle as store;

/// How often the executor looks for work when nobody wakes it.
const POLL: Duration = Duration::from_millis(1000);
/// How often running runs are matched with containers.
const RECONCILE_EVERY: Duration = Duration::from_secs(10);

pub struct Settings {
    pub image: String,
    pub max_parallel_runs: usize,
    pub log_cap_bytes: u64,
    pub log_cap_lines: u64,
    /// Warm containers kept ready; 0 turns the pool off.
    pub warm_pool: usize,
    /// CPU weight of a waiting warm container (2 to 1024).
    pub warm_pool_cpu_shares: i64,
    /// How projects' dependency images are built.
    pub dependencies: crate::config::DependencyBuildConfig,
    /// The worker's stable name, its labels, and when another worker is lost.
    pub name: String,
    pub labels: Vec<String>,
    pub lost_after: Duration,
    /// Whether each run's CPU, memory and pids are sampled.
    pub sample_resources: bool,
}

/// What every run task needs.
pub struct Shared {
    pub db: PgPool,
    pub engine: Engine,
    pub catalog: Catalog,
    pub image: String,
    pub log_cap_bytes: u64,
    pub log_cap_lines: u64,
    pub dependencies: crate::config::DependencyBuildConfig,
    pub sample_resources: bool,
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
    /// The worker's stable name (`WORKER_NAME`) and labels.
    pub name: String,
    pub labels: Vec<String>,
    lost_after: Duration,
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
    pub async fn start(db: PgPool, catalog: Catalog, settings: Settings) -> Result<Executor> {
        let engine = Engine::connect()?.with_tree_room(catalog.caps().bytes);
        let instance = installation_id(&db).await?;
        let worker_id: i64 = rand::random::<i64>().abs().max(1);
        let lock = hold_worker_lock(&db, worker_id).await?;
        let shared = Arc::new(Shared {
            db,
            engine,
            catalog,
            image: settings.image,
            log_cap_bytes: settings.log_cap_bytes,
            log_cap_lines: settings.log_cap_lines,
            dependencies: settings.dependencies,
            sample_resources: settings.sample_resources,
            instance,
            worker_id,
            pool: pool::Pool::new(settings.warm_pool, settings.warm_pool_cpu_shares),
            usr_volumes: usr_volumes::UsrVolumes::default(),
            reaper: reaper::Reaper::default(),
            services: services::Running::default(),
            name: settings.name,
            labels: settings.labels,
            lost_after: settings.lost_after,
            draining: AtomicBool::new(false),
            slot_count: settings.max_parallel_runs.max(1),
            active: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(settings.max_parallel_runs.max(1))),
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
        if settings.warm_pool > 0 {
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
}

async fn installation_id(db: &PgPool) -> Result<String> {
    sqlx::query_scalar("select id from installation")
        .fetch_one(db)
        .await
        .context("reading the installation id")
}

/// Takes the advisory lock that tells other executors this one is alive. The
/// connection is kept for the life of the process; if the process dies, so
/// does the lock, and its runs can be taken over at once.
async fn hold_worker_lock(db: &PgPool, worker_id: i64) -> Result<PgConnection> {
    let mut conn = db
        .acquire()
        .await
        .context("connecting for the executor's lock")?;
    sqlx::query("select pg_advisory_lock($1)")
        .bind(worker_id)
        .execute(&mut *conn)
        .await
        .context("taking the executor's lock")?;
    Ok(conn.detach())
}

/// Whether the lock's connection still works; a Postgres restart ends it,
/// and with it the lock, so other executors would think this one dead.
async fn lock_alive(lock: &mut Option<PgConnection>) -> bool {
    match lock {
        Some(conn) => tokio::time::timeout(
            Duration::from_secs(5),
            sqlx::query("select 1").execute(&mut *conn),
        )
        .await
        .is_ok_and(|done| done.is_ok()),
        None => false,
    }
}

async fn run_loop(shared: Arc<Shared>, lock: PgConnection) {
    let mut lock = Some(lock);
    let mut engine_id: Option<String> = None;
    let mut last_reconcile: Option<tokio::time::Instant> = None;
    loop {
        if last_reconcile.is_none_or(|t| t.elapsed() >= RECONCILE_EVERY)
            && !lock_alive(&mut lock).await
        {
            lock = None;
            let retaken = tokio::time::timeout(
                Duration::from_secs(5),
                hold_worker_lock(&shared.db, shared.worker_id),
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
    crate::store::promote_waiters(&shared.db).await?;
    let free = shared.slots.available_permits();
    if free == 0 || shared.draining.load(Ordering::SeqCst) {
        return Ok(());
    }
    let claimed = store::claim(&shared.db, free, &shared.me(engine_id)).await?;
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
    fn me<'a>(&'a self, engine_id: &'a str) -> store::Me<'a> {
        store::Me {
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
    run: store::ClaimedRun,
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
