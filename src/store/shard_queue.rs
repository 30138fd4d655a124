//! A sharded run's queue of tests (migration 0028): filled once by the first
//! shard that collected, longest recorded duration first; each shard takes
//! the next test when it is done with one. Written by the executors (the
//! worker role); a dead shard's test goes back through the `end_shard`
//! trigger, whichever process ended it.

use anyhow::{Context, Result};
use sqlx::PgPool;

/// Most tests one sharded run queues (the rest are not run, and the parent
/// ends `error` saying how many were collected and how many queued).
pub const MAX_TESTS: usize = 20_000;

/// Second key of the advisory lock around filling ("tesq"): two shards that
/// collected at once fill the queue once.
const FILL_LOCK_CLASS: i32 = 0x7465_7371;

/// Fills the parent's queue with `nodeids` (of `collected` the shard's runner
/// said it collected) unless a shard did already: each test with the
/// duration last recorded for it in a run of the same project (a pass or a
/// failure), the median of those for a test never seen, longest first (then
/// as collected).
pub async fn fill(db: &PgPool, parent: i64, nodeids: &[String], collected: i64) -> Result<()> {
    let mut tx = db.begin().await?;
    sqlx::query("select pg_advisory_xact_lock($1, $2::int4)")
        .bind(FILL_LOCK_CLASS)
        .bind(parent as i32)
        .execute(&mut *tx)
        .await?;
    let filled: bool =
        sqlx::query_scalar("select exists (select 1 from shard_tests where parent_id = $1)")
            .bind(parent)
            .fetch_one(&mut *tx)
            .await?;
    if !filled {
        sqlx::query(
            "with ids as (select nodeid, ord from unnest($2::text[]) with ordinality u(nodeid, ord)),
                  known as (
                    select ids.nodeid, ids.ord,
                           (select t.duration_ms from run_tests t join runs r on r.id = t.run_id
                             where md5(t.nodeid) = md5(ids.nodeid) and t.nodeid = ids.nodeid
                               and t.outcome in ('passed', 'failed')
                               and r.project is not distinct from
                                   (select project from runs where id = $1)
                             order by t.run_id desc limit 1) as ms
                      from ids),
                  median as (select percentile_cont(0.5) within group (order by ms) as ms
                               from known where ms is not null)
             insert into shard_tests (parent_id, position, nodeid, duration_ms)
             select $1, row_number() over (order by coalesce(k.ms, m.ms, 0) desc, k.ord),
                    k.nodeid, coalesce(k.ms, m.ms)::int
               from known k cross join median m
             on conflict do nothing",
        )
        .bind(parent)
        .bind(nodeids)
        .execute(&mut *tx)
        .await
        .context("filling the shards' queue")?;
        sqlx::query("update runs set shard_collected = $2 where id = $1")
            .bind(parent)
            .bind(i32::try_from(collected).unwrap_or(i32::MAX))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// What a shard gets when it asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Take {
    Test(String),
    /// Nothing waits now, but another shard still runs a test that would
    /// come back should that shard die: ask again shortly.
    Later,
    /// The queue is done.
    Done,
}

/// The shard `me` is done with the test it had; it takes the next waiting
/// one. A shard that has ended (a lost worker's, whose feed lives on) takes
/// nothing: its row is read `for share`, so an end committing meanwhile is
/// waited for, and the test it gave back is not taken again by it.
pub async fn take(db: &PgPool, parent: i64, me: i64) -> Result<Take> {
    let mut tx = db.begin().await?;
    let running: bool = sqlx::query_scalar(
        "select exists (select 1 from runs where id = $1 and status = 'running' for share)",
    )
    .bind(me)
    .fetch_one(&mut *tx)
    .await?;
    if !running {
        return Ok(Take::Done);
    }
    sqlx::query(
        "update shard_tests set finished = true
          where parent_id = $1 and run_id = $2 and not finished",
    )
    .bind(parent)
    .bind(me)
    .execute(&mut *tx)
    .await?;
    let taken: Option<String> = sqlx::query_scalar(
        "update shard_tests s set run_id = $2, attempts = attempts + 1
          where (s.parent_id, s.position) =
                (select parent_id, position from shard_tests
                  where parent_id = $1 and run_id is null
                  order by position limit 1 for update skip locked)
         returning s.nodeid",
    )
    .bind(parent)
    .bind(me)
    .fetch_optional(&mut *tx)
    .await
    .context("taking a test from the shards' queue")?;
    let take = match taken {
        Some(nodeid) => Take::Test(nodeid),
        // A test given back since the take's snapshot (or locked by another
        // take) waits still; or one another live shard runs may come back.
        None => match sqlx::query_scalar(
            "select exists (select 1 from shard_tests s left join runs r on r.id = s.run_id
                             where s.parent_id = $1
                               and (s.run_id is null
                                    or (s.run_id <> $2 and not s.finished and s.attempts < 2
                                        and r.status in ('queued', 'running'))))",
        )
        .bind(parent)
        .bind(me)
        .fetch_one(&mut *tx)
        .await?
        {
            true => Take::Later,
            false => Take::Done,
        },
    };
    tx.commit().await?;
    Ok(take)
}
