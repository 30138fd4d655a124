//! The queue's figures for `/metrics`, read in one query on the active runs.

use sqlx::PgPool;

/// The active runs, counted.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Queue {
    pub queued: i64,
    /// Runs in a container: a sharded run's parent runs none (its shards
    /// are counted).
    pub running: i64,
    /// Runs holding their environment.
    pub held: i64,
    /// How long the oldest queued run has waited (0 with none).
    pub oldest_queued_secs: f64,
    /// Running runs past their time limit by more than `grace_secs`.
    pub over_limit: i64,
}

pub async fn queue(db: &PgPool, grace_secs: i32) -> sqlx::Result<Queue> {
    sqlx::query_as(
        "select count(*) filter (where status = 'queued') as queued,
                count(*) filter (where status = 'running' and shards is null) as running,
                count(*) filter (where holds_environment) as held,
                coalesce(extract(epoch from now() - min(created_at)
                                   filter (where status = 'queued')), 0)::float8
                  as oldest_queued_secs,
                count(*) filter (where holds_environment and status = 'running'
                                   and started_at < now() - make_interval(secs => timeout_secs + $1))
                  as over_limit
           from runs where status in ('queued', 'running')",
    )
    .bind(grace_secs)
    .fetch_one(db)
    .await
}
