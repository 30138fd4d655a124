//! The statements on `tree_blobs`, `trees` and `tree_files`: contents by
//! hash, a tree stored whole in one transaction or not at all, and the
//! retention of both.

use std::time::Duration;

use anyhow::Context;
use sqlx::{PgPool, Postgres, Transaction};

use super::{batch::Blob, manifest::Manifest, Tree};
use crate::config::TreeQuota as Quota;
use crate::error::{AppError, AppResult};

const TREE_COLUMNS: &str =
    "id, name, username, files, bytes, received_bytes, created_at, last_used_at";

/// First half of the two-key advisory lock a username's uploads take, so
/// two of them never both pass the quota (ASCII "tetr").
const QUOTA_LOCK_CLASS: i32 = 0x7465_7472;

/// Which of `blobs` (distinct sha256s) are not stored, in their order. The
/// stored ones are touched: retention keeps them for RETENTION_DAYS from
/// this answer, however long the client takes to send the rest. (Those
/// touched within the hour are left as they are: a resend after a small
/// change does not rewrite thousands of rows.)
pub async fn missing(db: &PgPool, blobs: &[String]) -> AppResult<Vec<String>> {
    let stored: Vec<String> = sqlx::query_scalar(
        "with touched as (
             update tree_blobs set last_used_at = now()
              where sha256 = any($1) and last_used_at < now() - interval '1 hour')
         select sha256 from tree_blobs where sha256 = any($1)",
    )
    .bind(blobs)
    .fetch_all(db)
    .await?;
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    Ok(blobs
        .iter()
        .filter(|b| !stored.contains(*b))
        .cloned()
        .collect())
}

/// Stores a content (its hash checked by the caller), counted against
/// `username`'s quota. Returns whether it was new.
pub async fn put_blob(
    db: &PgPool,
    sha256: &str,
    content: &[u8],
    username: &str,
    quota: Quota,
) -> AppResult<bool> {
    let mut tx = db.begin().await?;
    let touched = sqlx::query("update tree_blobs set last_used_at = now() where sha256 = $1")
        .bind(sha256)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if touched > 0 {
        tx.commit().await?;
        return Ok(false);
    }
    check_quota(&mut tx, username, content.len() as u64, quota).await?;
    let inserted = sqlx::query(
        "insert into tree_blobs (sha256, content, size, username) values ($1, $2, $3, $4)
         on conflict (sha256) do nothing",
    )
    .bind(sha256)
    .bind(content)
    .bind(content.len() as i64)
    .bind(username)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(inserted > 0)
}

