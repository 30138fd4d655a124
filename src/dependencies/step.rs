//! One step of a dependency build as one container: created, given its
//! files, started, its output kept (bounded) until it exits or the build's
//! deadline passes.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures_util::StreamExt;
use tokio::time::Instant;

use crate::engine::{BuilderSpec, Engine};

/// Kept of a build's output: its head (what was resolved) and its tail
/// (where it failed).
const LOG_HEAD: usize = 16 * 1024;
const LOG_TAIL: usize = 48 * 1024;

/// The last bytes of a build's output as they come, shared with whoever
/// shows them (a run waiting for the build stores them every second).
#[derive(Clone, Default)]
pub struct Live(Arc<Mutex<LiveTail>>);

#[derive(Default)]
struct LiveTail {
    bytes: VecDeque<u8>,
    /// Bumped by every push: a reader stores only what changed.
    version: u64,
}

/// Kept of the live output (the page shows its last lines).
const LIVE_TAIL: usize = 16 * 1024;

impl Live {
    pub fn push(&self, bytes: &[u8]) {
        let mut tail = self.0.lock().unwrap();
        tail.bytes.extend(bytes);
        let over = tail.bytes.len().saturating_sub(LIVE_TAIL);
        tail.bytes.drain(..over);
        tail.version += 1;
    }

    /// The output so far (its last `LIVE_TAIL` bytes) and its version.
    pub fn snapshot(&self) -> (u64, String) {
        let tail = self.0.lock().unwrap();
        let bytes: Vec<u8> = tail.bytes.iter().copied().collect();
        let text = String::from_utf8_lossy(&bytes).replace('\0', "");
        (tail.version, text)
    }
}

/// How a step ended: its exit code, or why it has none.
pub enum Ended {
    Exited(i64),
    /// The build's deadline passed (the container was killed).
    TimedOut,
    /// The engine failed us (said in the message).
    Lost(String),
}

/// Creates the step's container, uploads `files` (a tar) into its folder,
/// runs it until it exits or `deadline`, and appends what it printed to
/// `log` (and `live`). Returns the container's id (the caller removes or commits it)
/// with how it ended; `Err` when it could not be created.
pub async fn run(
    engine: &Engine,
    spec: BuilderSpec<'_>,
    files: Option<(&str, Vec<u8>)>,
    deadline: Instant,
    log: &mut BoundedLog,
    live: &Live,
) -> anyhow::Result<(String, Ended)> {
    let name = spec.name.to_owned();
    live.push(format!("==> {name}\n").as_bytes());
    engine.remove(&name).await?;
    let id = engine.create_builder(spec).await?;
    let started = async {
        if let Some((folder, files)) = files {
            engine.upload(&id, folder, files).await?;
        }
        engine.start(&id).await
    };
    if let Err(err) = started.await {
        return Ok((id, Ended::Lost(format!("{err:#}"))));
    }
    let within = deadline.saturating_duration_since(Instant::now());
    let follow = async {
        let mut output = engine.follow_logs(&id);
        while let Some(chunk) = output.next().await {
            match chunk {
                Ok(chunk) => {
                    let bytes = chunk.into_bytes();
                    live.push(&bytes);
                    log.push(&bytes);
                }
                Err(err) => {
                    tracing::warn!("reading the output of {name}: {err}");
                    break;
                }
            }
        }
        engine.wait(&id, within.max(Duration::from_secs(1))).await
    };
    let ended = match tokio::time::timeout(within, follow).await {
        Ok(Ok(code)) => Ended::Exited(code),
        Ok(Err(err)) => Ended::Lost(format!("{err:#}")),
        Err(_) => {
            let _ = engine.kill(&id).await;
            Ended::TimedOut
        }
    };
    Ok((id, ended))
}

/// Keeps the first `LOG_HEAD` and the last `LOG_TAIL` bytes of the output,
/// with a marker where it was cut.
#[derive(Default)]
pub struct BoundedLog {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    dropped: u64,
}

impl BoundedLog {
    pub fn push(&mut self, bytes: &[u8]) {
        let room = LOG_HEAD.saturating_sub(self.head.len());
        let (to_head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(to_head);
        self.tail.extend(rest);
        if self.tail.len() > LOG_TAIL {
            let over = self.tail.len() - LOG_TAIL;
            self.tail.drain(..over);
            self.dropped += over as u64;
        }
    }

    pub fn line(&mut self, line: &str) {
        self.push(format!("{line}\n").as_bytes());
    }

    pub fn text(&self) -> String {
        let mut text = String::from_utf8_lossy(&self.head).into_owned();
        if self.dropped > 0 {
            text.push_str(&format!(
                "\n[… {} bytes of the build's output left out …]\n",
                self.dropped
            ));
        }
        let tail: Vec<u8> = self.tail.iter().copied().collect();
        text.push_str(&String::from_utf8_lossy(&tail));
        text.replace('\0', "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_build_log_keeps_its_head_and_tail_and_says_where_it_was_cut() {
        let mut log = BoundedLog::default();
        log.push(b"first line\n");
        for _ in 0..10_000 {
            log.push(b"0123456789abcdef\n");
        }
        log.push(b"ERROR: the end\n");
        let text = log.text();
        assert!(text.starts_with("first line\n"));
        assert!(text.ends_with("ERROR: the end\n"));
        assert!(text.contains("bytes of the build's output left out"));
        assert!(text.len() < LOG_HEAD + LOG_TAIL + 100);
    }
}
