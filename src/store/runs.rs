//! Queries on runs: creating one (with the exclusivity rule), listing, and
//! the state changes of the lifecycle.

use std::time::Duration;

use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use time::OffsetDateTime;

use super::{Run, RunStatus, Username};
use crate::{
    catalog::TestFile,
    config::QueueCaps,
    environment_id::EnvironmentId,
    error::{AppError, AppResult},
    measures,
};

const RUN_COLUMNS: &str = "id, username, environment_id, files, file_sha256, status,
    holds_environment, reason, exit_code, millicpus, memory_mb, pids_limit,
    timeout_secs, created_at, started_at, finished_at, log_lines, collected,
    passed, failed, skipped, xfailed, xpassed, errors, current_test, ready_at, exited_at, warm,
    project, tree_sha256, tree_id, node_ids, rerun_of, check_id, shards, shard_of, shard_index, image, installing_since, dependency_key, worker_name, peak_memory_bytes, cpu_seconds,
    peak_pids, peak_cpu_percent, stacks_asked, junit_xml is not null as has_junit";

pub struct NewRun {
    pub username: Username,
    pub environment_id: EnvironmentId,
    pub files: Vec<TestFile>,
    pub file_sha256: Vec<String>,
    pub queue_if_busy: bool,
    pub project: Option<String>,
    pub tree_sha256: Option<String>,
    /// The client-sent tree the run's files are in (`None`: the tests folder).
    pub tree_id: Option<String>,
    /// The tests to run (pytest node ids within `files`); `None`: all.
    pub node_ids: Option<Vec<String>>,
    /// The run whose failed tests this one runs again.
    pub rerun_of: Option<i64>,
    /// The check this run is a step of, and which step (from 0).
    pub check: Option<(i64, i32)>,
    /// The sharded run this one is a shard of, and which shard (from 1).
    pub shard: Option<(i64, i32)>,
}

/// Creates a queued run. It takes its environment at once, or — when the
/// environment is busy — waits in line if it asked to, else is refused with
/// the holder named.
///
/// The environment's row is locked for the few statements this takes, so
/// creates in one environment happen one after another, and never beside an
/// operator deleting or disabling it (both lock the row too): a run is never
/// created in an environment that is going away. A newcomer never jumps the
/// line: an environment that is free while runs wait for it goes to the oldest
/// of them first. A run beyond a queue cap is refused (429) before anything
/// is written.
#[tracing::instrument(skip_all, fields(environment_id = %new.environment_id))]
pub async fn create(db: &PgPool, new: &NewRun, caps: QueueCaps) -> AppResult<Run> {
    let mut tx = db.begin().await?;
    let run = match create_in(&mut tx, new, Some(caps)).await {
        Ok(run) => run,
        // Keep the promotion made on the way: the line moved on either way.
        Err(busy @ AppError::Busy { .. }) => {
            tx.commit().await?;
            return Err(busy);
        }
        Err(err) => return Err(err),
    };
    tx.commit().await?;
    measures::run_created(run.environment_id.get());
    Ok(run)
}

/// `create` inside the caller's transaction (a check creates its first
/// run with the check; the check driver its next one); `caps: None` for a
/// run that takes the place of one that just ended (a check's next step).
/// The caller counts the run in `measures` once committed.
pub async fn create_in(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewRun,
    caps: Option<QueueCaps>,
) -> AppResult<Run> {
    if let Some(caps) = caps {
        check_queue_caps(tx, &new.username, caps, Adding::One).await?;
    }
    let enabled: Option<bool> =
        sqlx::query_scalar("select enabled from environments where id = $1 for update")
            .bind(new.environment_id)
            .fetch_optional(&mut **tx)
            .await?;
    if enabled != Some(true) {
        return Err(AppError::Conflict(format!(
            "environment {} is disabled or removed by an operator; pick another",
            new.environment_id
        )));
    }
    promote_waiter(tx, new.environment_id).await?;
    let holder: Option<i64> =
        sqlx::query_scalar("select id from runs where environment_id = $1 and holds_environment")
            .bind(new.environment_id)
            .fetch_optional(&mut **tx)
            .await?;
    if let (Some(holder), false) = (holder, new.queue_if_busy) {
        return Err(busy(new.environment_id, holder));
    }
    match insert(tx, new, holder.is_none()).await {
        // Only a promotion from outside this lock can get here first.
        Err(err) if violates_exclusivity(&err) => {
            Err(busy(new.environment_id, holder.unwrap_or_default()))
        }
        other => Ok(other?),
    }
}

