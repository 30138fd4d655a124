//! The `checks` table (migration 0024): a question about one failed test
//! (is it flaky? which earlier test pollutes it?) answered by runs of it.
//! Its progress is its runs (`runs.check_id`, one per step); its verdict is
//! written when the last one has ended, by the check driver.

use serde::Serialize;
use sqlx::{types::Json, PgPool, Postgres, Transaction};
use time::OffsetDateTime;

use super::{
    runs::{self, NewRun},
    Run, RunStatus, Username,
};
use crate::{
    config::QueueCaps,
    environment_id::EnvironmentId,
    error::{AppError, AppResult},
};

/// What a check asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Run the test alone `times` times: broken, flaky or passing.
    Flaky,
    /// Run it after halves of the tests that ran before it: which one makes it fail.
    Bisect,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, utoipa::ToSchema)]
#[sqlx(type_name = "text", rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Running,
    /// Over, with a verdict.
    Done,
    /// Over without one: a run ended without the test's outcome (the reason says which).
    Error,
    /// A person cancelled one of its runs.
    Cancelled,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Check {
    pub id: i64,
    pub kind: CheckKind,
    pub nodeid: String,
    pub source_run_id: i64,
    pub environment_id: EnvironmentId,
    pub username: String,
    /// A flakiness check's number of runs.
    pub times: Option<i32>,
    /// A bisect's tests that ran before the target, in their order.
    pub candidates: Vec<String>,
    pub status: CheckStatus,
    pub verdict: Option<Json<serde_json::Value>>,
    pub reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
}

/// One of a check's runs, with the target test's outcome in it (if it
/// reported one).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Step {
    pub run_id: i64,
    pub step: i32,
    pub status: RunStatus,
    pub reason: Option<String>,
    pub node_ids: Option<Vec<String>>,
    pub outcome: Option<String>,
    pub message: Option<String>,
}

pub struct NewCheck {
    pub kind: CheckKind,
    pub nodeid: String,
    pub source_run_id: i64,
    pub environment_id: EnvironmentId,
    pub username: Username,
    pub times: Option<i32>,
    pub candidates: Vec<String>,
}

const CHECK_COLUMNS: &str = "id, kind, nodeid, source_run_id, environment_id, username, times,
    candidates, status, verdict, reason, created_at, finished_at";

/// Creates a check and its first run (step 0) in one transaction: a
/// second check in the environment (409, naming the one running) or a
/// full queue (429) writes nothing.
pub async fn create(
    db: &PgPool,
    new: &NewCheck,
    first: &mut NewRun,
    caps: QueueCaps,
) -> AppResult<(Check, Run)> {
    let mut tx = db.begin().await?;
    let sql = format!(
        "insert into checks (kind, nodeid, source_run_id, environment_id, username, times, candidates)
         values ($1, $2, $3, $4, $5, $6, $7) returning {CHECK_COLUMNS}"
    );
    let inserted = sqlx::query_as::<_, Check>(&sql)
        .bind(new.kind)
        .bind(&new.nodeid)
        .bind(new.source_run_id)
        .bind(new.environment_id)
        .bind(new.username.as_str())
        .bind(new.times)
        .bind(&new.candidates)
        .fetch_one(&mut *tx)
        .await;
    let check = match inserted {
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("one_check_per_environment") => {
            drop(tx);
            return Err(busy_with_check(db, new.environment_id).await);
        }
        other => other?,
    };
    first.check = Some((check.id, 0));
    first.queue_if_busy = true;
    let run = runs::create_in(&mut tx, first, Some(caps)).await?;
    tx.commit().await?;
    crate::measures::run_created(run.environment_id.get());
    Ok((check, run))
}

async fn busy_with_check(db: &PgPool, environment_id: EnvironmentId) -> AppError {
    let running: Option<i64> = sqlx::query_scalar(
        "select id from checks where environment_id = $1 and status = 'running'",
    )
    .bind(environment_id)
    .fetch_optional(db)
    .await
    .ok()
    .flatten();
    AppError::Conflict(format!(
        "environment {environment_id} already has check #{} running: one check at a time \
         per environment; wait for it or pick another environment",
        running.unwrap_or_default()
    ))
}

pub async fn get(db: &PgPool, id: i64) -> AppResult<Check> {
    let sql = format!("select {CHECK_COLUMNS} from checks where id = $1");
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("check #{id} does not exist")))
}

/// A test's latest checks, newest first.
pub async fn of_test(db: &PgPool, nodeid: &str, limit: i64) -> AppResult<Vec<Check>> {
    let sql = format!(
        "select {CHECK_COLUMNS} from checks where md5(nodeid) = md5($1) and nodeid = $1
          order by id desc limit $2"
    );
    Ok(sqlx::query_as(&sql)
        .bind(nodeid)
        .bind(limit)
        .fetch_all(db)
        .await?)
}

/// A check's runs in order, each with the target test's outcome.
pub async fn steps<'e>(
    db: impl sqlx::PgExecutor<'e>,
    check_id: i64,
    nodeid: &str,
) -> sqlx::Result<Vec<Step>> {
    sqlx::query_as(
        "select r.id as run_id, r.check_step as step, r.status, r.reason, r.node_ids,
                t.outcome, t.message
           from runs r
           left join lateral (select outcome, message from run_tests
                               where run_id = r.id and nodeid = $2 order by idx limit 1) t on true
          where r.check_id = $1
          order by r.check_step",
    )
    .bind(check_id)
    .bind(nodeid)
    .fetch_all(db)
    .await
}

/// The checks still running (the driver's pass goes through them).
pub async fn running(db: &PgPool) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar("select id from checks where status = 'running' order by id")
        .fetch_all(db)
        .await
}

/// The check, locked for the caller's transaction, if it is still running
/// and no other driver holds it.
pub async fn lock_running(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
) -> sqlx::Result<Option<Check>> {
    let sql = format!(
        "select {CHECK_COLUMNS} from checks where id = $1 and status = 'running'
            for update skip locked"
    );
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
}

/// Ends a check: its status, verdict (when it has one) and reason.
pub async fn finish(
    tx: &mut Transaction<'_, Postgres>,
    id: i64,
    status: CheckStatus,
    verdict: Option<&serde_json::Value>,
    reason: Option<&str>,
) -> sqlx::Result<()> {
    sqlx::query(
        "update checks set status = $2, verdict = $3, reason = $4, finished_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(status)
    .bind(verdict.map(Json))
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
