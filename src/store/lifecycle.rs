//! A run's lifecycle as the executor drives it: claiming queued runs,
//! taking over runs whose executor died, recording the start, the output's
//! progress and the outcome. Creating, cancelling and promoting are in
//! `runs.rs` next to it: this folder is the only writer of `runs`.

use anyhow::{Context, Result};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{copy::CopyRows, RunStatus, Summary};
use crate::{environment_id::EnvironmentId, limits::Limits, measures};

/// A run this executor is responsible for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedRun {
    pub id: i64,
    pub environment_id: EnvironmentId,
    pub files: Vec<String>,
    #[sqlx(flatten)]
    pub limits: Limits,
    pub record_token: String,
    pub created_at: OffsetDateTime,
    pub started_at: Option<OffsetDateTime>,
    /// Output stored already (non-zero only when resuming).
    pub log_lines: i32,
    pub results_stored: i32,
    /// The project whose tree goes with the run, if its files are in one.
    pub project: Option<String>,
    /// The memory peak sampled so far (when resuming).
    pub peak_memory_bytes: Option<i64>,
    /// The tests to run (pytest node ids within `files`); `None`: all.
    pub node_ids: Option<Vec<String>>,
    /// The client-sent tree its files are in (`None`: the tests folder).
    pub tree_id: Option<String>,
    /// Who asked for it (a tree's dependency images are pruned per username).
    pub username: String,
    /// The sharded run this one is a shard of: its tests come from the
    /// parent's queue, one at a time.
    pub shard_of: Option<i64>,
}

const CLAIMED_COLUMNS: &str = "r.id, r.environment_id, r.files, r.millicpus, r.memory_mb,
    r.pids_limit, r.timeout_secs, r.record_token, r.created_at, r.started_at, r.log_lines,
    (select count(*)::int4 from run_tests t where t.run_id = r.id) as results_stored,
    r.project, r.peak_memory_bytes, r.node_ids, r.tree_id, r.username, r.shard_of";

/// Claims up to `n` queued runs that hold their environment, oldest first,
/// giving each the environment's current limits. `SKIP LOCKED` lets several
/// executors share one queue without waiting on each other. Only runs whose
/// environment requires no label beyond `labels` are taken.
pub async fn claim(db: &PgPool, n: usize, me: &Me<'_>) -> Result<Vec<ClaimedRun>> {
    let sql = format!(
        "update runs r
            set status = 'running', started_at = now(), worker_id = $2, engine_id = $3,
                worker_name = $4,
                record_token = md5(random()::text || clock_timestamp()::text || r.id::text),
                millicpus = e.millicpus, memory_mb = e.memory_mb,
                pids_limit = e.pids_limit, timeout_secs = e.timeout_secs
           from environments e
          where e.id = r.environment_id
            and r.id in (select q.id from runs q join environments qe on qe.id = q.environment_id
                          where q.status = 'queued' and q.holds_environment
                            and qe.required_labels <@ $5::text[]
                          order by q.id limit $1 for update of q skip locked)
         returning {CLAIMED_COLUMNS}"
    );
    let mut claimed: Vec<ClaimedRun> = sqlx::query_as(&sql)
        .bind(n as i64)
        .bind(me.worker_id)
        .bind(me.engine_id)
        .bind(me.name)
        .bind(me.labels)
        .fetch_all(db)
        .await
        .context("claiming queued runs")?;
    claimed.sort_by_key(|r| r.id);
    for run in &claimed {
        let queued = run
            .started_at
            .map_or(time::Duration::ZERO, |s| s - run.created_at);
        measures::run_started(queued.try_into().unwrap_or_default());
    }
    Ok(claimed)
}

/// Who is claiming: this process's lock id, its engine, its stable name and
/// its labels.
pub struct Me<'a> {
    pub worker_id: i64,
    pub engine_id: &'a str,
    pub name: &'a str,
    pub labels: &'a [String],
}

