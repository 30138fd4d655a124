//! A run's test counters: one type, stored in the run's row, flattened into
//! `Run`, serialised as the API's `summary` and counted by the executor.

use serde::Serialize;

/// What the plugin reported, counted.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct Summary {
    pub collected: Option<i32>,
    pub passed: i32,
    pub failed: i32,
    pub skipped: i32,
    pub xfailed: i32,
    pub xpassed: i32,
    /// `error` in the API, as pytest's outcome is named.
    #[serde(rename = "error")]
    pub errors: i32,
}

impl Summary {
    // Saturating: a forged flood of records must not overflow a counter.
    pub fn count(&mut self, outcome: &str) {
        let n = match outcome {
            "passed" => &mut self.passed,
            "failed" => &mut self.failed,
            "skipped" => &mut self.skipped,
            "xfailed" => &mut self.xfailed,
            "xpassed" => &mut self.xpassed,
            _ => &mut self.errors,
        };
        *n = n.saturating_add(1);
    }

    pub fn done(&self) -> i32 {
        [
            self.passed,
            self.failed,
            self.skipped,
            self.xfailed,
            self.xpassed,
            self.errors,
        ]
        .into_iter()
        .fold(0i32, |a, b| a.saturating_add(b))
    }
}

impl Summary {
    /// The counters that are not zero, in the order the pages show them,
    /// each named as pytest names the outcome (and as the CSS class ends).
    pub fn nonzero(&self) -> Vec<(i32, &'static str)> {
        [
            (self.passed, "passed"),
            (self.failed, "failed"),
            (self.errors, "error"),
            (self.skipped, "skipped"),
            (self.xfailed, "xfailed"),
            (self.xpassed, "xpassed"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .collect()
    }

    /// "38 passed · 2 failed · 1 errors", as the run's reason says it.
    pub fn text(&self) -> String {
        let parts: Vec<String> = self
            .nonzero()
            .into_iter()
            .map(|(n, label)| match label {
                "error" => format!("{n} errors"),
                label => format!("{n} {label}"),
            })
            .collect();
        if parts.is_empty() {
            "no test results".into()
        } else {
            parts.join(" · ")
        }
    }
}
