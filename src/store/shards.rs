//! Sharded runs (migration 0028): creating the parent and its shards, and
//! reading how far each shard has come. The parent holds no environment and
//! is `running` while its shards are active; the `end_shard` trigger ends it.

use sqlx::{PgPool, Postgres, Transaction};

use super::runs::{self, NewRun};
use super::{Run, RunStatus, Summary};
use crate::{
    config::QueueCaps,
    environment_id::EnvironmentId,
    error::{AppError, AppResult},
    measures,
};

/// Most shards one run may ask for.
pub const MAX_SHARDS: usize = 32;

/// Which environments a sharded run may take.
#[derive(Debug, Clone)]
pub enum Wanted {
    /// Up to this many: the asked environment first, then any other enabled
    /// one that is free and that nobody waits for, by id.
    Count(usize),
    /// These, each if it is free now.
    These(Vec<EnvironmentId>),
}

/// Creates a sharded run of `new` and a shard in each wanted environment
/// that is free now. None free: refused as busy (naming the holder of the
/// asked environment), or, if it asked to wait in line, one shard waits for
/// the asked environment. Returns the parent.
pub async fn create(db: &PgPool, new: &NewRun, wanted: Wanted, caps: QueueCaps) -> AppResult<Run> {
    let mut tx = db.begin().await?;
    let candidates = candidates(&mut tx, new.environment_id, &wanted).await?;
    let most = match &wanted {
        Wanted::Count(n) => *n,
        Wanted::These(ids) => ids.len(),
    };
    let parent = insert_parent(&mut tx, new, most).await?;
    let mut made = Vec::new();
    let mut first_refusal = None;
    for environment_id in candidates {
        if made.len() == most {
            break;
        }
        let shard = shard_of(new, parent, environment_id, made.len(), false);
        match create_shard(&mut tx, &shard).await {
            Ok(()) => made.push(environment_id),
            Err(refused @ (AppError::Busy { .. } | AppError::Conflict(_))) => {
                first_refusal.get_or_insert(refused);
            }
            Err(err) => return Err(err),
        }
    }
    if made.is_empty() {
        if !new.queue_if_busy {
            return Err(first_refusal.unwrap_or_else(|| {
                AppError::Conflict(
                    "no environment is free for a shard now; try again, or ask to wait in line"
                        .into(),
                )
            }));
        }
        let shard = shard_of(new, parent, new.environment_id, 0, true);
        create_shard(&mut tx, &shard).await?;
        made.push(new.environment_id);
    }
    // Each shard waits in the queue: counted once they are in.
    runs::check_queue_caps(&mut tx, &new.username, caps, runs::Adding::Inserted).await?;
    sqlx::query("update runs set shards = $2 where id = $1")
        .bind(parent)
        .bind(made.len() as i32)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    for environment_id in made {
        measures::run_created(environment_id.get());
    }
    runs::get(db, parent).await
}

/// The environments to try, in order: the asked one first.
async fn candidates(
    tx: &mut Transaction<'_, Postgres>,
    asked: EnvironmentId,
    wanted: &Wanted,
) -> AppResult<Vec<EnvironmentId>> {
    if let Wanted::These(ids) = wanted {
        return Ok(ids.clone());
    }
    // Only where a live worker that is not draining would take the shard:
    // a shard no worker claims would hold its parent open.
    let others: Vec<EnvironmentId> = sqlx::query_scalar(
        "select e.id from environments e
          where e.enabled and e.id <> $1
            and not exists (select 1 from runs r where r.environment_id = e.id
                              and (r.holds_environment or r.status = 'queued'))
            and exists (select 1 from workers w
                         where not w.draining and w.labels @> e.required_labels
                           and w.last_seen > now() - interval '2 minutes')
          order by e.id",
    )
    .bind(asked)
    .fetch_all(&mut **tx)
    .await?;
    Ok(std::iter::once(asked).chain(others).collect())
}

