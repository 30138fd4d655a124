//! The `dependency_images` table: its one writer, and the advisory lock that
//! makes one process the builder of a key.

use anyhow::{Context, Result};
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use time::OffsetDateTime;

/// First half of the two-key advisory locks on dependency keys (ASCII
/// "tedp"); the executors' locks use the one-key form, a separate space.
const LOCK_CLASS: i32 = 0x7465_6470;

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct DependencyImage {
    pub key: String,
    pub project: String,
    pub state: String,
    pub image: String,
    pub size_bytes: Option<i64>,
    pub log: String,
    pub error: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub finished_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

impl DependencyImage {
    /// How long the build took (or has taken so far).
    pub fn build_duration(&self) -> time::Duration {
        self.finished_at.unwrap_or_else(OffsetDateTime::now_utc) - self.started_at
    }
}

const COLUMNS: &str =
    "key, project, state, image, size_bytes, log, error, started_at, finished_at, last_used_at";

pub async fn get(db: &PgPool, key: &str) -> Result<Option<DependencyImage>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from dependency_images where key = $1"
    ))
    .bind(key)
    .fetch_optional(db)
    .await
    .with_context(|| format!("reading dependency image {key}"))
}

/// A project's images, most recently used first.
pub async fn for_project(db: &PgPool, project: &str) -> Result<Vec<DependencyImage>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from dependency_images where project = $1 order by last_used_at desc"
    ))
    .bind(project)
    .fetch_all(db)
    .await
    .with_context(|| format!("listing the dependency images of {project}"))
}

/// Each project's most recently used image (one query for the projects page).
pub async fn newest_per_project(db: &PgPool) -> Result<Vec<DependencyImage>> {
    sqlx::query_as(&format!(
        "select distinct on (project) {COLUMNS} from dependency_images
          order by project, last_used_at desc"
    ))
    .fetch_all(db)
    .await
    .context("listing the projects' dependency images")
}

/// The output so far of a build under way (its end stores the whole log).
pub async fn progress(db: &PgPool, key: &str, log: &str) -> Result<()> {
    sqlx::query("update dependency_images set log = $2 where key = $1 and state = 'building'")
        .bind(key)
        .bind(log)
        .execute(db)
        .await
        .with_context(|| format!("storing the output so far of build {key}"))?;
    Ok(())
}

fn lock_id(key: &str) -> i32 {
    i32::from_str_radix(&key[..7], 16).unwrap_or(0)
}

/// Takes the builder's lock on `key` on this connection (session-level: it
/// is freed when the connection closes, so a dead builder frees it).
pub async fn try_lock(conn: &mut PgConnection, key: &str) -> Result<bool> {
    sqlx::query_scalar("select pg_try_advisory_lock($1, $2)")
        .bind(LOCK_CLASS)
        .bind(lock_id(key))
        .fetch_one(conn)
        .await
        .context("taking the lock of a dependency build")
}

/// Whether some process holds the builder's lock on `key` now.
pub async fn locked(db: &PgPool, key: &str) -> Result<bool> {
    sqlx::query_scalar(
        "select exists (select 1 from pg_locks where locktype = 'advisory' \
         and classid = $1::int::oid and objid = $2::int::oid and objsubid = 2 and granted \
         and database = (select oid from pg_database where datname = current_database()))",
    )
    .bind(LOCK_CLASS)
    .bind(lock_id(key))
    .fetch_one(db)
    .await
    .context("checking the lock of a dependency build")
}

pub async fn start(
    db: &PgPool,
    key: &str,
    project: &str,
    prune_group: &str,
    image: &str,
) -> Result<()> {
    sqlx::query(
        "insert into dependency_images (key, project, prune_group, state, image) \
         values ($1, $2, $3, 'building', $4) \
         on conflict (key) do update set state = 'building', image = $4, prune_group = $3, \
         size_bytes = null, log = '', error = null, started_at = now(), finished_at = null, \
         last_used_at = now()",
    )
    .bind(key)
    .bind(project)
    .bind(prune_group)
    .bind(image)
    .execute(db)
    .await
    .with_context(|| format!("recording the start of dependency build {key}"))?;
    Ok(())
}

pub async fn finish(
    db: &PgPool,
    key: &str,
    size_bytes: Option<i64>,
    log: &str,
    error: Option<&str>,
) -> Result<()> {
    sqlx::query(
        "update dependency_images set state = case when $4::text is null then 'ready' else 'failed' end, \
         size_bytes = $2, log = $3, error = $4, finished_at = now(), last_used_at = now() where key = $1",
    )
    .bind(key)
    .bind(size_bytes)
    .bind(log)
    .bind(error)
    .execute(db)
    .await
    .with_context(|| format!("recording the end of dependency build {key}"))?;
    Ok(())
}

pub async fn touch(db: &PgPool, key: &str) -> Result<()> {
    sqlx::query("update dependency_images set last_used_at = now() where key = $1")
        .bind(key)
        .execute(db)
        .await
        .with_context(|| format!("marking dependency image {key} used"))?;
    Ok(())
}

/// Forgets an image that is not being built, so the next run builds it anew.
pub async fn forget(db: &PgPool, key: &str) -> Result<bool> {
    let done = sqlx::query("delete from dependency_images where key = $1 and state <> 'building'")
        .bind(key)
        .execute(db)
        .await
        .with_context(|| format!("forgetting dependency image {key}"))?;
    Ok(done.rows_affected() > 0)
}

/// The images of a prune group beyond the `keep` most recently used ones.
pub async fn beyond_newest(db: &PgPool, group: &str, keep: usize) -> Result<Vec<DependencyImage>> {
    sqlx::query_as(&format!(
        "select {COLUMNS} from dependency_images where prune_group = $1 and state <> 'building' \
         order by last_used_at desc offset $2"
    ))
    .bind(group)
    .bind(keep as i64)
    .fetch_all(db)
    .await
    .with_context(|| format!("listing old dependency images of {group}"))
}

/// This installation's random id (the `installation` table): in every
/// dependency key and image label, so two installations sharing an engine
/// never take each other's images.
pub async fn installation(db: &PgPool) -> Result<String> {
    sqlx::query_scalar("select id from installation")
        .fetch_one(db)
        .await
        .context("reading the installation's id")
}

/// This installation's database: builder containers are labelled with it,
/// so one installation never removes another's builders on a shared engine.
pub async fn database_name(db: &PgPool) -> Result<String> {
    sqlx::query_scalar("select current_database()::text")
        .fetch_one(db)
        .await
        .context("asking Postgres for the database name")
}
