//! The environments' SQL: every statement on the `environments` table (and
//! the database's size shown beside them). The checks and words around a
//! change are in `changes.rs`; this file only reads and writes rows.

use sqlx::{PgPool, Postgres, Transaction};

use super::{changes::Settings, storage::DatabaseSize, Environment};
use crate::{
    environment_id::EnvironmentId,
    error::{AppError, AppResult},
    limits::Limits,
};

const SELECT_WITH_HOLDER: &str = "
    select e.id, e.millicpus, e.memory_mb, e.pids_limit, e.timeout_secs, e.enabled, e.required_labels,
           h.id as busy_run_id, h.username as busy_username,
           coalesce(h.started_at, h.created_at) as busy_since,
           (select count(*) from runs w
             where w.environment_id = e.id and w.status = 'queued' and not w.holds_environment)
             as waiting
      from environments e
      left join runs h on h.environment_id = e.id and h.holds_environment";

pub async fn list(db: &PgPool) -> AppResult<Vec<Environment>> {
    let sql = format!("{SELECT_WITH_HOLDER} order by e.id");
    Ok(sqlx::query_as(&sql).fetch_all(db).await?)
}

pub async fn get(db: &PgPool, id: EnvironmentId) -> AppResult<Environment> {
    let sql = format!("{SELECT_WITH_HOLDER} where e.id = $1");
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(db)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("environment {id} does not exist")))
}

/// The environment's settings, its row locked until the transaction ends
/// (run creation locks it too, so the two never overlap).
pub async fn settings_locked(
    tx: &mut Transaction<'_, Postgres>,
    id: EnvironmentId,
) -> AppResult<Option<Settings>> {
    let row: Option<(i32, i32, i32, i32, bool, Vec<String>)> = sqlx::query_as(
        "select millicpus, memory_mb, pids_limit, timeout_secs, enabled, required_labels
           from environments where id = $1 for update",
    )
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.map(
        |(millicpus, memory_mb, pids_limit, timeout_secs, enabled, required_labels)| Settings {
            limits: Limits {
                millicpus,
                memory_mb,
                pids_limit,
                timeout_secs,
            },
            enabled,
            required_labels,
        },
    ))
}

/// Inserts a new environment; a 409 if one has its id already.
pub async fn insert(
    db: &PgPool,
    id: EnvironmentId,
    limits: Limits,
    enabled: bool,
    required_labels: Option<Vec<String>>,
) -> AppResult<()> {
    let inserted = sqlx::query(
        "insert into environments (id, millicpus, memory_mb, pids_limit, timeout_secs, enabled,
                required_labels)
         values ($1, $2, $3, $4, $5, $6, coalesce($7, '{}')) on conflict (id) do nothing",
    )
    .bind(id)
    .bind(limits.millicpus)
    .bind(limits.memory_mb)
    .bind(limits.pids_limit)
    .bind(limits.timeout_secs)
    .bind(enabled)
    .bind(required_labels)
    .execute(db)
    .await?;
    if inserted.rows_affected() == 0 {
        return Err(AppError::Conflict(format!(
            "environment {id} exists already; change it instead"
        )));
    }
    Ok(())
}

/// Writes an environment's settings, inside the transaction that locked it.
pub async fn set(
    tx: &mut Transaction<'_, Postgres>,
    id: EnvironmentId,
    after: &Settings,
) -> AppResult<()> {
    sqlx::query(
        "update environments set millicpus = $2, memory_mb = $3, pids_limit = $4, timeout_secs = $5,
                enabled = $6, required_labels = $7, updated_at = now()
          where id = $1",
    )
    .bind(id)
    .bind(after.limits.millicpus)
    .bind(after.limits.memory_mb)
    .bind(after.limits.pids_limit)
    .bind(after.limits.timeout_secs)
    .bind(after.enabled)
    .bind(&after.required_labels)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Deletes an environment nobody is using or waiting for (a 404 if it does
/// not exist, a 409 naming the run that uses it).
pub async fn delete_unused(db: &PgPool, id: EnvironmentId) -> AppResult<()> {
    let mut tx = db.begin().await?;
    // Lock the row: run creation locks it too, so no run is created in it
    // between the check below and the delete.
    let exists: Option<i32> =
        sqlx::query_scalar("select id from environments where id = $1 for update")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if exists.is_none() {
        return Err(AppError::NotFound(format!(
            "environment {id} does not exist"
        )));
    }
    let active: Option<i64> = sqlx::query_scalar(
        "select id from runs where environment_id = $1 and status in ('queued', 'running') order by id limit 1",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(run) = active {
        return Err(AppError::Conflict(format!(
            "environment {id} is in use by run #{run}; wait for it to finish (or cancel it) first"
        )));
    }
    sqlx::query("delete from environments where id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// The whole database's size, and its run logs' and test results'.
pub async fn database_size(db: &PgPool) -> AppResult<DatabaseSize> {
    let (total, logs, tests): (i64, i64, i64) = sqlx::query_as(
        "select pg_database_size(current_database()),
                pg_total_relation_size('run_logs'),
                pg_total_relation_size('run_tests')",
    )
    .fetch_one(db)
    .await?;
    Ok(DatabaseSize { total, logs, tests })
}