/// The parent: running from now, holding no environment; its limits are
/// the asked environment's (each shard has its own).
async fn insert_parent(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewRun,
    most: usize,
) -> AppResult<i64> {
    let files: Vec<&str> = new.files.iter().map(|f| f.as_str()).collect();
    sqlx::query_scalar(
        "insert into runs (username, environment_id, files, file_sha256, queue_if_busy,
                           holds_environment, millicpus, memory_mb, pids_limit, timeout_secs,
                           project, tree_sha256, tree_id, shards, status, started_at)
         select $1, e.id, $3, $4, false, false, e.millicpus, e.memory_mb, e.pids_limit,
                e.timeout_secs, $5, $6, $7, $8, 'running', now()
           from environments e where e.id = $2
         returning id",
    )
    .bind(new.username.as_str())
    .bind(new.environment_id)
    .bind(&files)
    .bind(&new.file_sha256)
    .bind(&new.project)
    .bind(&new.tree_sha256)
    .bind(&new.tree_id)
    .bind(most.max(1) as i32)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or_else(|| AppError::NotFound(format!("environment {} does not exist", new.environment_id)))
}

fn shard_of(
    new: &NewRun,
    parent: i64,
    environment_id: EnvironmentId,
    made: usize,
    queue_if_busy: bool,
) -> NewRun {
    NewRun {
        username: new.username.clone(),
        environment_id,
        files: new.files.clone(),
        file_sha256: new.file_sha256.clone(),
        queue_if_busy,
        project: new.project.clone(),
        tree_sha256: new.tree_sha256.clone(),
        tree_id: new.tree_id.clone(),
        node_ids: None,
        rerun_of: None,
        check: None,
        shard: Some((parent, made as i32 + 1)),
    }
}

/// One shard, in a savepoint: a refusal leaves the transaction usable.
async fn create_shard(tx: &mut Transaction<'_, Postgres>, shard: &NewRun) -> AppResult<()> {
    let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
    runs::create_in(&mut savepoint, shard, None).await?;
    savepoint.commit().await?;
    Ok(())
}

/// A running sharded run's counts: its shards' so far, out of the tests in
/// its queue (`None` until a shard filled it).
pub async fn live_summary(db: &PgPool, parent: i64) -> AppResult<Summary> {
    Ok(sqlx::query_as(
        "select (select nullif(count(*), 0)::int4 from shard_tests where parent_id = $1)
                    as collected,
                coalesce(sum(passed), 0)::int4 as passed, coalesce(sum(failed), 0)::int4 as failed,
                coalesce(sum(skipped), 0)::int4 as skipped,
                coalesce(sum(xfailed), 0)::int4 as xfailed,
                coalesce(sum(xpassed), 0)::int4 as xpassed,
                coalesce(sum(errors), 0)::int4 as errors
           from runs where shard_of = $1",
    )
    .bind(parent)
    .fetch_one(db)
    .await?)
}

/// One shard as the parent's page shows it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct ShardState {
    pub run_id: i64,
    pub shard_index: i32,
    pub environment_id: EnvironmentId,
    pub status: RunStatus,
    pub current_test: Option<String>,
    /// Tests it took from the queue, and of those it reported.
    pub taken: i64,
    pub reported: i64,
    pub failed: i32,
    pub worker_name: Option<String>,
}

/// A sharded run's shards, and how many tests its queue holds and how many
/// are not taken yet.
pub async fn progress(db: &PgPool, parent: i64) -> AppResult<(Vec<ShardState>, i64, i64)> {
    let shards = sqlx::query_as(
        "select r.id as run_id, r.shard_index, r.environment_id, r.status, r.current_test,
                (select count(*) from shard_tests s where s.run_id = r.id) as taken,
                (select count(*) from run_tests t where t.run_id = r.id) as reported,
                r.failed + r.errors as failed, r.worker_name
           from runs r where r.shard_of = $1 order by r.shard_index",
    )
    .bind(parent)
    .fetch_all(db)
    .await?;
    let (total, waiting): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where run_id is null)
           from shard_tests where parent_id = $1",
    )
    .bind(parent)
    .fetch_one(db)
    .await?;
    Ok((shards, total, waiting))
}