/// Running runs of this worker (by its stable name) that no task of this
/// process follows: those of its previous process (perhaps dead), and its
/// own runs whose task ended without recording an outcome (`followed` are the
/// ones it follows). Runs from before workers had names go by engine id.
pub async fn unfollowed(db: &PgPool, me: &Me<'_>, followed: &[i64]) -> Result<Vec<(i64, i64)>> {
    sqlx::query_as(
        "select id, coalesce(worker_id, 0) from runs
          where status = 'running'
            and (worker_name = $3 or (worker_name is null and engine_id = $2))
            and (worker_id is distinct from $1 or id <> all($4))",
    )
    .bind(me.worker_id)
    .bind(me.engine_id)
    .bind(me.name)
    .bind(followed)
    .fetch_all(db)
    .await
    .context("listing running runs")
}

/// Ends the running runs of a lost worker as `error` with `reason` (or
/// `cancelled`, if someone asked) and frees their environments. Their
/// containers are on the lost worker's engine: it removes them if it comes
/// back. Returns the runs ended.
/// The worker is checked again in the same statement, so one that came back
/// meanwhile keeps its runs.
pub async fn end_lost_worker_runs(
    db: &PgPool,
    worker_name: &str,
    reason: &str,
    lost_after_secs: f64,
) -> Result<Vec<i64>> {
    let sql = format!(
        "update runs set status = case when cancel_requested is null then 'error' else 'cancelled' end,
                reason = coalesce(cancel_requested, $2), finished_at = now(),
                holds_environment = false, current_test = null
          where status = 'running' and worker_name = $1
            and exists (select 1 from workers w where w.name = $1
                          and w.last_seen < now() - make_interval(secs => $3)
                          and not {})
         returning id",
        super::workers::LOCK_HELD
    );
    sqlx::query_scalar(&sql)
        .bind(worker_name)
        .bind(reason)
        .bind(lost_after_secs)
        .fetch_all(db)
        .await
        .with_context(|| format!("ending the runs of lost worker {worker_name}"))
}

