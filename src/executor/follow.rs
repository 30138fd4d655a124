//! Follows one run's container to its end: its output goes to the writer
//! (which stores it without ever making this loop wait on Postgres), and the
//! deadline and cancellation are enforced by this loop's own timers — also
//! after the container closed its output early, and also when the engine stops
//! answering. A killed container counts as dead only once the engine says it
//! stopped; if it never does, the run is left to the reconciler rather than
//! finished while it may still be alive.

use std::{future::Future, pin::Pin, sync::Arc, time::Duration};

use anyhow::Result;
use bollard::container::LogOutput;
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::{task::JoinHandle, time::Instant};
use tokio_util::sync::CancellationToken;

use super::{
    engine::{OutputStream, CALL_TIMEOUT},
    outcome,
    output::{Piece, Splitter, Stream},
    sampler::Sampler,
    sink::Sink,
    store::{ClaimedRun, Outcome},
    writer::{Message, Writer},
    Shared,
};
use crate::store::RunStatus;

/// How often buffered output is handed to the writer: a printed line is
/// stored within about this long (plus the write's own time).
const TICK: Duration = Duration::from_millis(100);
/// How often, when the run prints nothing, its counters are written and a
/// cancel from elsewhere is noticed (from the write's answer).
const CHECK_EVERY: Duration = Duration::from_millis(200);
/// Output buffered here past which the loop stops reading, while the writer
/// holds all it may (the container then blocks on its own writes): with the
/// writer's bound, the memory bound of a run.
const BUFFER_BYTES: usize = 4 * 1024 * 1024;
/// A kill the engine has not confirmed is sent again this often…
const KILL_AGAIN_EVERY: Duration = Duration::from_secs(5);
/// …and given up on after this long: the reconciler takes the run over.
const CONFIRM_DEATH_WITHIN: Duration = Duration::from_secs(90);
/// One wait for the container to stop lasts until the deadline and this
/// long after it; then it is asked again (an engine may drop a request).
const WAIT_AT_MOST: Duration = Duration::from_secs(60);
/// Once the container stopped, output still in transit gets this long to
/// arrive while the stream stays silent (an attach connection can hang).
const STREAM_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kill {
    Timeout,
    Cancel,
}

/// Why this executor stops following a run without ending it: the run is
/// left running (its environment held), never finished on a guess.
#[derive(Debug, thiserror::Error)]
pub enum GaveUp {
    /// The reconciler takes it over once no task follows it.
    #[error("the Docker engine did not confirm that the container of run {0} stopped")]
    Unconfirmed(i64),
    /// This executor lost its lock for a while (a Postgres restart) and
    /// another one took the run over: two must never follow one run.
    #[error("run {0} is followed by another executor now")]
    TakenOver(i64),
}

/// The container's exit code once it stopped; `None` if it is gone.
type ExitWait = Pin<Box<dyn Future<Output = Result<Option<i64>>> + Send>>;