/// First half of the two-key advisory lock taken around the queue caps'
/// count (ASCII "teqc"); the dependency builds use "tedp", the executors the
/// one-key form.
const QUEUE_LOCK_CLASS: i32 = 0x7465_7163;

/// Refuses a new run when its user, or everyone, has the most runs waiting
/// that the caps allow. Creates take one transaction-scoped advisory lock
/// first, so two of them never both count 499 and both insert: the count
/// and the insert are one step for every process sharing the database.
/// `Adding::One` counts before the run's insert; `Adding::Inserted` after
/// the transaction inserted its rows (a sharded run's shards, each waiting).
pub(super) async fn check_queue_caps(
    tx: &mut Transaction<'_, Postgres>,
    username: &Username,
    caps: QueueCaps,
    adding: Adding,
) -> AppResult<()> {
    sqlx::query("select pg_advisory_xact_lock($1, 0)")
        .bind(QUEUE_LOCK_CLASS)
        .execute(&mut **tx)
        .await?;
    let (total, mine): (i64, i64) = sqlx::query_as(
        "select count(*), count(*) filter (where username = $1)
           from runs where status = 'queued'",
    )
    .bind(username.as_str())
    .fetch_one(&mut **tx)
    .await?;
    let refused = match adding {
        Adding::One if mine >= i64::from(caps.per_user) => format!(
            "{username} already has {} waiting in the queue, the most one user may \
             (MAX_QUEUED_PER_USER is {}); wait for some to start, or cancel some",
            runs(mine),
            caps.per_user
        ),
        Adding::One if total >= i64::from(caps.total) => format!(
            "the queue is full: {} waiting, the most it takes (MAX_QUEUED is {}); \
             try again when some have started",
            runs(total),
            caps.total
        ),
        Adding::Inserted if mine > i64::from(caps.per_user) => format!(
            "{username} would have {} waiting in the queue with this run's shards, more \
             than one user may (MAX_QUEUED_PER_USER is {}); ask for fewer shards, or wait \
             for some runs to start",
            runs(mine),
            caps.per_user
        ),
        Adding::Inserted if total > i64::from(caps.total) => format!(
            "the queue would hold {} with this run's shards, more than it takes \
             (MAX_QUEUED is {}); ask for fewer shards, or try again when some have started",
            runs(total),
            caps.total
        ),
        _ => return Ok(()),
    };
    Err(AppError::TooManyRequests(refused))
}

/// What a create adds to the queue when it counts (`check_queue_caps`).
#[derive(Debug, Clone, Copy)]
pub(super) enum Adding {
    One,
    Inserted,
}

fn runs(n: i64) -> String {
    match n {
        1 => "1 run".to_owned(),
        n => format!("{n} runs"),
    }
}

