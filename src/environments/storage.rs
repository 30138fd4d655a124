//! The database's size on the environments page: all of it, and how much
//! of it is run logs and test results (what `RETENTION_DAYS` deletes).

use maud::{html, Markup};
use sqlx::PgPool;

use crate::error::AppResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatabaseSize {
    pub total: i64,
    /// `run_logs` with its indexes and TOAST.
    pub logs: i64,
    /// `run_tests` likewise.
    pub tests: i64,
}

pub async fn measure(db: &PgPool) -> AppResult<DatabaseSize> {
    super::store::database_size(db).await
}

/// "1.2 GiB", "340 MiB", "12 KiB".
pub fn human(bytes: i64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes.max(0) as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// The storage card: sizes, and what retention keeps.
pub async fn card(db: &PgPool, retention_days: Option<u32>) -> Markup {
    let kept = match retention_days {
        None => "kept for ever (RETENTION_DAYS is unset)".to_string(),
        Some(1) => "deleted 1 day after a run finishes (RETENTION_DAYS)".to_string(),
        Some(days) => format!("deleted {days} days after a run finishes (RETENTION_DAYS)"),
    };
    let size = match measure(db).await {
        Ok(size) => size,
        Err(err) => {
            return html! { article.warning #storage { p { "The database's size could not be read: " (err.public_message()) } } }
        }
    };
    html! {
        article #storage {
            dl.timings {
                div { dt { "Database" } dd.db-total { (human(size.total)) } }
                div { dt { "Run logs" } dd.db-logs { (human(size.logs)) } }
                div { dt { "Test results" } dd.db-tests { (human(size.tests)) } }
                div { dt { "Logs and results" } dd { (kept) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::human;

    #[test]
    fn sizes_read_as_a_person_says_them() {
        assert_eq!(human(0), "0 bytes");
        assert_eq!(human(1023), "1023 bytes");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(340 * 1024 * 1024), "340 MiB");
        assert_eq!(human(1288490189), "1.2 GiB");
    }
}
