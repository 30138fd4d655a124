//! The test a run was in when it was stopped from outside (a cancel, the
//! kernel's OOM killer): pytest never reports it, so the executor lists it
//! itself, with why, rather than leaving it missing from the run's tests.

use time::OffsetDateTime;

use super::{Sink, TestResult};

impl Sink {
    /// Lists the test that was running (if one was) as `outcome`, with
    /// `message` saying what stopped it. `counted`: whether the run's
    /// summary counts it too (a kill for memory is the test's failure; a
    /// cancel is nobody's, so the counts stay pytest's own).
    pub fn interrupt(&mut self, outcome: &'static str, message: String, counted: bool) {
        let Some(nodeid) = self.current_test.take() else {
            return;
        };
        let ran = self
            .current_since
            .take()
            .map(|since| (OffsetDateTime::now_utc() - since).whole_milliseconds())
            .unwrap_or(0);
        if counted {
            self.summary.count(outcome);
        }
        self.keep_result(TestResult {
            nodeid,
            outcome: outcome.into(),
            duration_ms: i32::try_from(ran.max(0)).unwrap_or(i32::MAX),
            message: Some(message),
            longrepr: None,
            cpu_ms: None,
            peak_rss_bytes: None,
        });
    }
}
