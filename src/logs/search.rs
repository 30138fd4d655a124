//! Finding lines of a run's log that contain a text, case-insensitively,
//! on the server. A plain `ILIKE` over the run's rows (its primary key
//! range): no index, so storing lines costs nothing more (see docs/architecture.md
//! for the measurements behind that choice). An ASCII text is matched
//! under the "C" collation, whose lower-casing is a byte loop: 2-3x faster
//! than the database's UTF-8 one, and the same answer for ASCII.

use sqlx::PgPool;

use super::{LogLine, StreamFilter};
use crate::error::{AppError, AppResult};

/// Most hits one search returns; "next" asks again after the last one.
pub const MAX_SEARCH_HITS: i64 = 1000;
/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A search: `text` in lines of `stream`, strictly between `after` and
/// `before` (when given); with `before`, the hits nearest below it.
#[derive(Debug, Clone)]
pub struct Search<'a> {
    pub text: &'a str,
    pub stream: StreamFilter,
    pub after: Option<i32>,
    pub before: Option<i32>,
    pub limit: i64,
}

impl Search<'_> {
    /// The text as a person may type it: not empty, not huge, no NUL.
    pub fn check(text: &str) -> AppResult<()> {
        if text.is_empty() {
            return Err(AppError::Invalid(
                "the search text (q) is empty: give the text to look for".into(),
            ));
        }
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(AppError::Invalid(format!(
                "the search text (q) is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        if text.contains('\0') {
            return Err(AppError::Invalid(
                "the search text (q) contains a NUL character".into(),
            ));
        }
        Ok(())
    }
}

/// `text` as a LIKE pattern that matches it anywhere, its wildcards escaped.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The matching lines, in ascending order.
pub async fn search(db: &PgPool, run_id: i64, search: &Search<'_>) -> AppResult<Vec<LogLine>> {
    Search::check(search.text)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_in_the_text_are_matched_literally() {
        assert_eq!(like_pattern("50%_a\\b"), "%50\\%\\_a\\\\b%");
        assert_eq!(like_pattern("plain"), "%plain%");
    }

    #[test]
    fn empty_huge_and_nul_texts_are_refused() {
        assert!(Search::check("").is_err());
        assert!(Search::check(&"x".repeat(MAX_QUERY_CHARS + 1)).is_err());
        assert!(Search::check("a\0b").is_err());
        assert!(Search::check(" Traceback ").is_ok());
    }
}
