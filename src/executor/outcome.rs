//! Decides how a run ended, and says why in one line a person understands.
//! The exit code alone is ambiguous (pytest exits 1 both for failed tests and
//! for crashing at start-up), so the plugin's records decide with it.

use super::sink::Summary;
use crate::{environments::Limits, runs::RunStatus};

/// Everything known about a run when its container has stopped.
#[derive(Debug, Default)]
pub struct Ending<'a> {
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub timed_out: bool,
    pub summary: Summary,
    pub current_test: Option<&'a str>,
    pub collect_errors: &'a [(String, Option<String>)],
    /// pytest's own exit status, when it got to the end of the session.
    pub pytest_exit: Option<i32>,
}

pub fn decide(end: &Ending, limits: &Limits) -> (RunStatus, String) {
    let during = end
        .current_test
        .map(|t| format!(" during {t}"))
        .unwrap_or_default();
    if end.timed_out {
        return (
            RunStatus::TimedOut,
            format!(
                "timed out: the environment's limit of {} s was reached{during}",
                limits.timeout_secs
            ),
        );
    }
    if end.oom_killed {
        return (
            RunStatus::Failed,
            format!(
                "killed: out of memory (limit {} MiB){during}",
                limits.memory_mb
            ),
        );
    }
    if let Some((file, message)) = end.collect_errors.first() {
        let message = message.as_deref().unwrap_or("collection failed");
        let more = match end.collect_errors.len() {
            1 => String::new(),
            n => format!(" (and {} more files)", n - 1),
        };
        return (
            RunStatus::Error,
            format!("could not collect {file}: {message}{more}"),
        );
    }
    let code = end.exit_code.unwrap_or(-1);
    match (code, end.pytest_exit) {
        (0, _) => (RunStatus::Success, counts(&end.summary)),
        (1, Some(1)) if end.summary.failed + end.summary.errors > 0 => {
            (RunStatus::Failed, counts(&end.summary))
        }
        (5, _) | (_, Some(5)) => (
            RunStatus::Error,
            "no tests were collected from the selected files".into(),
        ),
        (137, _) => (
            RunStatus::Error,
            format!("the container was killed from outside{during}"),
        ),
        (1, _) => (
            RunStatus::Error,
            format!("pytest stopped before it could report results (exit 1){during}"),
        ),
        (2, _) => (RunStatus::Error, "pytest was interrupted (exit 2)".into()),
        (3, _) => (
            RunStatus::Error,
            "pytest hit an internal error (exit 3)".into(),
        ),
        (4, _) => (
            RunStatus::Error,
            "pytest was called wrongly (exit 4)".into(),
        ),
        (code, _) => (
            RunStatus::Error,
            format!("the runner exited with code {code}{during}"),
        ),
    }
}

/// "38 passed · 2 failed · 1 skipped"
pub fn counts(s: &Summary) -> String {
    let parts: Vec<String> = [
        (s.passed, "passed"),
        (s.failed, "failed"),
        (s.errors, "errors"),
        (s.skipped, "skipped"),
        (s.xfailed, "xfailed"),
        (s.xpassed, "xpassed"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, label)| format!("{n} {label}"))
    .collect();
    if parts.is_empty() {
        "no test results".into()
    } else {
        parts.join(" · ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        millicpus: 1000,
        memory_mb: 512,
        pids_limit: 256,
        timeout_secs: 900,
    };

    fn summary(passed: i32, failed: i32) -> Summary {
        Summary {
            collected: Some(passed + failed),
            passed,
            failed,
            ..Default::default()
        }
    }

    #[test]
    fn exit_zero_is_success_with_counts() {
        let end = Ending {
            exit_code: Some(0),
            pytest_exit: Some(0),
            summary: summary(3, 0),
            ..Default::default()
        };
        assert_eq!(
            decide(&end, &LIMITS),
            (RunStatus::Success, "3 passed".into())
        );
    }

    #[test]
    fn failed_tests_make_a_failed_run() {
        let end = Ending {
            exit_code: Some(1),
            pytest_exit: Some(1),
            summary: summary(2, 1),
            ..Default::default()
        };
        assert_eq!(
            decide(&end, &LIMITS),
            (RunStatus::Failed, "2 passed · 1 failed".into())
        );
    }

    #[test]
    fn exit_one_without_results_is_an_error_not_a_failure() {
        let end = Ending {
            exit_code: Some(1),
            ..Default::default()
        };
        assert_eq!(decide(&end, &LIMITS).0, RunStatus::Error);
    }

    #[test]
    fn out_of_memory_names_the_limit_and_the_test() {
        let end = Ending {
            exit_code: Some(137),
            oom_killed: true,
            current_test: Some("t.py::test_big"),
            ..Default::default()
        };
        let (status, reason) = decide(&end, &LIMITS);
        assert_eq!(status, RunStatus::Failed);
        assert_eq!(
            reason,
            "killed: out of memory (limit 512 MiB) during t.py::test_big"
        );
    }

    #[test]
    fn timeout_names_the_limit() {
        let end = Ending {
            exit_code: Some(137),
            timed_out: true,
            ..Default::default()
        };
        let (status, reason) = decide(&end, &LIMITS);
        assert_eq!(status, RunStatus::TimedOut);
        assert!(reason.contains("900 s"), "{reason}");
    }

    #[test]
    fn collection_errors_name_the_file() {
        let errors = [(
            "test_bad.py".to_string(),
            Some("SyntaxError: invalid syntax".to_string()),
        )];
        let end = Ending {
            exit_code: Some(2),
            pytest_exit: Some(2),
            collect_errors: &errors,
            ..Default::default()
        };
        assert_eq!(
            decide(&end, &LIMITS),
            (
                RunStatus::Error,
                "could not collect test_bad.py: SyntaxError: invalid syntax".into()
            )
        );
    }

    #[test]
    fn no_tests_is_an_error() {
        let end = Ending {
            exit_code: Some(5),
            pytest_exit: Some(5),
            ..Default::default()
        };
        let (status, reason) = decide(&end, &LIMITS);
        assert_eq!(status, RunStatus::Error);
        assert!(reason.contains("no tests"), "{reason}");
    }
}
