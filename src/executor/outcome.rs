//! Decides how a run ended, and says why in one line a person understands.
//! The exit code alone is ambiguous (pytest exits 1 both for failed tests and
//! for crashing at start-up, and a test can `os._exit(0)`), so the plugin's
//! records are the evidence and the exit code only has to agree with them.

use crate::{
    limits::Limits,
    store::{RunStatus, Summary},
};

/// The runner's exit status for input it refused (a bad tar stream or
/// meta.json); outside pytest's 0–5 so the two are never confused.
pub const RUNNER_BAD_INPUT: i64 = 70;

/// The runner's exit status when it ended its container itself, its run's
/// deadline and a grace past (no executor was there to kill it).
pub const RUNNER_DEADLINE: i64 = 124;

/// Everything known about a run when its container has stopped.
#[derive(Debug, Default)]
pub struct Ending<'a> {
    pub exit_code: Option<i64>,
    pub oom_killed: bool,
    pub timed_out: bool,
    pub summary: Summary,
    /// The test that started and has not reported (yet).
    pub current_test: Option<&'a str>,
    /// The finished test that raised the memory held the most, and by how
    /// many bytes; the highest peak a finished test had (`sink::rises`).
    pub grew_most: Option<(&'a str, i64)>,
    pub held_bytes: i64,
    /// The first collection errors, and how many there were in all.
    pub collect_errors: &'a [(String, Option<String>)],
    pub collect_error_count: u64,
    /// pytest's own exit status, when it got to the end of the session.
    pub pytest_exit: Option<i32>,
    /// Records with the run's token that were not valid (dropped).
    pub invalid_records: u64,
    /// The highest memory (working set) sampled, if sampled.
    pub peak_memory_bytes: Option<i64>,
    /// A shard of a sharded run: `collected` is its share, what it ran,
    /// which may be nothing when the other shards took every test.
    pub shard: bool,
}

/// The verdict, from evidence rather than from the exit code: `success`
/// needs pytest's `finish` record with status 0, a result for every
/// collected test, none failed or errored, and the process exiting 0.
///
/// Where the line is: the records come from the plugin, which runs in the
/// same process as the code under test. That code can find the run's token
/// (e.g. through `sys.modules['te_plugin']`) and forge records, so a test
/// can lie about its own run — claim results and a finish, then exit 0 — and
/// this cannot tell. What it can never do is make a run that stopped early,
/// crashed or called `os._exit`/`pytest.exit` *without forging* look
/// successful, nor affect anything beyond its own run (records are checked
/// and capped in `output.rs` and `sink.rs`).
pub fn decide(end: &Ending, limits: &Limits) -> (RunStatus, String) {
    let (status, mut reason) = verdict(end, limits);
    if end.invalid_records > 0 {
        reason.push_str(&format!(
            " · {} invalid records dropped",
            end.invalid_records
        ));
    }
    (status, reason)
}

fn verdict(end: &Ending, limits: &Limits) -> (RunStatus, String) {
    let during = end
        .current_test
        .map(|t| format!(" during {t}"))
        .unwrap_or_default();
    if let Some(stopped) = stopped(end, limits, &during) {
        return stopped;
    }
    match collected(end, &during) {
        Ok(collected) => by_results(end, collected),
        Err(not_run) => not_run,
    }
}

/// Timed out or killed for memory, whatever the tests said.
fn stopped(end: &Ending, limits: &Limits, during: &str) -> Option<(RunStatus, String)> {
    // Before pytest finished, 124 can only be the runner ending itself.
    let ended_itself = end.exit_code == Some(RUNNER_DEADLINE) && end.pytest_exit.is_none();
    if end.timed_out || ended_itself {
        let by_itself = match end.timed_out {
            true => "",
            false => " (the container ended itself: no executor was watching it)",
        };
        return Some((
            RunStatus::TimedOut,
            format!(
                "timed out: the environment's limit of {} s was reached{during}{by_itself}",
                limits.timeout_secs
            ),
        ));
    }
    if end.oom_killed {
        let culprit = culprit(end, limits);
        return Some((
            RunStatus::Failed,
            match end.peak_memory_bytes {
                Some(peak) => format!(
                    "killed: out of memory (limit {} MiB, peak {} MiB){during}{culprit}",
                    limits.memory_mb,
                    peak / (1024 * 1024)
                ),
                None => format!(
                    "killed: out of memory (limit {} MiB){during}{culprit}",
                    limits.memory_mb
                ),
            },
        ));
    }
    None
}

/// The finished test that raised the memory held more than the test at the
/// kill can have (the limit less what was held before it): the test at the
/// kill is then more victim than cause, and this one is named as well.
fn culprit(end: &Ending, limits: &Limits) -> String {
    let Some((test, rise)) = end.grew_most else {
        return String::new();
    };
    let room = (limits.memory_mb as i64) * 1024 * 1024 - end.held_bytes;
    match end.current_test {
        Some(current) if current != test && rise > room => format!(
            ", after {test} raised the memory held by {} MiB",
            rise >> 20
        ),
        None => format!(
            ", after {test} raised the memory held by {} MiB",
            rise >> 20
        ),
        Some(_) => String::new(),
    }
}

