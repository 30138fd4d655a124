//! What a check does next, read from its runs so far: nothing is kept
//! between steps but the runs themselves, so a restart loses nothing.

use serde_json::Value;

use crate::store::{
    checks::{Check, CheckKind, CheckStatus, Step},
    RunStatus,
};

/// The target test's outcome in one of a check's runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    /// Failed or errored, with its message (or the run's reason when the
    /// test never reported: killed for memory, timed out).
    Failed(Option<String>),
}

/// The check's next move.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Its latest run has not ended yet.
    Wait,
    /// Queue a run of these node ids, in this order.
    Run(Vec<String>),
    /// Over, with this verdict.
    Done(Value),
    /// Over without a verdict.
    Stop(CheckStatus, String),
}

pub fn next(check: &Check, steps: &[Step]) -> Next {
    if steps.last().is_some_and(|s| s.status.is_active()) {
        return Next::Wait;
    }
    let mut outcomes = Vec::with_capacity(steps.len());
    for step in steps {
        match outcome(step) {
            Ok(o) => outcomes.push(o),
            Err(stop) => return stop,
        }
    }
    match check.kind {
        CheckKind::Flaky => super::flaky::next(&check.nodeid, check.times.unwrap_or(1), &outcomes),
        CheckKind::Bisect => super::bisect::next(&check.nodeid, &check.candidates, &outcomes),
    }
}

/// The target's outcome in a run that has ended; a run that ended without
/// telling (an error, a cancel) ends the check.
fn outcome(step: &Step) -> Result<Outcome, Next> {
    match step.outcome.as_deref() {
        Some("failed" | "error") => return Ok(Outcome::Failed(step.message.clone())),
        Some(_) => return Ok(Outcome::Passed),
        None => {}
    }
    let reason = step.reason.clone();
    match step.status {
        RunStatus::Failed | RunStatus::TimedOut => Ok(Outcome::Failed(reason)),
        RunStatus::Cancelled => Err(Next::Stop(
            CheckStatus::Cancelled,
            format!("run #{} was cancelled", step.run_id),
        )),
        status => Err(Next::Stop(
            CheckStatus::Error,
            format!(
                "run #{} ended {} without the test's outcome: {}",
                step.run_id,
                status.label(),
                reason.as_deref().unwrap_or("no reason given")
            ),
        )),
    }
}

/// The verdict in a few words ("flaky 4/10 (40%)", "polluted by
/// test_x.py::test_a"): the pages, the API and the CLI say the same.
pub fn summary(verdict: &Value) -> String {
    let n = |key: &str| verdict[key].as_i64().unwrap_or(0);
    match verdict["verdict"].as_str().unwrap_or_default() {
        "broken" | "passing" => format!(
            "{} {}/{}",
            verdict["verdict"].as_str().unwrap_or_default(),
            n("failed"),
            n("runs")
        ),
        "flaky" => format!(
            "flaky {}/{} ({:.0}% failed)",
            n("failed"),
            n("runs"),
            verdict["rate"].as_f64().unwrap_or(0.0) * 100.0
        ),
        "found" => format!(
            "fails after {} ({} runs)",
            verdict["polluter"].as_str().unwrap_or_default(),
            n("runs")
        ),
        "fails_alone" => "fails when run alone too: not an order dependency".into(),
        "not_found" => format!(
            "no single earlier test makes it fail ({} runs): it may need several, or be flaky",
            n("runs")
        ),
        other => other.to_owned(),
    }
}

/// How far a running check has come ("3 of 10 runs", "3 runs of at most 7").
pub fn progress(check: &Check, finished: usize) -> String {
    match check.kind {
        CheckKind::Flaky => format!("{finished} of {} runs", check.times.unwrap_or(1)),
        CheckKind::Bisect => format!(
            "{finished} runs of at most {}",
            super::bisect::most_runs(check.candidates.len())
        ),
    }
}
