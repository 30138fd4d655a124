//! Order bisect: which of the tests that ran before a test in a run makes
//! it fail. First the test alone (it must pass, else the order is not to
//! blame), then the test after the first half of the candidates (kept in
//! their order): it fails, the polluter is in that half; it passes, in the
//! other. A polluter found only by elimination is confirmed by one last run
//! of it and the test. At most ⌈log2 n⌉ + 2 runs for n candidates.

use serde_json::{json, Value};

use super::plan::{Next, Outcome};

pub fn most_runs(candidates: usize) -> usize {
    let halvings = usize::BITS - candidates.saturating_sub(1).leading_zeros();
    halvings as usize + 2
}

pub fn next(target: &str, candidates: &[String], outcomes: &[Outcome]) -> Next {
    let mut seen = outcomes.iter();
    let with = |tests: &[String]| {
        let mut ids = tests.to_vec();
        ids.push(target.to_owned());
        Next::Run(ids)
    };
    match seen.next() {
        None => return with(&[]),
        Some(Outcome::Failed(message)) => {
            return Next::Done(json!({"verdict": "fails_alone", "runs": 1, "message": message}))
        }
        Some(Outcome::Passed) => {}
    }
    let (mut lo, mut hi, mut confirmed) = (0, candidates.len(), false);
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        match seen.next() {
            None => return with(&candidates[lo..mid]),
            Some(Outcome::Failed(_)) => (hi, confirmed) = (mid, true),
            Some(Outcome::Passed) => (lo, confirmed) = (mid, false),
        }
    }
    let Some(suspect) = candidates.get(lo) else {
        return Next::Done(not_found(outcomes.len()));
    };
    if !confirmed {
        match seen.next() {
            None => return with(&candidates[lo..=lo]),
            Some(Outcome::Passed) => return Next::Done(not_found(outcomes.len())),
            Some(Outcome::Failed(_)) => {}
        }
    }
    Next::Done(found(suspect, outcomes.len()))
}

fn found(polluter: &str, runs: usize) -> Value {
    json!({"verdict": "found", "polluter": polluter, "runs": runs})
}

fn not_found(runs: usize) -> Value {
    json!({"verdict": "not_found", "runs": runs})
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays a bisect against a test that fails when `polluter` ran before it.
    fn play(n: usize, polluter: Option<usize>) -> (Value, usize) {
        let candidates: Vec<String> = (0..n).map(|i| format!("t.py::test_{i}")).collect();
        let mut outcomes = Vec::new();
        loop {
            match next("t.py::target", &candidates, &outcomes) {
                Next::Run(ids) => {
                    assert_eq!(ids.last().unwrap(), "t.py::target");
                    let fails = polluter.is_some_and(|p| ids.contains(&candidates[p]));
                    outcomes.push(match fails {
                        true => Outcome::Failed(Some("assert".into())),
                        false => Outcome::Passed,
                    });
                }
                Next::Done(v) => return (v, outcomes.len()),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn it_names_the_polluter_wherever_it_is_within_the_bound() {
        for n in [1, 2, 3, 7, 29, 100] {
            for p in 0..n {
                let (v, runs) = play(n, Some(p));
                assert_eq!(v["polluter"], format!("t.py::test_{p}"), "n={n} p={p}");
                assert!(runs <= most_runs(n), "n={n} p={p}: {runs} runs");
            }
        }
        assert_eq!(most_runs(29), 7);
    }

    #[test]
    fn without_a_polluter_it_says_so() {
        assert_eq!(play(10, None).0["verdict"], "not_found");
    }

    #[test]
    fn a_test_that_fails_alone_is_not_bisected() {
        let outcomes = [Outcome::Failed(Some("boom".into()))];
        let Next::Done(v) = next("t", &["a".into()], &outcomes) else {
            panic!()
        };
        assert_eq!(v["verdict"], "fails_alone");
    }
}