async fn insert(
    tx: &mut Transaction<'_, Postgres>,
    new: &NewRun,
    holds: bool,
) -> sqlx::Result<Run> {
    let files: Vec<&str> = new.files.iter().map(TestFile::as_str).collect();
    let sql = format!(
        "insert into runs (username, environment_id, files, file_sha256, queue_if_busy,
                           holds_environment, millicpus, memory_mb, pids_limit, timeout_secs,
                           project, tree_sha256, node_ids, rerun_of, check_id, check_step, tree_id,
                           shard_of, shard_index)
         select $1, e.id, $3, $4, $5, $6, e.millicpus, e.memory_mb, e.pids_limit, e.timeout_secs,
                $7, $8, $9, $10, $11, $12, $13, $14, $15
           from environments e where e.id = $2
         returning {RUN_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(new.username.as_str())
        .bind(new.environment_id)
        .bind(&files)
        .bind(&new.file_sha256)
        .bind(new.queue_if_busy)
        .bind(holds)
        .bind(&new.project)
        .bind(&new.tree_sha256)
        .bind(&new.node_ids)
        .bind(new.rerun_of)
        .bind(new.check.map(|(id, _)| id))
        .bind(new.check.map(|(_, step)| step))
        .bind(&new.tree_id)
        .bind(new.shard.map(|(id, _)| id))
        .bind(new.shard.map(|(_, index)| index))
        .fetch_one(&mut **tx)
        .await
}

/// The runs that rerun `id`'s failed tests, oldest first.
pub async fn reruns_of(db: &PgPool, id: i64) -> AppResult<Vec<i64>> {
    Ok(
        sqlx::query_scalar("select id from runs where rerun_of = $1 order by id limit 100")
            .bind(id)
            .fetch_all(db)
            .await?,
    )
}

/// Gives a free environment to the oldest run waiting in line for it.
async fn promote_waiter(
    tx: &mut Transaction<'_, Postgres>,
    environment_id: EnvironmentId,
) -> sqlx::Result<()> {
    sqlx::query(
        "update runs set holds_environment = true
          where id = (select id from runs
                       where environment_id = $1 and status = 'queued' and not holds_environment
                       order by id limit 1)
            and not exists (select 1 from runs where environment_id = $1 and holds_environment)",
    )
    .bind(environment_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub(crate) fn violates_exclusivity(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(e) if e.constraint() == Some("one_run_per_environment"))
}

/// The refusal for a busy environment, naming the run that holds it.
pub(super) fn busy(environment_id: EnvironmentId, holder: i64) -> AppError {
    AppError::Busy {
        message: format!(
            "environment {environment_id} is busy with run #{holder}; wait for it, pick another environment, or ask to wait in line"
        ),
        holder,
    }
}

/// One run; a sharded run while its shards run with their counts so far.
pub async fn get(db: &PgPool, id: i64) -> AppResult<Run> {
    let sql = format!("select {RUN_COLUMNS} from runs where id = $1");
    let mut run: Run = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("run #{id} does not exist")))?;
    if run.shards.is_some() && run.status.is_active() {
        run.summary = super::shards::live_summary(db, id).await?;
    }
    Ok(run)
}

/// Filters of the runs list; every one optional.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub username: Option<String>,
    pub environment_id: Option<EnvironmentId>,
    /// Only runs with a smaller id (the page after the one ending there).
    pub before: Option<i64>,
    pub limit: i64,
}

/// Runs newest first, one page. Keyset paging on the id keeps it fast however
/// many runs there are.
pub async fn list(db: &PgPool, filter: &RunFilter) -> AppResult<Vec<Run>> {
    let mut query = page_query(RUN_COLUMNS, filter, None);
    Ok(query.build_query_as().fetch_all(db).await?)
}

/// `columns` of the runs matching the filter, newest first, one page: after
/// `newer_than` when given (what a page showing up to it has not seen yet),
/// else before `filter.before`.
pub(super) fn page_query<'a>(
    columns: &str,
    filter: &'a RunFilter,
    newer_than: Option<i64>,
) -> QueryBuilder<'a, Postgres> {
    let mut query = QueryBuilder::new(format!("select {columns} from runs where true"));
    if let Some(status) = filter.status {
        query.push(" and status = ").push_bind(status);
    }
    if let Some(username) = &filter.username {
        query.push(" and username = ").push_bind(username.clone());
    }
    if let Some(env) = filter.environment_id {
        query.push(" and environment_id = ").push_bind(env);
    }
    match (newer_than, filter.before) {
        (Some(after), _) => query.push(" and id > ").push_bind(after),
        (None, Some(before)) => query.push(" and id < ").push_bind(before),
        (None, None) => &mut query,
    };
    query
        .push(" order by id desc limit ")
        .push_bind(filter.limit.clamp(1, 500));
    query
}

