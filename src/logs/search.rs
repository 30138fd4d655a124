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
    super::store::matching(db, run_id, search).await
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
