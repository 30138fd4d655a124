//! Retention (`RETENTION_DAYS`): the bulky data of runs finished longer ago
//! than that — log lines, samples, test results and the JUnit report — is
//! deleted in the background; the run rows stay as history (status,
//! counters, limits, times), marked with `data_deleted_at`.
//!
//! Small steps, so nothing waits long on a lock: 100 runs at a time, each
//! table's rows deleted 5,000 per statement (each its own transaction,
//! found through the `(run_id, ...)` index, deleted by `ctid`).
//!
//! The same pass deletes the trees clients sent (`trees::store`) that no
//! run used for as long, and the contents no tree names any more.

use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;

/// The tables holding a run's data, with the column naming the run. A new
/// table of per-run data is one more line here.
const RUN_DATA: &[(&str, &str)] = &[
    ("run_logs", "run_id"),
    ("run_tests", "run_id"),
    ("run_resources", "run_id"),
    // a sharded run's queue
    ("shard_tests", "parent_id"),
];

/// Runs handled per step.
const RUNS_PER_STEP: i64 = 100;
/// Rows deleted per statement.
const ROWS_PER_DELETE: i64 = 5_000;
/// Pause between statements, leaving room for the writers.
const PAUSE: Duration = Duration::from_millis(10);

/// What one pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Deleted {
    pub runs: u64,
    pub rows: u64,
}

/// Deletes the data of every run finished more than `older_than` ago whose
/// data is still there.
pub async fn delete_old_run_data(db: &PgPool, older_than: Duration) -> anyhow::Result<Deleted> {
    let mut deleted = Deleted::default();
    loop {
        let runs: Vec<i64> = sqlx::query_scalar(
            "select id from runs
              where data_deleted_at is null and finished_at is not null
                and finished_at < now() - make_interval(secs => $1)
              order by finished_at limit $2",
        )
        .bind(older_than.as_secs_f64())
        .bind(RUNS_PER_STEP)
        .fetch_all(db)
        .await
        .context("finding runs past retention")?;
        if runs.is_empty() {
            return Ok(deleted);
        }
        for (table, column) in RUN_DATA {
            deleted.rows += delete_rows(db, (table, column), &runs).await?;
        }
        sqlx::query("update runs set data_deleted_at = now(), junit_xml = null where id = any($1)")
            .bind(&runs)
            .execute(db)
            .await
            .context("marking runs past retention")?;
        deleted.runs += runs.len() as u64;
        if (runs.len() as i64) < RUNS_PER_STEP {
            return Ok(deleted);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

async fn delete_rows(
    db: &PgPool,
    (table, column): (&str, &str),
    runs: &[i64],
) -> anyhow::Result<u64> {
    // `table` and `column` are one of RUN_DATA, never input.
    let statement = format!(
        "delete from {table} where ctid = any(array(
             select ctid from {table} where {column} = any($1) limit $2))"
    );
    let mut total = 0;
    loop {
        let n = sqlx::query(&statement)
            .bind(runs)
            .bind(ROWS_PER_DELETE)
            .execute(db)
            .await
            .with_context(|| format!("deleting old rows of {table}"))?
            .rows_affected();
        total += n;
        if (n as i64) < ROWS_PER_DELETE {
            return Ok(total);
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Deletes old runs' data every `period`, the first time at once, for as
/// long as the process lives; a failed pass is logged and tried again.
pub fn delete_periodically(db: PgPool, days: u32, period: Duration) {
    let older_than = Duration::from_secs(u64::from(days) * 86_400);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(period);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            match delete_old_run_data(&db, older_than).await {
                Ok(d) if d.runs > 0 => tracing::info!(
                    runs = d.runs,
                    rows = d.rows,
                    "retention: deleted the data of runs finished over {days} days ago"
                ),
                Ok(_) => {}
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "retention pass failed; trying again later"
                    )
                }
            }
            match crate::trees::store::delete_unused(&db, older_than).await {
                Ok((0, 0)) => {}
                Ok((trees, contents)) => tracing::info!(
                    trees,
                    contents,
                    "retention: deleted trees unused for {days} days"
                ),
                Err(err) => tracing::warn!(
                    error = format!("{err:#}"),
                    "retention of trees failed; trying again later"
                ),
            }
        }
    });
}