/// Streams the output into the database until the container stops, killing
/// it at the deadline or on cancel, then decides the outcome.
pub async fn follow(
    shared: &Arc<Shared>,
    run: &ClaimedRun,
    name: &str,
    mut output: OutputStream,
    deadline: Instant,
    cancel: CancellationToken,
    cpu_baseline_ns: Option<u64>,
) -> Result<Outcome> {
    let mut sampler = if shared.sample_resources {
        Sampler::start(
            &shared.engine,
            run.id,
            name,
            run.started_at,
            cpu_baseline_ns,
            run.peak_memory_bytes,
        )
        .with_services(&shared.engine, shared.services.of(run.id))
    } else {
        Sampler::off(run.id)
    };
    let mut splitter = Splitter::new(&run.record_token);
    let mut sink = Sink::new(
        run.id,
        (shared.log_cap_bytes, shared.log_cap_lines),
        run.log_lines,
        run.results_stored,
    );
    let writer = Writer::start(shared.db.clone());
    let mut progress = writer.progress.clone();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut tick = tokio::time::interval(TICK);
    let first_wait = deadline.saturating_duration_since(Instant::now()) + WAIT_AT_MOST;
    let deadline = tokio::time::sleep_until(deadline);
    tokio::pin!(deadline);

    let mut killed: Option<Kill> = None;
    let mut killed_at: Option<Instant> = None;
    let mut last_kill = Instant::now();
    let mut kill_sent: Option<JoinHandle<bool>> = None;
    let mut stream_ended_at: Option<OffsetDateTime> = None;
    // Waited on from the start, beside the output: the container's end is
    // seen even if its output stream ends early or hangs.
    let mut exit_wait: Option<ExitWait> =
        Some(wait_for_exit(shared, name, Duration::ZERO, first_wait));
    let mut exit_code: Option<i64> = None;
    let mut exit_seen_at: Option<OffsetDateTime> = None;
    let mut quiet_since = Instant::now();
    let mut last_sent = Instant::now();

    loop {
        let buffered = sink.buffered_bytes();
        let over_bound = buffered >= BUFFER_BYTES;
        let reading = stream_ended_at.is_none() && !over_bound;
        if !reading {
            quiet_since = Instant::now();
        }
        if exit_code.is_some()
            && (stream_ended_at.is_some() || quiet_since.elapsed() >= STREAM_GRACE)
        {
            break;
        }
        let mut kill = None;
        let mut tick_due = false;
        tokio::select! {
            frame = output.next(), if reading => {
                quiet_since = Instant::now();
                match frame {
                    Some(Ok(LogOutput::StdOut { message })) => splitter.push(Stream::Stdout, &message, &mut pieces),
                    Some(Ok(LogOutput::StdErr { message })) => splitter.push(Stream::Stderr, &message, &mut pieces),
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "reading the container's output");
                        stream_ended_at = Some(OffsetDateTime::now_utc());
                    }
                    None => stream_ended_at = Some(OffsetDateTime::now_utc()),
                }
                if stream_ended_at.is_some() && exit_code.is_none() {
                    // A test may close its stdout and stderr, a connection
                    // may drop: the timers here still run.
                    tracing::debug!("the output stream ended before the container stopped");
                }
            },
            code = async { exit_wait.as_mut().expect("guarded").await }, if exit_wait.is_some() => {
                exit_wait = None;
                match code {
                    Ok(None) => anyhow::bail!("its container {name} disappeared while it ran"),
                    Ok(Some(code)) => {
                        exit_code = Some(code);
                        exit_seen_at = Some(OffsetDateTime::now_utc());
                        quiet_since = Instant::now();
                    }
                    Err(err) => {
                        tracing::warn!(error = format!("{err:#}"), "waiting for the container to stop; waiting again");
                        exit_wait = Some(wait_for_exit(shared, name, Duration::from_secs(1), WAIT_AT_MOST));
                    }
                }
            },
            // (a container that stopped on its own before it did not time out)
            _ = &mut deadline, if killed.is_none() && exit_code.is_none() => kill = Some(Kill::Timeout),
            _ = cancel.cancelled(), if killed.is_none() => kill = Some(Kill::Cancel),
            changed = progress.changed(), if !writer.stopped() => {
                let now = *progress.borrow();
                if let (Ok(()), Some(now)) = (changed, now) {
                    if now.worker_id != Some(shared.worker_id) {
                        return Err(GaveUp::TakenOver(run.id).into());
                    }
                    if now.stop() && killed.is_none() {
                        kill = Some(Kill::Cancel);
                    }
                }
            },
            // The engine took the kill: ask afresh whether the container
            // stopped (a wait sent while the engine was silent may hang).
            sent = async { kill_sent.as_mut().expect("guarded").await }, if kill_sent.is_some() => {
                kill_sent = None;
                if sent.unwrap_or(false) && exit_code.is_none() {
                    exit_wait = Some(wait_for_exit(shared, name, Duration::ZERO, WAIT_AT_MOST));
                }
            },
            reading = sampler.next(), if sampler.reading() => {
                if let Some(reading) = reading {
                    sampler.accept(reading);
                }
            },
            room = writer.wait_room(buffered), if over_bound => room?,
            _ = tick.tick() => tick_due = true,
        }
        sink.accept(std::mem::take(&mut pieces));
        splitter.keep_text(!sink.log_full());
        if writer.stopped() {
            // Only a lasting database error stops it; say which.
            return Err(writer.drain().await.err().unwrap_or_else(|| {
                anyhow::anyhow!("the log writer stopped before the run ended")
            }));
        }
        let due = tick_due && (sink.buffered_bytes() > 0 || last_sent.elapsed() >= CHECK_EVERY);
        if (due || sink.batch_full() || over_bound) && writer.has_room(sink.buffered_bytes()) {
            writer.send(Message::Output(sink.flush())).await?;
            last_sent = Instant::now();
        }
        // Samples (about one a second) never hold the output back: they go
        // when the writer has room after it.
        if !over_bound && writer.has_room(sink.buffered_bytes() + 4096) {
            if let Some(samples) = sampler.take() {
                writer.send(Message::Resources(samples)).await?;
            }
        }
        if let Some(why) = kill {
            killed = Some(why);
            killed_at = Some(Instant::now());
            last_kill = Instant::now();
            if why == Kill::Timeout {
                sink.note(format!(
                    "time limit of {} s reached; killing the run",
                    run.limits.timeout_secs
                ));
            }
            kill_sent = Some(send_kill(shared, name));
        } else if let (Some(at), None) = (killed_at, exit_code) {
            if at.elapsed() >= CONFIRM_DEATH_WITHIN {
                return Err(GaveUp::Unconfirmed(run.id).into());
            }
            if tick_due && last_kill.elapsed() >= KILL_AGAIN_EVERY {
                last_kill = Instant::now();
                kill_sent = Some(send_kill(shared, name));
            }
        }
    }
    let exit_code = exit_code.expect("the loop ends once the container stopped");
    if stream_ended_at.is_none() {
        tracing::warn!(
            "the output stream stayed open after the container stopped; stopped reading"
        );
    }
    splitter.finish(&mut pieces);
    sink.accept(pieces);
    sink.note_dropped();
    if killed == Some(Kill::Cancel) {
        let at = OffsetDateTime::now_utc() - killed_at.map_or(Duration::ZERO, |k| k.elapsed());
        note_cancel(shared, run.id, &mut sink, at).await;
    }
    let state = shared.engine.inspect(name).await?;
    let oom_killed = state.is_some_and(|s| s.oom_killed);
    let ran_for = (OffsetDateTime::now_utc() - sampler.started_at())
        .try_into()
        .unwrap_or_default();
    sampler.merge_runner_count(sink.usage, &run.limits, ran_for);
    if oom_killed {
        sampler.killed_for_memory(&run.limits);
    }
    let (status, reason) = verdict(&sink, &sampler, exit_code, (killed, oom_killed), run);
    if oom_killed {
        // pytest never reports the test it was in: listed here, failed by the kill.
        let kill = reason.split(" during ").next().unwrap_or(&reason);
        sink.interrupt("failed", kill.to_owned(), true);
    }
    writer.send(Message::Output(sink.flush())).await?;
    if let Some(samples) = sampler.take() {
        writer.send(Message::Resources(samples)).await?;
    }
    writer.drain().await?;
    let junit = (!sink.junit.is_empty()).then(|| std::mem::take(&mut sink.junit));
    Ok(Outcome {
        status,
        reason,
        exit_code: Some(exit_code),
        junit,
        ready_at: None,
        // pytest's end: its output's end, or when the engine said it stopped
        exited_at: stream_ended_at.into_iter().chain(exit_seen_at).min(),
        warm: None,
    })
}

