//! What the follow loop asks of the engine, on the side so that an engine
//! slow to answer never stalls it: a kill, a bounded wait for the container
//! to stop, and a signal asking the runner for its stacks.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use anyhow::Result;
use tokio::task::JoinHandle;

use crate::{engine::CALL_TIMEOUT, executor::Shared};

/// The container's exit code once it stopped; `None` if it is gone.
pub type ExitWait = Pin<Box<dyn Future<Output = Result<Option<i64>>> + Send>>;

/// Kills on the side, so an engine slow to answer never stalls the loop;
/// the task says whether the engine took the kill.
pub fn send_kill(shared: &Arc<Shared>, name: &str) -> JoinHandle<bool> {
    let engine = shared.engine.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        match engine.kill(&name).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "killing a container");
                false
            }
        }
    })
}

/// The signals that ask the runner (PID 1, which passes them on to the
/// run's process) for every thread's stack: someone asked where it is…
pub const ASKED: &str = "USR1";
/// …or its deadline is near (`runner-image/te_hang.py`).
pub const DEADLINE_NEAR: &str = "USR2";

/// Sends a signal asking for the stacks, which come back as a record in
/// the output. Nothing waits for it: a failure is logged.
pub fn signal(shared: &Arc<Shared>, name: &str, signal: &'static str) {
    let engine = shared.engine.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        if let Err(err) = engine.signal(&name, signal).await {
            tracing::warn!(error = format!("{err:#}"), "asking a run for its stacks");
        }
    });
}

/// Waits (after `pause`) for the container to stop, for at most `within`, so
/// a silent engine is asked again rather than waited on forever.
pub fn wait_for_exit(
    shared: &Arc<Shared>,
    name: &str,
    pause: Duration,
    within: Duration,
) -> ExitWait {
    let engine = shared.engine.clone();
    let name = name.to_owned();
    Box::pin(async move {
        tokio::time::sleep(pause).await;
        match engine.wait(&name, within.max(CALL_TIMEOUT)).await {
            Ok(code) => Ok(Some(code)),
            Err(err) => match engine.inspect(&name).await {
                Ok(None) => Ok(None),
                _ => Err(err),
            },
        }
    })
}
