//! Starting a check on a failed test of a finished run: every field
//! checked, and the test's failure confirmed in that run, before anything
//! is written.

use serde::Deserialize;

use crate::{
    error::{AppError, AppResult},
    results,
    runs::request::{RunRequest, MAX_NODE_IDS},
    state::AppState,
    store::{
        checks::{self, Check, CheckKind, NewCheck},
        Username,
    },
};

/// Runs a flakiness check makes unless asked otherwise, and the most.
pub const DEFAULT_TIMES: i32 = 10;
pub const MAX_TIMES: i32 = 50;

/// What a person asks (the API's body, the pages' form).
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
pub struct CheckRequest {
    /// The failed test's pytest node id, as the run's results name it.
    pub nodeid: String,
    /// A flakiness check's number of runs, 1 to 50 (default 10); a bisect takes none.
    #[serde(default)]
    pub times: Option<i32>,
    /// Who asks; the check's runs are theirs (default: the run's user).
    #[serde(default)]
    pub username: Option<String>,
}

/// Validates and starts a check of `kind` on run `run_id`'s test.
pub async fn start(
    state: &AppState,
    kind: CheckKind,
    run_id: i64,
    asked: &CheckRequest,
) -> AppResult<Check> {
    let times = times(kind, asked.times)?;
    let nodeid = asked.nodeid.trim();
    if nodeid.is_empty() {
        return Err(AppError::Invalid("nodeid: name the failed test".into()));
    }
    let mut source = crate::store::runs::get(&state.db, run_id).await?;
    if source.status.is_active() {
        return Err(AppError::Conflict(format!(
            "run #{run_id} has not finished: check its tests once it has"
        )));
    }
    let username = Username::parse(asked.username.as_deref().unwrap_or(&source.username))?;
    let mut run_id = run_id;
    if kind == CheckKind::Bisect && source.shards.is_some() {
        // The tests before it are those of the shard that ran it, in its
        // order; the parent's results are only gathered shard by shard.
        if let Some(shard) = results::store::shard_where_failed(&state.db, run_id, nodeid).await? {
            source = crate::store::runs::get(&state.db, shard).await?;
            run_id = shard;
        }
    }
    let idx = failed_at(state, run_id, nodeid).await?;
    let candidates = match kind {
        CheckKind::Flaky => Vec::new(),
        CheckKind::Bisect => before(state, run_id, nodeid, idx).await?,
    };
    let request = RunRequest {
        username: username.to_string(),
        environment_id: i64::from(source.environment_id.get()),
        files: source.files.clone(),
        queue_if_busy: true,
        node_ids: Some(vec![nodeid.to_owned()]),
        shards: None,
        tree_id: source.tree_id.clone(),
    };
    let mut first = request.validate(state).await?;
    if let Some(changed) = crate::runs::rerun::changed_since(&source, &first) {
        return Err(AppError::Conflict(format!(
            "{changed} changed since run #{run_id}: a check runs the same content; \
             run the files again and check that run"
        )));
    }
    let new = NewCheck {
        kind,
        nodeid: nodeid.to_owned(),
        source_run_id: run_id,
        environment_id: source.environment_id,
        username,
        times,
        candidates,
    };
    let caps = state.config.queue_caps();
    let (check, _) = checks::create(&state.db, &new, &mut first, caps).await?;
    if let Some(executor) = &state.executor {
        executor.wake();
    }
    Ok(check)
}

/// A flakiness check's number of runs, 1 to `MAX_TIMES`; a bisect has none.
fn times(kind: CheckKind, asked: Option<i32>) -> AppResult<Option<i32>> {
    match (kind, asked.unwrap_or(DEFAULT_TIMES)) {
        (CheckKind::Bisect, _) => Ok(None),
        (CheckKind::Flaky, n) if (1..=MAX_TIMES).contains(&n) => Ok(Some(n)),
        (CheckKind::Flaky, n) => Err(AppError::Invalid(format!(
            "times: {n} is not between 1 and {MAX_TIMES}"
        ))),
    }
}

/// Where the test failed in the run; refused when it is not a test of the
/// run (422) or did not fail there (409).
async fn failed_at(state: &AppState, run_id: i64, nodeid: &str) -> AppResult<i32> {
    match results::store::outcome_in(&state.db, run_id, nodeid).await? {
        None => Err(AppError::Invalid(format!(
            "{:?} is not a test of run #{run_id}: give a node id as its Tests table shows it",
            nodeid.chars().take(200).collect::<String>()
        ))),
        Some((outcome, idx)) if matches!(outcome.as_str(), "failed" | "error") => Ok(idx),
        Some((outcome, _)) => Err(AppError::Conflict(format!(
            "{nodeid} did not fail in run #{run_id} (it {outcome}): there is nothing to check"
        ))),
    }
}

/// The tests that ran before it, the bisect's candidates.
async fn before(state: &AppState, run_id: i64, nodeid: &str, idx: i32) -> AppResult<Vec<String>> {
    let most = MAX_NODE_IDS - 1;
    let tests = results::store::ran_before(&state.db, run_id, idx, most as i64 + 1).await?;
    if tests.is_empty() {
        return Err(AppError::Conflict(format!(
            "{nodeid} ran first in run #{run_id}: no earlier test can have made it fail"
        )));
    }
    if tests.len() > most {
        return Err(AppError::Conflict(format!(
            "more than {most} tests ran before {nodeid} in run #{run_id}: too many to bisect"
        )));
    }
    Ok(tests)
}