/// Whether the executor `worker_id` is alive: each executor holds an advisory
/// lock on its id for as long as its process (and connection) lives.
pub async fn worker_alive(db: &PgPool, worker_id: i64) -> Result<bool> {
    let mut conn = db.acquire().await?;
    let got: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
        .bind(worker_id)
        .fetch_one(&mut *conn)
        .await?;
    if got {
        sqlx::query("select pg_advisory_unlock($1)")
            .bind(worker_id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(!got)
}

/// Takes a dead executor's run over; `None` if someone else was faster.
pub async fn take_over(db: &PgPool, run_id: i64, from: i64, to: i64) -> Result<Option<ClaimedRun>> {
    let sql = format!(
        "update runs r set worker_id = $3
          where r.id = $1 and r.status = 'running' and r.worker_id is not distinct from nullif($2, 0)
         returning {CLAIMED_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(run_id)
        .bind(from)
        .bind(to)
        .fetch_optional(db)
        .await
        .with_context(|| format!("taking over run {run_id}"))
}

/// Records what a starting run was given: the image of its container and
/// the hash of the tree actually sent.
pub async fn record_start(
    db: &PgPool,
    run_id: i64,
    image: &str,
    tree_sha256: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "update runs set image = $2, tree_sha256 = coalesce($3, tree_sha256) where id = $1",
    )
    .bind(run_id)
    .bind(image)
    .bind(tree_sha256)
    .execute(db)
    .await
    .with_context(|| format!("recording the image of run {run_id}"))?;
    Ok(())
}

/// Marks the run as waiting for the dependency image of `key` (or, with
/// `None`, no longer waiting; the key stays for its page).
pub async fn installing(db: &PgPool, run_id: i64, key: Option<&str>) -> Result<()> {
    sqlx::query(
        "update runs set installing_since = case when $2::text is null then null else now() end,
                         dependency_key = coalesce($2, dependency_key)
          where id = $1",
    )
    .bind(run_id)
    .bind(key)
    .execute(db)
    .await
    .with_context(|| format!("marking run {run_id} as installing dependencies"))?;
    Ok(())
}

/// How a run ended, as recorded.
#[derive(Debug)]
pub struct Outcome {
    pub status: RunStatus,
    pub reason: String,
    pub exit_code: Option<i64>,
    pub junit: Option<String>,
    /// Where it was when its deadline neared, if the runner said.
    pub stacks: Option<super::stacks::Stacks>,
    /// When the container was ready for the files, and when it exited.
    pub ready_at: Option<OffsetDateTime>,
    pub exited_at: Option<OffsetDateTime>,
    /// Whether the run got a warm sandbox.
    pub warm: Option<bool>,
}

impl Outcome {
    /// A run that could not be executed, and why.
    pub fn error(reason: impl Into<String>) -> Outcome {
        Outcome {
            status: RunStatus::Error,
            reason: reason.into(),
            exit_code: None,
            junit: None,
            stacks: None,
            ready_at: None,
            exited_at: None,
            warm: None,
        }
    }
}

/// Records how a run ended and frees its environment; called only once its
/// container is known to be dead (or never existed). A run someone asked to
/// cancel ends `cancelled`, with who asked. Recording twice changes nothing.
pub async fn finish(db: &PgPool, run_id: i64, outcome: &Outcome) -> Result<()> {
    let finished: Option<(RunStatus, i32, Option<f64>)> = sqlx::query_as(
        "update runs set status = case when cancel_requested is null then $2 else 'cancelled' end,
                reason = coalesce(cancel_requested, $3), exit_code = $4, junit_xml = $5,
                ready_at = coalesce($6, ready_at), exited_at = $7, warm = coalesce($8, warm),
                hang_stacks = $9,
                finished_at = now(), holds_environment = false, current_test = null
          where id = $1 and status = 'running'
         returning status, environment_id,
                   extract(epoch from finished_at - started_at)::float8",
    )
    .bind(run_id)
    .bind(outcome.status)
    .bind(&outcome.reason)
    .bind(outcome.exit_code.map(|c| c as i32))
    .bind(&outcome.junit)
    .bind(outcome.ready_at)
    .bind(outcome.exited_at)
    .bind(outcome.warm)
    .bind(outcome.stacks.clone().map(sqlx::types::Json))
    .fetch_optional(db)
    .await
    .with_context(|| format!("recording the outcome of run {run_id}"))?;
    if let Some((status, environment, ran)) = finished {
        let ran = ran.and_then(|s| std::time::Duration::try_from_secs_f64(s).ok());
        measures::run_finished(status.as_str(), environment, ran);
    }
    Ok(())
}

/// Which runs are still active (for cleaning up leftover containers).
pub async fn active_ids(db: &PgPool, ids: &[i64]) -> Result<Vec<i64>> {
    sqlx::query_scalar("select id from runs where id = any($1) and status in ('queued', 'running')")
        .bind(ids)
        .fetch_all(db)
        .await
        .context("checking which runs are active")
}

/// What a write learns about the run: whether someone wants it stopped, and
/// which executor the database says follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub status: RunStatus,
    pub cancel_requested: bool,
    pub worker_id: Option<i64>,
    /// How often someone asked where the run is (`store::stacks::ask`).
    pub stacks_asked: i32,
}

impl Progress {
    /// The run must be stopped: cancelled, or ended by someone else.
    pub fn stop(&self) -> bool {
        self.cancel_requested || self.status != RunStatus::Running
    }
}

/// A batch of a run's output, lines and test results as columns, and the
/// run's counters after it.
pub struct OutputBatch<'a> {
    pub run_id: i64,
    pub seq: &'a [i32],
    pub stream: &'a [i16],
    pub ts: &'a [OffsetDateTime],
    pub line: &'a [String],
    pub idx: &'a [i32],
    pub nodeid: &'a [&'a str],
    pub outcome: &'a [&'a str],
    pub duration_ms: &'a [i32],
    pub message: &'a [Option<&'a str>],
    pub longrepr: &'a [Option<&'a str>],
    pub cpu_ms: &'a [Option<i32>],
    pub peak_rss_bytes: &'a [Option<i64>],
    pub next_seq: i32,
    pub bytes: i64,
    pub truncated: bool,
    pub summary: &'a Summary,
    pub current_test: Option<&'a str>,
    /// New stacks, kept in `hang_stacks` (else it stays as it is).
    pub stacks: Option<&'a crate::store::stacks::Stacks>,
}