/// How many tests pytest collected, or why the run never got that far (a
/// collection error, killed from outside, refused input, nothing collected).
fn collected(end: &Ending, during: &str) -> Result<i32, (RunStatus, String)> {
    if let Some((file, message)) = end.collect_errors.first() {
        let message = message.as_deref().unwrap_or("collection failed");
        let total = end.collect_error_count.max(end.collect_errors.len() as u64);
        let more = match total {
            0 | 1 => String::new(),
            n => format!(" (and {} more files)", n - 1),
        };
        return Err((
            RunStatus::Error,
            format!("could not collect {file}: {message}{more}"),
        ));
    }
    let code = end.exit_code.unwrap_or(-1);
    if code == 137 {
        return Err((
            RunStatus::Error,
            format!("the container was killed from outside{during}"),
        ));
    }
    // Before pytest collected anything, 70 can only be the runner's.
    if code == RUNNER_BAD_INPUT && end.summary.collected.is_none() && end.pytest_exit.is_none() {
        return Err((
            RunStatus::Error,
            format!("the runner refused its input (exit {RUNNER_BAD_INPUT}); the log says why"),
        ));
    }
    let s = &end.summary;
    let Some(collected) = s.collected else {
        let why = match end.pytest_exit {
            Some(px) => pytest_status(px),
            None => format!("pytest stopped before it collected the tests (exit status {code})"),
        };
        return Err((RunStatus::Error, why));
    };
    if end.shard && collected == 0 && s.done() == 0 && end.pytest_exit == Some(0) {
        return Err((
            RunStatus::Success,
            "no tests were left for this shard: the others ran them".into(),
        ));
    }
    if s.done() == 0 && (collected == 0 || end.pytest_exit == Some(5)) {
        return Err((
            RunStatus::Error,
            "no tests were collected from the selected files".into(),
        ));
    }
    Ok(collected)
}

/// The verdict of a run that collected its tests: from their results, the
/// session's end and the exit status, which must agree.
fn by_results(end: &Ending, collected: i32) -> (RunStatus, String) {
    let code = end.exit_code.unwrap_or(-1);
    let s = &end.summary;
    let done = s.done();
    let bad = s.failed.saturating_add(s.errors);
    // Failures are a failed run whatever else went wrong; otherwise a run
    // whose story is incomplete is an error.
    let broken = if bad > 0 {
        RunStatus::Failed
    } else {
        RunStatus::Error
    };
    let with_counts = |what: String| {
        if bad > 0 {
            format!("{} · {what}", s.text())
        } else {
            what
        }
    };
    if done < collected || end.pytest_exit.is_none() {
        return (
            broken,
            with_counts(stopped_early(end, done, collected, code)),
        );
    }
    let px = end.pytest_exit.unwrap_or(-1);
    if done > collected {
        return (
            broken,
            with_counts(format!(
                "{done} results were reported for {collected} collected tests"
            )),
        );
    }
    if end.exit_code != Some(i64::from(px)) {
        return (
            broken,
            with_counts(format!(
                "pytest finished with status {px} but the runner exited with {code}"
            )),
        );
    }
    match px {
        _ if bad > 0 => (RunStatus::Failed, s.text()),
        0 => (RunStatus::Success, s.text()),
        1 => (
            RunStatus::Error,
            format!(
                "pytest reported failures (exit 1) but no test failed: {}",
                s.text()
            ),
        ),
        px => (RunStatus::Error, pytest_status(px)),
    }
}

/// Why a run whose tests did not all report (or whose session never
/// finished) is not a success, naming the test it was in.
fn stopped_early(end: &Ending<'_>, done: i32, collected: i32, code: i64) -> String {
    let status = match end.pytest_exit {
        Some(px) => format!("pytest's exit status {px}"),
        None => format!("exit status {code}"),
    };
    let missing = collected.saturating_sub(done);
    if missing == 0 {
        return format!(
            "pytest ran all {collected} tests but never finished its session ({status})"
        );
    }
    let who = match (end.current_test, missing) {
        (Some(t), 1) => format!("{t} never reported"),
        (Some(t), n) => format!("{t} never reported, nor {} more", n - 1),
        (None, 1) => "1 test never reported".into(),
        (None, n) => format!("{n} tests never reported"),
    };
    format!("pytest stopped after {done} of {collected} tests ({status}): {who}")
}

/// What pytest's exit status means, when it is not the usual 0 or 1.
fn pytest_status(px: i32) -> String {
    match px {
        1 => "pytest reported failures (exit 1) before any test ran".into(),
        2 => "pytest was interrupted (exit 2)".into(),
        3 => "pytest hit an internal error (exit 3)".into(),
        4 => "pytest was called wrongly (exit 4)".into(),
        5 => "no tests were collected from the selected files".into(),
        px => format!("pytest finished with status {px}"),
    }
}

#[cfg(test)]
mod tests;
