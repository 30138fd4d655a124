//! The database itself: whether it answers, which installation it is, and
//! the session lock an executor holds on its id while it lives.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::{PgConnection, PgPool};

/// Whether the database answers a trivial query (`/healthz`).
pub async fn answers(db: &PgPool) -> bool {
    sqlx::query("select 1").execute(db).await.is_ok()
}

pub async fn installation_id(db: &PgPool) -> Result<String> {
    sqlx::query_scalar("select id from installation")
        .fetch_one(db)
        .await
        .context("reading the installation id")
}

/// Takes the advisory lock that tells other executors this one is alive. The
/// connection is kept for the life of the process; if the process dies, so
/// does the lock, and its runs can be taken over at once.
pub async fn hold_worker_lock(db: &PgPool, worker_id: i64) -> Result<PgConnection> {
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
pub async fn lock_alive(lock: &mut Option<PgConnection>) -> bool {
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
