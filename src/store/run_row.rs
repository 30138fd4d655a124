//! What the runs list shows of a run: 18 of its columns, so the
//! list's page (the most requested one) reads and decodes only those.

use sqlx::PgPool;
use time::OffsetDateTime;

use super::{
    runs::{page_query, RunFilter},
    Run, RunStatus, Summary,
};
use crate::{environment_id::EnvironmentId, error::AppResult};

const ROW_COLUMNS: &str = "id, username, environment_id, files, status, project, collected,
    passed, failed, skipped, xfailed, xpassed, errors, started_at, finished_at,
    peak_memory_bytes, shards, shard_of";

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RunRow {
    pub id: i64,
    pub username: String,
    pub environment_id: EnvironmentId,
    pub files: Vec<String>,
    pub status: RunStatus,
    pub project: Option<String>,
    #[sqlx(flatten)]
    pub summary: Summary,
    pub started_at: Option<OffsetDateTime>,
    pub finished_at: Option<OffsetDateTime>,
    pub peak_memory_bytes: Option<i64>,
    /// A sharded run's parent: how many shards it got.
    pub shards: Option<i32>,
    /// A shard: its parent.
    pub shard_of: Option<i64>,
}

impl From<Run> for RunRow {
    fn from(run: Run) -> RunRow {
        RunRow {
            id: run.id,
            username: run.username,
            environment_id: run.environment_id,
            files: run.files,
            status: run.status,
            project: run.project,
            summary: run.summary,
            started_at: run.started_at,
            finished_at: run.finished_at,
            peak_memory_bytes: run.resources.peak_memory_bytes,
            shards: run.shards,
            shard_of: run.shard_of,
        }
    }
}

/// Rows newest first, one page: after `newer_than` when given (what a page
/// showing up to it has not seen yet), else before `filter.before`.
pub async fn list_rows(
    db: &PgPool,
    filter: &RunFilter,
    newer_than: Option<i64>,
) -> AppResult<Vec<RunRow>> {
    let mut query = page_query(ROW_COLUMNS, filter, newer_than);
    Ok(query.build_query_as().fetch_all(db).await?)
}
