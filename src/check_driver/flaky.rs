//! A flakiness check: the test alone, `times` times, each in a fresh
//! sandbox; broken (every run failed), flaky (some did: the rate and the
//! distinct failure messages) or passing (none did).

use serde_json::{json, Value};

use super::plan::{Next, Outcome};

/// Distinct failure messages kept, and the length of each.
const MESSAGES: usize = 10;
const MESSAGE_CHARS: usize = 500;

pub fn next(nodeid: &str, times: i32, outcomes: &[Outcome]) -> Next {
    if outcomes.len() < usize::try_from(times).unwrap_or(1) {
        return Next::Run(vec![nodeid.to_owned()]);
    }
    Next::Done(verdict(outcomes))
}

fn verdict(outcomes: &[Outcome]) -> Value {
    let runs = outcomes.len();
    let mut messages: Vec<String> = Vec::new();
    let mut failed = 0;
    for outcome in outcomes {
        if let Outcome::Failed(message) = outcome {
            failed += 1;
            let message: String = message
                .as_deref()
                .unwrap_or("(no message)")
                .chars()
                .take(MESSAGE_CHARS)
                .collect();
            if messages.len() < MESSAGES && !messages.contains(&message) {
                messages.push(message);
            }
        }
    }
    let verdict = match failed {
        0 => "passing",
        f if f == runs => "broken",
        _ => "flaky",
    };
    json!({
        "verdict": verdict,
        "runs": runs,
        "failed": failed,
        "rate": failed as f64 / runs.max(1) as f64,
        "messages": messages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fail(m: &str) -> Outcome {
        Outcome::Failed(Some(m.into()))
    }

    #[test]
    fn it_runs_until_it_has_run_n_times() {
        assert_eq!(
            next("t.py::a", 3, &[Outcome::Passed]),
            Next::Run(vec!["t.py::a".into()])
        );
    }

    #[test]
    fn some_failures_are_flaky_with_their_distinct_messages() {
        let Next::Done(v) = next("t", 4, &[fail("x"), Outcome::Passed, fail("x"), fail("y")])
        else {
            panic!("not done")
        };
        assert_eq!(v["verdict"], "flaky");
        assert_eq!(v["failed"], 3);
        assert_eq!(v["messages"], json!(["x", "y"]));
        assert_eq!(super::super::plan::summary(&v), "flaky 3/4 (75% failed)");
    }

    #[test]
    fn all_failures_are_broken_and_none_passing() {
        let Next::Done(v) = next("t", 2, &[fail("x"), fail("x")]) else {
            panic!()
        };
        assert_eq!(super::super::plan::summary(&v), "broken 2/2");
        let Next::Done(v) = next("t", 1, &[Outcome::Passed]) else {
            panic!()
        };
        assert_eq!(super::super::plan::summary(&v), "passing 0/1");
    }
}
