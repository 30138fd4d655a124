//! The run logs' SQL: every statement that reads `run_logs` (the executor's
//! writer, in `store/copy.rs`, is the one that writes them).

use futures_util::Stream;
use sqlx::PgPool;

use super::{
    search::{like_pattern, Search, MAX_SEARCH_HITS},
    LogLine, StreamFilter, MAX_PAGE,
};
use crate::error::AppResult;

/// Lines above `after`, of one stream or both, in order.
pub async fn after_in(
    db: &PgPool,
    run_id: i64,
    after: Option<i32>,
    limit: i64,
    stream: StreamFilter,
) -> AppResult<Vec<LogLine>> {
    Ok(sqlx::query_as(
        "select seq, stream, ts, line from run_logs
          where run_id = $1 and seq > $2 and ($3::smallint is null or stream = $3)
          order by seq limit $4",
    )
    .bind(run_id)
    .bind(after.unwrap_or(-1))
    .bind(stream.0)
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(db)
    .await?)
}

/// The `limit` lines just below `before`, in ascending order.
pub async fn before(
    db: &PgPool,
    run_id: i64,
    before: i32,
    limit: i64,
    stream: StreamFilter,
) -> AppResult<Vec<LogLine>> {
    let mut lines: Vec<LogLine> = sqlx::query_as(
        "select seq, stream, ts, line from run_logs
          where run_id = $1 and seq < $2 and ($3::smallint is null or stream = $3)
          order by seq desc limit $4",
    )
    .bind(run_id)
    .bind(before)
    .bind(stream.0)
    .bind(limit.clamp(1, MAX_PAGE))
    .fetch_all(db)
    .await?;
    lines.reverse();
    Ok(lines)
}

/// The lines that contain the search's text, in ascending order (checked
/// by `search::search` first). An ASCII text is matched under the "C"
/// collation (see `search.rs`).
pub async fn matching(db: &PgPool, run_id: i64, search: &Search<'_>) -> AppResult<Vec<LogLine>> {
    let descending = search.before.is_some();
    let sql = format!(
        "select seq, stream, ts, line from run_logs
          where run_id = $1 and seq > $2 and seq < $3
            and ($4::smallint is null or stream = $4) and line {} ilike $5
          order by seq {} limit $6",
        if search.text.is_ascii() {
            "collate \"C\""
        } else {
            ""
        },
        if descending { "desc" } else { "asc" }
    );
    let mut lines: Vec<LogLine> = sqlx::query_as(&sql)
        .bind(run_id)
        .bind(search.after.unwrap_or(-1))
        .bind(search.before.unwrap_or(i32::MAX))
        .bind(search.stream.0)
        .bind(like_pattern(search.text))
        .bind(search.limit.clamp(1, MAX_SEARCH_HITS))
        .fetch_all(db)
        .await?;
    if descending {
        lines.reverse();
    }
    Ok(lines)
}

/// The lines just before and after each of `seqs` (the hits' context), in
/// one query.
pub async fn context(db: &PgPool, run_id: i64, seqs: &[i32]) -> AppResult<Vec<LogLine>> {
    let around: Vec<i32> = seqs
        .iter()
        .flat_map(|s| [s.saturating_sub(1), s.saturating_add(1)])
        .collect();
    Ok(sqlx::query_as(
        "select seq, stream, ts, line from run_logs
          where run_id = $1 and seq = any($2) order by seq",
    )
    .bind(run_id)
    .bind(&around)
    .fetch_all(db)
    .await?)
}

/// The lines of `stream` (both when `None`) as text, in order, read as the
/// caller takes them; the executor's "log cut here" note in either stream.
pub fn lines(
    db: &PgPool,
    run_id: i64,
    stream: StreamFilter,
) -> impl Stream<Item = sqlx::Result<String>> + Send + '_ {
    sqlx::query_scalar::<_, String>(
        "select line from run_logs
          where run_id = $1
            and ($2::smallint is null or stream = $2
                 or (stream = 2 and line like '[test-executor] log cut here:%'))
          order by seq",
    )
    .bind(run_id)
    .bind(stream.0)
    .fetch(db)
}