/// Writes the batch and the counters in one transaction and returns the
/// run's status. The lines go in with one binary `COPY`; the run's row is
/// locked first and lines below its `log_lines` are skipped, as they are
/// stored already: storing the same batch twice changes nothing (results are
/// keyed by position, counters are absolute), so a failed write can be
/// retried even when it is unknown whether it committed, and two executors
/// writing one run (one of them taken over) take turns.
pub async fn progress(db: &PgPool, b: &OutputBatch<'_>) -> Result<Progress> {
    let what = || format!("storing output of run {}", b.run_id);
    if b.seq.is_empty() {
        return counters(db, b).await.with_context(what);
    }
    let mut tx = db.begin().await.with_context(what)?;
    let stored: i32 = sqlx::query_scalar("select log_lines from runs where id = $1 for update")
        .bind(b.run_id)
        .fetch_one(&mut *tx)
        .await
        .with_context(what)?;
    let from = b.seq.partition_point(|&seq| seq < stored);
    if from < b.seq.len() {
        let mut copy = tx
            .copy_in_raw("copy run_logs (run_id, seq, stream, ts, line) from stdin (format binary)")
            .await
            .with_context(what)?;
        let mut rows = CopyRows::start();
        for i in from..b.seq.len() {
            rows.row(5)
                .int8(b.run_id)
                .int4(b.seq[i])
                .int2(b.stream[i])
                .timestamptz(b.ts[i])
                .text(&b.line[i]);
            if rows.chunk_ready() {
                copy.send(rows.pending()).await.with_context(what)?;
                rows.clear();
            }
        }
        copy.send(rows.finish()).await.with_context(what)?;
        copy.finish().await.with_context(what)?;
    }
    let progress = counters(&mut *tx, b).await.with_context(what)?;
    tx.commit().await.with_context(what)?;
    Ok(progress)
}

/// Stores the batch's test results and the run's counters; the run's status.
async fn counters<'e>(db: impl sqlx::PgExecutor<'e>, b: &OutputBatch<'_>) -> Result<Progress> {
    let s = b.summary;
    let (status, cancel_requested, worker_id, stacks_asked): (RunStatus, bool, Option<i64>, i32) = sqlx::query_as(
        "with tests as (
            insert into run_tests (run_id, idx, nodeid, outcome, duration_ms, message, longrepr,
                                   cpu_ms, peak_rss_bytes)
            select $1, * from unnest($2::int4[], $3::text[], $4::text[], $5::int4[], $6::text[], $7::text[],
                                     $19::int4[], $20::int8[])
            on conflict do nothing)
         update runs set log_lines = greatest(log_lines, $8), log_bytes = greatest(log_bytes, $9),
                log_truncated = $10, collected = $11, passed = $12, failed = $13,
                skipped = $14, xfailed = $15, xpassed = $16, errors = $17, current_test = $18,
                hang_stacks = coalesce($21, hang_stacks)
          where id = $1
         returning status, cancel_requested is not null, worker_id, stacks_asked",
    )
    .bind(b.run_id)
    .bind(b.idx)
    .bind(b.nodeid)
    .bind(b.outcome)
    .bind(b.duration_ms)
    .bind(b.message)
    .bind(b.longrepr)
    .bind(b.next_seq)
    .bind(b.bytes)
    .bind(b.truncated)
    .bind(s.collected)
    .bind(s.passed)
    .bind(s.failed)
    .bind(s.skipped)
    .bind(s.xfailed)
    .bind(s.xpassed)
    .bind(s.errors)
    .bind(b.current_test)
    .bind(b.cpu_ms)
    .bind(b.peak_rss_bytes)
    .bind(b.stacks.map(sqlx::types::Json))
    .fetch_one(db)
    .await?;
    Ok(Progress {
        status,
        cancel_requested,
        worker_id,
        stacks_asked,
    })
}