/// Stores a batch of contents (their hashes checked by the caller) in one
/// transaction, the new ones counted against `username`'s quota together;
/// those already stored are touched. Returns how many were new; on a
/// refusal nothing is written.
pub async fn put_blobs(
    db: &PgPool,
    blobs: &[Blob<'_>],
    username: &str,
    quota: Quota,
) -> AppResult<usize> {
    let hashes: Vec<&str> = blobs.iter().map(|b| b.sha256).collect();
    let mut tx = db.begin().await?;
    let stored: Vec<String> = sqlx::query_scalar(
        "update tree_blobs set last_used_at = now() where sha256 = any($1) returning sha256",
    )
    .bind(&hashes)
    .fetch_all(&mut *tx)
    .await?;
    let stored: std::collections::HashSet<&str> = stored.iter().map(String::as_str).collect();
    let mut seen = std::collections::HashSet::new();
    let mut new: Vec<&Blob<'_>> = blobs
        .iter()
        .filter(|b| !stored.contains(b.sha256) && seen.insert(b.sha256))
        .collect();
    // in one order, so two batches sharing new contents wait for each
    // other instead of deadlocking on the key
    new.sort_by_key(|b| b.sha256);
    if new.is_empty() {
        tx.commit().await?;
        return Ok(0);
    }
    let adding: u64 = new.iter().map(|b| b.content.len() as u64).sum();
    check_quota(&mut tx, username, adding, quota).await?;
    let hashes: Vec<&str> = new.iter().map(|b| b.sha256).collect();
    let contents: Vec<&[u8]> = new.iter().map(|b| b.content).collect();
    let inserted = sqlx::query(
        "insert into tree_blobs (sha256, content, size, username)
         select h, c, octet_length(c), $3 from unnest($1::text[], $2::bytea[]) as u(h, c)
         on conflict (sha256) do nothing",
    )
    .bind(&hashes)
    .bind(&contents)
    .bind(username)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(inserted as usize)
}

/// Refuses contents past the username's quota or the total. The total is
/// counted without a lock across usernames: two uploads at once may pass
/// it by one batch each (at most 8 MiB), never more.
async fn check_quota(
    tx: &mut Transaction<'_, Postgres>,
    username: &str,
    adding: u64,
    quota: Quota,
) -> AppResult<()> {
    sqlx::query("select pg_advisory_xact_lock($1, hashtext($2))")
        .bind(QUOTA_LOCK_CLASS)
        .bind(username)
        .execute(&mut **tx)
        .await?;
    let (used, all): (i64, i64) = sqlx::query_as(
        "select coalesce(sum(size) filter (where username = $1), 0)::int8,
                coalesce(sum(size), 0)::int8
           from tree_blobs",
    )
    .bind(username)
    .fetch_one(&mut **tx)
    .await?;
    let mib = |n: u64| n as f64 / 1048576.0;
    if used as u64 + adding > quota.per_user {
        return Err(AppError::TooLarge(format!(
            "{username} has {:.1} MiB of tree contents stored; {adding} bytes more would pass \
             the quota of {:.1} MiB per username (TREE_QUOTA_BYTES); unused trees go after \
             RETENTION_DAYS",
            mib(used as u64),
            mib(quota.per_user)
        )));
    }
    if all as u64 + adding > quota.total {
        return Err(AppError::TooLarge(format!(
            "the server holds {:.1} MiB of tree contents; {adding} bytes more would pass \
             TREE_TOTAL_BYTES ({:.1} MiB for everyone); unused trees go after RETENTION_DAYS",
            mib(all as u64),
            mib(quota.total)
        )));
    }
    Ok(())
}

/// Stores a checked manifest as tree `id`, once every content it names is
/// stored with the size it claims; a tree already stored is touched and
/// returned (`false`: it was there). Nothing is written on a refusal.
pub async fn create(
    db: &PgPool,
    id: &str,
    manifest: &Manifest,
    username: &str,
) -> AppResult<(Tree, bool)> {
    let mut tx = db.begin().await?;
    if let Some(tree) = touch_in(&mut tx, id).await? {
        tx.commit().await?;
        return Ok((tree, false));
    }
    let blobs = manifest.blobs();
    // `for share`: retention cannot delete them before the files name them
    let sizes: Vec<(String, i64)> =
        sqlx::query_as("select sha256, size from tree_blobs where sha256 = any($1) for share")
            .bind(&blobs)
            .fetch_all(&mut *tx)
            .await?;
    let sizes: std::collections::HashMap<String, i64> = sizes.into_iter().collect();
    check_contents(manifest, &blobs, &sizes)?;
    let received: i64 = sqlx::query_scalar(
        "select coalesce(sum(b.size), 0)::int8 from tree_blobs b where b.sha256 = any($1)
            and not exists (select 1 from tree_files f where f.sha256 = b.sha256)",
    )
    .bind(&blobs)
    .fetch_one(&mut *tx)
    .await?;
    let sql = format!(
        "insert into trees (id, name, username, files, bytes, received_bytes)
         values ($1, $2, $3, $4, $5, $6) on conflict (id) do nothing returning {TREE_COLUMNS}"
    );
    let tree: Option<Tree> = sqlx::query_as(&sql)
        .bind(id)
        .bind(&manifest.name)
        .bind(username)
        .bind(manifest.files.len() as i32)
        .bind(manifest.bytes() as i64)
        .bind(received)
        .fetch_optional(&mut *tx)
        .await?;
    let Some(tree) = tree else {
        // another request stored it meanwhile
        tx.rollback().await?;
        let tree = get(db, id).await?.ok_or_else(|| not_found(id))?;
        return Ok((tree, false));
    };
    insert_files(&mut tx, id, manifest).await?;
    tx.commit().await?;
    Ok((tree, true))
}

fn check_contents(
    manifest: &Manifest,
    blobs: &[String],
    sizes: &std::collections::HashMap<String, i64>,
) -> AppResult<()> {
    let missing: Vec<&String> = blobs.iter().filter(|b| !sizes.contains_key(*b)).collect();
    if let Some(first) = missing.first() {
        return Err(AppError::Invalid(format!(
            "{} of the tree's contents are not uploaded (e.g. {first}): \
             ask POST /api/v1/trees/missing, upload those, then create the tree",
            missing.len()
        )));
    }
    if let Some(wrong) = manifest
        .files
        .iter()
        .find(|f| sizes.get(&f.sha256).copied() != Some(f.size as i64))
    {
        return Err(AppError::Invalid(format!(
            "tree file {:?} claims {} bytes, its content has {}",
            wrong.path, wrong.size, sizes[&wrong.sha256]
        )));
    }
    Ok(())
}

async fn insert_files(
    tx: &mut Transaction<'_, Postgres>,
    id: &str,
    manifest: &Manifest,
) -> AppResult<()> {
    let paths: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let modes: Vec<i32> = manifest.files.iter().map(|f| f.mode as i32).collect();
    let hashes: Vec<&str> = manifest.files.iter().map(|f| f.sha256.as_str()).collect();
    sqlx::query(
        "insert into tree_files (tree_id, path, mode, sha256)
         select $1, p, m, h from unnest($2::text[], $3::int4[], $4::text[]) as u(p, m, h)",
    )
    .bind(id)
    .bind(&paths)
    .bind(&modes)
    .bind(&hashes)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn touch_in(tx: &mut Transaction<'_, Postgres>, id: &str) -> AppResult<Option<Tree>> {
    let sql =
        format!("update trees set last_used_at = now() where id = $1 returning {TREE_COLUMNS}");
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?)
}

fn not_found(id: &str) -> AppError {
    AppError::NotFound(format!(
        "no tree {}: send it again (trees unused for RETENTION_DAYS are deleted)",
        id.chars().take(64).collect::<String>()
    ))
}

pub async fn get(db: &PgPool, id: &str) -> AppResult<Option<Tree>> {
    let sql = format!("select {TREE_COLUMNS} from trees where id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_optional(db).await?)
}

/// The tree, touched (asked for again: retention keeps it), if stored.
pub async fn touch_if_stored(db: &PgPool, id: &str) -> AppResult<Option<Tree>> {
    let mut tx = db.begin().await?;
    let tree = touch_in(&mut tx, id).await?;
    tx.commit().await?;
    Ok(tree)
}

/// The tree, touched (a run uses it), or 404.
pub async fn touch(db: &PgPool, id: &str) -> AppResult<Tree> {
    touch_if_stored(db, id).await?.ok_or_else(|| not_found(id))
}

/// A tree's files with their contents, by path.
pub async fn files(db: &PgPool, id: &str) -> anyhow::Result<Vec<(String, i32, Vec<u8>)>> {
    sqlx::query_as(
        "select f.path, f.mode, b.content from tree_files f join tree_blobs b using (sha256)
          where f.tree_id = $1 order by f.path",
    )
    .bind(id)
    .fetch_all(db)
    .await
    .with_context(|| format!("reading the files of tree {id}"))
}

/// Deletes trees unused for `older_than` that no queued or running run
/// names, then contents no tree names that were not used for as long.
/// Returns (trees, contents) deleted.
pub async fn delete_unused(db: &PgPool, older_than: Duration) -> anyhow::Result<(u64, u64)> {
    let trees = sqlx::query(
        "delete from trees t where t.last_used_at < now() - make_interval(secs => $1)
            and not exists (select 1 from runs r where r.tree_id = t.id
                             and r.status in ('queued', 'running'))",
    )
    .bind(older_than.as_secs_f64())
    .execute(db)
    .await
    .context("deleting unused trees")?
    .rows_affected();
    let blobs = sqlx::query(
        "delete from tree_blobs b where b.last_used_at < now() - make_interval(secs => $1)
            and not exists (select 1 from tree_files f where f.sha256 = b.sha256)",
    )
    .bind(older_than.as_secs_f64())
    .execute(db)
    .await
    .context("deleting unused tree contents")?
    .rows_affected();
    Ok((trees, blobs))
}