/// Cancels a run. A queued one has no container: it is cancelled and its
/// environment freed at once, and its log says who cancelled it and when. A
/// running one is only marked: the executor following it kills its
/// container, sees it dead, says so in the log and then ends it as
/// `cancelled` (the reconciler does, if no executor follows it), so its
/// environment is never given to another run while the container lives.
/// Returns the status it had, or `None` when it had already finished.
#[tracing::instrument(skip(db))]
pub async fn cancel(db: &PgPool, id: i64, by: &str) -> AppResult<Option<RunStatus>> {
    let mut tx = db.begin().await?;
    // A sharded run's shards are cancelled with it; the parent ends once
    // they have (the `end_shard` trigger). Shards are locked before their
    // parent, as a shard's end (then its trigger) locks them.
    let cancelled: Vec<(i64, RunStatus, i32)> = sqlx::query_as(
        "with old as (select id, status from runs
                       where (id = $1 or shard_of = $1) and status in ('queued', 'running')
                       order by (id = $1), id for update)
         update runs r
            set status = case when old.status = 'queued' then 'cancelled' else r.status end,
                holds_environment = old.status <> 'queued' and r.holds_environment,
                finished_at = case when old.status = 'queued' then now() end,
                reason = case when old.status = 'queued' then $2 end,
                cancel_requested = coalesce(r.cancel_requested, $2)
           from old
          where r.id = old.id
         returning r.id, old.status, r.environment_id",
    )
    .bind(id)
    .bind(format!("cancelled by {by}"))
    .fetch_all(&mut *tx)
    .await?;
    for (run, _, _) in cancelled.iter().filter(|c| c.1 == RunStatus::Queued) {
        let line = cancel_line(&format!("cancelled by {by}"), OffsetDateTime::now_utc());
        append_note(&mut tx, *run, &format!("{line}, before it started")).await?;
    }
    tx.commit().await?;
    for (_, status, environment) in &cancelled {
        if *status == RunStatus::Queued {
            measures::run_finished(RunStatus::Cancelled.as_str(), *environment, None);
        }
    }
    if cancelled.iter().any(|c| c.1 == RunStatus::Queued) {
        promote_waiters(db).await?;
    }
    Ok(cancelled.iter().find(|c| c.0 == id).map(|c| c.1))
}

/// The log's line for a cancel: "cancelled by ann at 12:03:04 UTC".
pub fn cancel_line(cancel_requested: &str, at: OffsetDateTime) -> String {
    let time = at
        .format(time::macros::format_description!(
            "[hour]:[minute]:[second]"
        ))
        .unwrap_or_default();
    format!("{cancel_requested} at {time} UTC")
}

/// Who asked to cancel a run ("cancelled by ann"), if anyone did.
pub async fn cancel_requested(db: &PgPool, id: i64) -> anyhow::Result<Option<String>> {
    use anyhow::Context;
    let who: Option<Option<String>> =
        sqlx::query_scalar("select cancel_requested from runs where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await
            .with_context(|| format!("reading who cancelled run {id}"))?;
    Ok(who.flatten())
}

/// Adds one line of the application's own to the end of a run that has no
/// executor writing its log (one cancelled before it started).
async fn append_note(tx: &mut Transaction<'_, Postgres>, id: i64, text: &str) -> AppResult<()> {
    let line = format!("[test-executor] {text}");
    sqlx::query(
        "with run as (update runs set log_lines = log_lines + 1, log_bytes = log_bytes + $3
                       where id = $1 returning log_lines - 1 as seq)
         insert into run_logs (run_id, seq, stream, ts, line)
         select $1, seq, 2, now(), $2 from run",
    )
    .bind(id)
    .bind(&line)
    .bind(line.len() as i64 + 1)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Waits (up to `within`) until a run is over, e.g. for the executor to see
/// a cancelled run's container dead; the run as it is then.
pub async fn wait_until_over(db: &PgPool, id: i64, within: Duration) -> AppResult<Run> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = get(db, id).await?;
        if !run.status.is_active() || tokio::time::Instant::now() >= deadline {
            return Ok(run);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Gives each free environment to the oldest run waiting in line for it.
/// Two processes doing this at once may collide on the exclusivity index;
/// the loser simply leaves it to the next call.
pub async fn promote_waiters(db: &PgPool) -> AppResult<u64> {
    let result = sqlx::query(
        "update runs set holds_environment = true
          where id in (
            select distinct on (environment_id) id from runs w
             where status = 'queued' and not holds_environment
               and not exists (select 1 from runs h
                                where h.environment_id = w.environment_id and h.holds_environment)
             order by environment_id, id)",
    )
    .execute(db)
    .await;
    match result {
        Ok(done) => Ok(done.rows_affected()),
        Err(err) if violates_exclusivity(&err) => Ok(0),
        Err(err) => Err(err.into()),
    }
}
