//! A run's stored log lines, read in order after a known sequence number.

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::AppResult;

#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct LogLine {
    pub seq: i32,
    /// `stdout` or `stderr`.
    #[serde(serialize_with = "stream_name")]
    #[schema(value_type = String, pattern = "^(stdout|stderr)$")]
    pub stream: i16,
    #[serde(with = "time::serde::rfc3339")]
    pub ts: OffsetDateTime,
    pub line: String,
}

fn stream_name<S: serde::Serializer>(stream: &i16, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(if *stream == 2 { "stderr" } else { "stdout" })
}

/// Most lines one request returns; the reader asks again for the rest.
pub const MAX_PAGE: i64 = 5000;

/// Lines with a sequence number above `after` (all from the start when `None`).
pub async fn after(
    db: &PgPool,
    run_id: i64,
    after: Option<i32>,
    limit: i64,
) -> AppResult<Vec<LogLine>> {
    Ok(sqlx::query_as(
        "select seq, stream, ts, line from run_logs
          where run_id = $1 and seq > $2 order by seq limit $3",
    )
    .bind(run_id)
    .bind(after.unwrap_or(-1))
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(db)
    .await?)
}