/// How the run ended, from what the sink and the sampler gathered.
fn verdict(
    sink: &Sink,
    sampler: &Sampler,
    exit_code: i64,
    (killed, oom_killed): (Option<Kill>, bool),
    run: &ClaimedRun,
) -> (RunStatus, String) {
    let mut ending = sink.ending(Some(exit_code), oom_killed, killed == Some(Kill::Timeout));
    ending.peak_memory_bytes = sampler.peak_memory_bytes();
    match killed {
        // Who asked is on the run's row; `store::finish` takes it from there.
        Some(Kill::Cancel) => (RunStatus::Cancelled, "cancelled".to_owned()),
        _ => outcome::decide(&ending, &run.limits),
    }
}

/// Says at the log's end who cancelled the run and when ("cancelled by ann
/// at 12:03:04 UTC"), and lists the test it was in with the same words. A
/// run stopped because someone else ended it (nobody asked) gets neither.
async fn note_cancel(shared: &Shared, run_id: i64, sink: &mut Sink, at: OffsetDateTime) {
    let who = match crate::store::cancel_requested(&shared.db, run_id).await {
        Ok(Some(who)) => who,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = format!("{err:#}"), "reading who cancelled the run");
            "cancelled".to_owned()
        }
    };
    let line = crate::store::cancel_line(&who, at);
    sink.interrupt("skipped", format!("{line}, while it ran"), false);
    sink.note(line);
}

/// Kills on the side, so an engine slow to answer never stalls the loop;
/// the task says whether the engine took the kill.
fn send_kill(shared: &Arc<Shared>, name: &str) -> JoinHandle<bool> {
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

/// Waits (after `pause`) for the container to stop, for at most `within`, so
/// a silent engine is asked again rather than waited on forever.
fn wait_for_exit(shared: &Arc<Shared>, name: &str, pause: Duration, within: Duration) -> ExitWait {
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
