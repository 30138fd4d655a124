//! The `workers` table: each executor process registers under a stable name,
//! sends a heartbeat, and is seen online, draining or lost. Liveness is the
//! advisory lock its process holds (on `lock_id`) together with the heartbeat.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::environment_id::EnvironmentId;

/// What a worker tells about itself when it starts.
#[derive(Debug, Clone)]
pub struct Registration {
    pub name: String,
    pub lock_id: i64,
    pub engine: String,
    pub engine_id: String,
    pub engine_version: String,
    pub cpus: i64,
    pub memory_bytes: i64,
    pub slots: usize,
    pub warm_pool: usize,
    pub labels: Vec<String>,
}

/// Whether the advisory lock `w.lock_id` is held by a live session (in this
/// database). A bigint key is stored as (classid, objid) = (high, low).
pub(super) const LOCK_HELD: &str = "exists (select 1 from pg_locks l
     where l.locktype = 'advisory' and l.granted and l.objsubid = 1
       and l.database = (select oid from pg_database where datname = current_database())
       and ((l.classid::int8 << 32) | l.objid::int8) = w.lock_id)";

/// Registers (or re-registers) a worker. Refused while another live process
/// uses the same name: two processes under one name would take each other's
/// runs for their own.
pub async fn register(db: &PgPool, r: &Registration) -> Result<()> {
    let sql = format!(
        "insert into workers as w (name, lock_id, engine, engine_id, engine_version, cpus,
                memory_bytes, slots, warm_pool, labels)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         on conflict (name) do update
            set lock_id = excluded.lock_id, engine = excluded.engine,
                engine_id = excluded.engine_id, engine_version = excluded.engine_version,
                cpus = excluded.cpus, memory_bytes = excluded.memory_bytes,
                slots = excluded.slots, warm_pool = excluded.warm_pool,
                labels = excluded.labels, started_at = now(), last_seen = now(),
                warm_ready = 0, running = 0, draining = false
          where w.lock_id = excluded.lock_id or not {LOCK_HELD}"
    );
    let done = sqlx::query(&sql)
        .bind(&r.name)
        .bind(r.lock_id)
        .bind(&r.engine)
        .bind(&r.engine_id)
        .bind(&r.engine_version)
        .bind(r.cpus as i32)
        .bind(r.memory_bytes)
        .bind(r.slots as i32)
        .bind(r.warm_pool as i32)
        .bind(&r.labels)
        .execute(db)
        .await
        .context("registering the worker")?;
    if done.rows_affected() == 0 {
        anyhow::bail!(
            "WORKER_NAME {:?} is in use by another live worker: give each worker its own name",
            r.name
        );
    }
    Ok(())
}

/// Records that the worker is alive, with what it runs now. Returns whether
/// it is draining, or `None` when its row is gone or taken by another
/// process of the same name (it must register again).
pub async fn heartbeat(
    db: &PgPool,
    name: &str,
    lock_id: i64,
    running: usize,
    warm_ready: usize,
) -> Result<Option<bool>> {
    sqlx::query_scalar(
        "update workers set last_seen = now(), running = $3, warm_ready = $4
          where name = $1 and lock_id = $2
         returning draining",
    )
    .bind(name)
    .bind(lock_id)
    .bind(running as i32)
    .bind(warm_ready as i32)
    .fetch_optional(db)
    .await
    .context("sending the worker's heartbeat")
}

/// A worker as the API and the page show it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Worker {
    pub name: String,
    pub state: String,
    pub labels: Vec<String>,
    pub slots: i32,
    pub running: i32,
    pub warm_ready: i32,
    pub engine: String,
    pub engine_version: String,
    pub cpus: i32,
    pub memory_bytes: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
}

/// Every registered worker, by name; `running` counts its running runs.
pub async fn list(db: &PgPool, lost_after_secs: f64) -> Result<Vec<Worker>> {
    let sql = format!(
        "select w.name,
                case when not {LOCK_HELD} and w.last_seen < now() - make_interval(secs => $1)
                     then 'lost' when w.draining then 'draining' else 'online' end as state,
                w.labels, w.slots,
                (select count(*)::int4 from runs r
                  where r.status = 'running' and r.worker_name = w.name) as running,
                w.warm_ready, w.engine, w.engine_version, w.cpus, w.memory_bytes,
                w.started_at, w.last_seen
           from workers w order by w.name"
    );
    sqlx::query_as(&sql)
        .bind(lost_after_secs)
        .fetch_all(db)
        .await
        .context("listing workers")
}

/// Marks a worker as draining (it finishes its runs and takes no new ones)
/// or not (it takes runs again); the worker sees it at its next heartbeat.
/// `false` if there is no such worker.
pub async fn set_draining(db: &PgPool, name: &str, draining: bool) -> Result<bool> {
    let done = sqlx::query("update workers set draining = $2 where name = $1")
        .bind(name)
        .bind(draining)
        .execute(db)
        .await
        .context("draining or resuming a worker")?;
    Ok(done.rows_affected() > 0)
}

/// Lost workers that still have running runs: their lock is free and their
/// last heartbeat older than `lost_after_secs`. (name, last seen)
pub async fn lost_with_runs(
    db: &PgPool,
    lost_after_secs: f64,
) -> Result<Vec<(String, OffsetDateTime)>> {
    let sql = format!(
        "select w.name, w.last_seen from workers w
          where w.last_seen < now() - make_interval(secs => $1) and not {LOCK_HELD}
            and exists (select 1 from runs r where r.status = 'running' and r.worker_name = w.name)"
    );
    sqlx::query_as(&sql)
        .bind(lost_after_secs)
        .fetch_all(db)
        .await
        .context("looking for lost workers")
}

/// Where a waiting run of an environment stands with the workers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Placement {
    /// Why no worker takes it: none online has every label the environment
    /// requires (or none is online at all).
    pub problem: Option<String>,
    /// A worker that can take it has a free slot: it starts in a moment
    /// rather than waiting for one.
    pub free_slot: bool,
}

/// Where a run of this environment that holds it stands (see `Placement`).
pub async fn placement(
    db: &PgPool,
    environment_id: EnvironmentId,
    lost_after_secs: f64,
) -> Result<Placement> {
    let alive = format!("({LOCK_HELD} or w.last_seen >= now() - make_interval(secs => $2))");
    let sql = format!(
        "select e.required_labels,
                exists (select 1 from workers w
                         where not w.draining and w.labels @> e.required_labels and {alive}),
                exists (select 1 from workers w where not w.draining and {alive}),
                exists (select 1 from workers w
                         where not w.draining and w.labels @> e.required_labels and {alive}
                           and w.slots > (select count(*) from runs r
                                           where r.status = 'running' and r.worker_name = w.name))
           from environments e where e.id = $1"
    );
    let row: Option<(Vec<String>, bool, bool, bool)> = sqlx::query_as(&sql)
        .bind(environment_id)
        .bind(lost_after_secs)
        .fetch_optional(db)
        .await
        .context("checking which workers can take a run")?;
    let problem = match &row {
        Some((_, true, _, _)) | None => None,
        Some((_, false, false, _)) => Some("no worker is online to take it".into()),
        Some((labels, false, true, _)) if labels.len() == 1 => {
            Some(format!("no online worker has label {}", labels[0]))
        }
        Some((labels, false, true, _)) => Some(format!(
            "no online worker has all the labels {}",
            labels.join(", ")
        )),
    };
    Ok(Placement {
        problem,
        free_slot: row.is_some_and(|(_, _, _, free)| free),
    })
}
