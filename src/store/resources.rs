//! A run's resource use over time (`run_resources`) and its summary on the
//! run's row; and, per environment, what its recent runs needed. The executor
//! writes samples in batches (`store_samples`), the pages and the API read them.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::PgPool;

/// Points kept per run: past this, the older points are thinned (one per
/// doubled interval, the highest memory kept) so a long run stays readable
/// and bounded.
pub const MAX_POINTS: usize = 1000;

/// One sample, `t_ms` after the run started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Sample {
    pub t_ms: i32,
    /// Share of one CPU, in percent (100 = one full CPU).
    pub cpu_percent: f32,
    /// Working set (without page cache).
    pub memory_bytes: i64,
    pub pids: i32,
}

/// What the run's row keeps: its peaks and the CPU time it used. `None`
/// until the first sample (and for runs from before sampling).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Resources {
    pub peak_memory_bytes: Option<i64>,
    pub cpu_seconds: Option<f64>,
    pub peak_pids: Option<i32>,
    #[serde(skip)]
    pub peak_cpu_percent: Option<f32>,
}

/// Stores a batch of samples and the run's totals after it, in one
/// statement. Storing it again changes nothing (points are keyed by time,
/// peaks only grow), so it can be retried. With `thin_to_ms`, points are then
/// thinned to one per `thin_to_ms` (the one with the highest memory).
pub async fn store_samples(
    db: &PgPool,
    run_id: i64,
    samples: &[Sample],
    totals: &Resources,
    thin_to_ms: Option<i32>,
) -> Result<()> {
    let t: Vec<i32> = samples.iter().map(|s| s.t_ms).collect();
    let cpu: Vec<f32> = samples.iter().map(|s| s.cpu_percent).collect();
    let memory: Vec<i64> = samples.iter().map(|s| s.memory_bytes).collect();
    let pids: Vec<i32> = samples.iter().map(|s| s.pids).collect();
    sqlx::query(
        "with points as (
            insert into run_resources (run_id, t_ms, cpu_percent, memory_bytes, pids)
            select $1, * from unnest($2::int4[], $3::float4[], $4::int8[], $5::int4[])
            on conflict do nothing)
         update runs set peak_memory_bytes = greatest(peak_memory_bytes, $6),
                cpu_seconds = greatest(cpu_seconds, $7), peak_pids = greatest(peak_pids, $8),
                peak_cpu_percent = greatest(peak_cpu_percent, $9)
          where id = $1",
    )
    .bind(run_id)
    .bind(&t)
    .bind(&cpu)
    .bind(&memory)
    .bind(&pids)
    .bind(totals.peak_memory_bytes)
    .bind(totals.cpu_seconds)
    .bind(totals.peak_pids)
    .bind(totals.peak_cpu_percent)
    .execute(db)
    .await
    .with_context(|| format!("storing resource samples of run {run_id}"))?;
    if let Some(every) = thin_to_ms.filter(|ms| *ms > 0) {
        sqlx::query(
            "delete from run_resources r
              where r.run_id = $1
                and exists (select 1 from run_resources o
                             where o.run_id = $1 and o.t_ms / $2 = r.t_ms / $2
                               and (o.memory_bytes, o.t_ms) > (r.memory_bytes, r.t_ms))",
        )
        .bind(run_id)
        .bind(every)
        .execute(db)
        .await
        .with_context(|| format!("thinning resource samples of run {run_id}"))?;
    }
    Ok(())
}

/// A run's samples after `after_ms` (all without it), oldest first, with the
/// last one at or before it so a chart can join the new points to the old.
pub async fn samples(db: &PgPool, run_id: i64, after_ms: Option<i32>) -> Result<Vec<Sample>> {
    sqlx::query_as(
        "select t_ms, cpu_percent, memory_bytes, pids from run_resources
          where run_id = $1
            and t_ms >= coalesce((select max(t_ms) from run_resources
                                   where run_id = $1 and t_ms <= $2), -1)
          order by t_ms limit $3",
    )
    .bind(run_id)
    .bind(after_ms.unwrap_or(-1))
    .bind(2 * MAX_POINTS as i64)
    .fetch_all(db)
    .await
    .with_context(|| format!("reading the resource samples of run {run_id}"))
}

/// How many of an environment's last finished runs `needs` looks at.
pub const RECENT_RUNS: i64 = 20;

/// What an environment's last finished runs needed.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Needs {
    pub environment_id: i32,
    /// Finished runs looked at (at most `RECENT_RUNS`), and those with samples.
    pub runs: i64,
    pub sampled: i64,
    pub p95_peak_memory_bytes: Option<f64>,
    pub max_peak_memory_bytes: Option<i64>,
    /// Of the runs' peak CPU share (100 = one CPU).
    pub p95_peak_cpu_percent: Option<f64>,
    pub oom_kills: i64,
    pub timeouts: i64,
}

/// For every environment, its last `RECENT_RUNS` finished runs: an indexed
/// read of at most 20 rows each.
pub async fn needs(db: &PgPool) -> Result<Vec<Needs>> {
    sqlx::query_as(
        "select e.id as environment_id, count(r.id) as runs,
                count(r.peak_memory_bytes) as sampled,
                percentile_cont(0.95) within group (order by r.peak_memory_bytes) as p95_peak_memory_bytes,
                max(r.peak_memory_bytes) as max_peak_memory_bytes,
                percentile_cont(0.95) within group (order by r.peak_cpu_percent) as p95_peak_cpu_percent,
                count(*) filter (where r.reason like 'killed: out of memory%') as oom_kills,
                count(*) filter (where r.status = 'timed_out') as timeouts
           from environments e
           left join lateral (
                select id, peak_memory_bytes, peak_cpu_percent, reason, status from runs
                 where environment_id = e.id and status not in ('queued', 'running')
                 order by id desc limit $1) r on true
          group by e.id order by e.id",
    )
    .bind(RECENT_RUNS)
    .fetch_all(db)
    .await
    .context("reading what the environments' recent runs needed")
}
