//! A run's stored log lines: pages after or before a sequence number,
//! searches (`search.rs`) and the whole log as text (`text.rs`); their SQL
//! is in `store.rs`.

mod search;
mod store;
mod text;

pub use search::{search, Search, MAX_QUERY_CHARS, MAX_SEARCH_HITS};
pub use store::{after_in, before, context};
pub use text::text;

use serde::Serialize;
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::{AppError, AppResult};

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

/// Which of a run's output streams to read: both (`None`), or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StreamFilter(pub Option<i16>);

impl StreamFilter {
    /// `stdout`, `stderr`, or empty / absent for both.
    pub fn parse(text: Option<&str>) -> AppResult<StreamFilter> {
        match text.map(str::trim).filter(|s| !s.is_empty()) {
            None => Ok(StreamFilter(None)),
            Some("stdout") => Ok(StreamFilter(Some(1))),
            Some("stderr") => Ok(StreamFilter(Some(2))),
            Some(other) => Err(AppError::Invalid(format!(
                "unknown stream {other:?}: use stdout or stderr (or leave it out for both)"
            ))),
        }
    }

    pub fn name(self) -> Option<&'static str> {
        self.0.map(|s| if s == 2 { "stderr" } else { "stdout" })
    }
}

/// Checks a page size: 1 to `max`, `default` when absent.
pub fn page_size(limit: Option<i64>, default: i64, max: i64) -> AppResult<i64> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(AppError::Invalid(format!(
            "limit must be between 1 and {max}, not {n}"
        ))),
    }
}

/// Lines with a sequence number above `after` (all from the start when `None`).
pub async fn after(
    db: &PgPool,
    run_id: i64,
    after: Option<i32>,
    limit: i64,
) -> AppResult<Vec<LogLine>> {
    store::after_in(db, run_id, after, limit, StreamFilter::default()).await
}
