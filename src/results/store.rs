//! The test results' SQL: every statement on `run_tests` (and a run's JUnit
//! report). The outcome filter and the flaky rule are in `mod.rs`.

use sqlx::PgPool;

use super::{HistoryEntry, TestCase, TestOrder, FLAKY_WINDOW};
use crate::error::{AppError, AppResult};

/// One page of a run's tests: failures and errors first, then in the order
/// they ran; or the heaviest first.
pub async fn of_run(
    db: &PgPool,
    run_id: i64,
    outcome: Option<&str>,
    order: TestOrder,
    offset: i64,
    limit: i64,
) -> AppResult<Vec<TestCase>> {
    let order_by = match order {
        TestOrder::Failures => "outcome not in ('failed', 'error'), idx",
        TestOrder::Duration => "duration_ms desc, idx",
        TestOrder::Cpu => "cpu_ms desc nulls last, idx",
        TestOrder::Memory => "peak_rss_bytes desc nulls last, idx",
    };
    let sql = format!(
        "select nodeid, outcome, duration_ms, message, longrepr, cpu_ms, peak_rss_bytes
           from run_tests
          where run_id = $1 and ($2::text is null or outcome = $2)
          order by {order_by}
          offset $3 limit $4"
    );
    Ok(sqlx::query_as(&sql)
        .bind(run_id)
        .bind(outcome)
        .bind(offset.max(0))
        .bind(limit.clamp(1, 1000))
        .fetch_all(db)
        .await?)
}

/// How many of a run's stored tests had each outcome (the filter tabs,
/// and the pages' count).
pub async fn outcome_counts(db: &PgPool, run_id: i64) -> AppResult<Vec<(String, i64)>> {
    Ok(
        sqlx::query_as(
            "select outcome, count(*) from run_tests where run_id = $1 group by outcome",
        )
        .bind(run_id)
        .fetch_all(db)
        .await?,
    )
}

/// A test's latest outcomes, newest first, each with the content hash of
/// the file it came from in that run.
pub async fn history(db: &PgPool, nodeid: &str, limit: i64) -> AppResult<Vec<HistoryEntry>> {
    Ok(sqlx::query_as(
        "select t.run_id, t.outcome, r.finished_at,
                r.file_sha256[array_position(r.files, split_part(t.nodeid, '::', 1))] as file_sha256
           from run_tests t join runs r on r.id = t.run_id
          where md5(t.nodeid) = md5($1) and t.nodeid = $1
            -- a shard's results are its sharded run's too: counted once
            and r.shard_of is null
          order by t.run_id desc
          limit $2",
    )
    .bind(nodeid)
    .bind(limit.clamp(1, 500))
    .fetch_all(db)
    .await?)
}

/// Which of these tests are flaky, in one query (for a page of results).
pub async fn flaky_among(db: &PgPool, nodeids: &[String]) -> AppResult<Vec<String>> {
    if nodeids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "select nodeid from (
            select t.nodeid, t.outcome,
                   r.file_sha256[array_position(r.files, split_part(t.nodeid, '::', 1))] as sha,
                   row_number() over (partition by t.nodeid order by t.run_id desc) as n
              from run_tests t join runs r on r.id = t.run_id
             where md5(t.nodeid) = any(array(select md5(n) from unnest($1::text[]) n))
               and t.nodeid = any($1) and r.shard_of is null) recent
          where n <= $2
          group by nodeid, sha
         having bool_or(outcome = 'passed') and bool_or(outcome in ('failed', 'error'))",
    )
    .bind(nodeids)
    .bind(FLAKY_WINDOW as i64)
    .fetch_all(db)
    .await?)
}

pub async fn junit_xml(db: &PgPool, run_id: i64) -> AppResult<Option<String>> {
    let row: Option<Option<String>> =
        sqlx::query_scalar("select junit_xml from runs where id = $1")
            .bind(run_id)
            .fetch_optional(db)
            .await?;
    row.ok_or_else(|| AppError::NotFound(format!("run #{run_id} does not exist")))
}

/// The node ids of a run's failed and errored tests, in the order they ran
/// (at most `limit`).
pub async fn failed_node_ids(db: &PgPool, run_id: i64, limit: i64) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select nodeid from run_tests where run_id = $1 and outcome in ('failed', 'error')
          order by idx limit $2",
    )
    .bind(run_id)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// A test's outcome and position in a run (`None`: it did not report there).
pub async fn outcome_in(
    db: &PgPool,
    run_id: i64,
    nodeid: &str,
) -> AppResult<Option<(String, i32)>> {
    Ok(sqlx::query_as(
        "select outcome, idx from run_tests where run_id = $1 and nodeid = $2 order by idx limit 1",
    )
    .bind(run_id)
    .bind(nodeid)
    .fetch_optional(db)
    .await?)
}

/// The shard of sharded run `parent` in which `nodeid` failed or errored:
/// the order tests ran in is a shard's, one process's.
pub async fn shard_where_failed(db: &PgPool, parent: i64, nodeid: &str) -> AppResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "select t.run_id from runs r join run_tests t on t.run_id = r.id
          where r.shard_of = $1 and t.nodeid = $2 and t.outcome in ('failed', 'error')
          order by t.run_id limit 1",
    )
    .bind(parent)
    .bind(nodeid)
    .fetch_optional(db)
    .await?)
}

/// The distinct tests that ran before position `idx` in a run, in their
/// order (at most `limit`).
pub async fn ran_before(db: &PgPool, run_id: i64, idx: i32, limit: i64) -> AppResult<Vec<String>> {
    Ok(sqlx::query_scalar(
        "select nodeid from (select nodeid, min(idx) as first from run_tests
                               where run_id = $1 and idx < $2 group by nodeid) t
          order by first limit $3",
    )
    .bind(run_id)
    .bind(idx)
    .bind(limit)
    .fetch_all(db)
    .await?)
}
