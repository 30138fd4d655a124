//! Follows one run's container to its end: its output goes to the writer
//! (which stores it without ever making this loop wait on Postgres), and the
//! deadline and cancellation are enforced by this loop's own timers — also
//! after the container closed its output early, and also when the engine stops
//! answering. A killed container counts as dead only once the engine says it
//! stopped; if it never does, the run is left to the reconciler rather than
//! finished while it may still be alive.

mod container;
mod ending;

use std::{pin::Pin, sync::Arc, time::Duration};

use anyhow::Result;
use bollard::{container::LogOutput, models::ContainerStatsResponse};
use futures_util::StreamExt;
use time::OffsetDateTime;
use tokio::{
    sync::watch,
    task::{JoinError, JoinHandle},
    time::{Instant, Interval, Sleep},
};
use tokio_util::sync::CancellationToken;

use super::{
    output::{Piece, Splitter, Stream},
    sampler::Sampler,
    shard_feed::Asker,
    sink::Sink,
    writer::{Message, Writer},
    Shared,
};
use crate::{
    engine::OutputStream,
    store::lifecycle::{ClaimedRun, Outcome, Progress},
};
use container::{send_kill, wait_for_exit, ExitWait};

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
/// The runner is asked for every thread's stack this long before the
/// deadline (or a quarter of a shorter limit before it): where a run that
/// times out hung, by this loop's clock, the one that kills it.
const STACKS_LEAD: Duration = Duration::from_secs(3);
/// Once the container stopped, output still in transit gets this long to
/// arrive while the stream stays silent (an attach connection can hang).
const STREAM_GRACE: Duration = Duration::from_secs(2);

/// `STACKS_LEAD` before `deadline`, or a quarter of a shorter limit.
fn stacks_due(run: &ClaimedRun, deadline: Instant) -> Instant {
    let limit = Duration::from_secs(run.limits.timeout_secs.max(0) as u64);
    deadline
        .checked_sub(STACKS_LEAD.min(limit / 4))
        .unwrap_or(deadline)
}

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

/// Streams the output into the database until the container stops, killing
/// it at the deadline or on cancel, then decides the outcome.
pub async fn follow(
    shared: &Arc<Shared>,
    run: &ClaimedRun,
    name: &str,
    (output, asker): (OutputStream, Option<Asker>),
    deadline: Instant,
    cancel: CancellationToken,
    cpu_baseline_ns: Option<u64>,
) -> Result<Outcome> {
    let sampler = if shared.config.sample_resources {
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
    let mut follower = Follower::new(shared, run, name, output, cancel, sampler, deadline);
    follower.asker = asker;
    follower.run().await
}

/// What the loop does after a step.
enum Flow {
    Follow,
    /// The container stopped and its output is in: decide the outcome.
    Exited,
    /// The writer stopped (a lasting database error): say which.
    WriterStopped,
}

/// One run being followed: its output on the way to the writer, its timers,
/// and what is known of its container's end.
struct Follower<'a> {
    shared: &'a Arc<Shared>,
    run: &'a ClaimedRun,
    name: &'a str,
    output: OutputStream,
    cancel: CancellationToken,
    sampler: Sampler,
    splitter: Splitter,
    sink: Sink,
    writer: Writer,
    progress: watch::Receiver<Option<Progress>>,
    /// Pieces split off the last frame, for the sink.
    pieces: Vec<Piece>,
    tick: Interval,
    deadline: Pin<Box<Sleep>>,
    /// When to ask for the stacks, once (`STACKS_LEAD`).
    stacks_due: Option<Pin<Box<Sleep>>>,
    /// Waited on from the start, beside the output: the container's end is
    /// seen even if its output stream ends early or hangs.
    exit_wait: Option<ExitWait>,
    exit_code: Option<i64>,
    exit_seen_at: Option<OffsetDateTime>,
    stream_ended_at: Option<OffsetDateTime>,
    quiet_since: Instant,
    last_sent: Instant,
    killed: Option<Kill>,
    killed_at: Option<Instant>,
    last_kill: Instant,
    kill_sent: Option<JoinHandle<bool>>,
    /// This step's events, acted on after it: a kill asked for, a tick.
    kill_now: Option<Kill>,
    tick_due: bool,
    /// The run's `stacks_asked` last acted on: when it moves, the runner is
    /// asked for its stacks ("Where is it now?").
    stacks_asked: i32,
    /// A shard's asks for its next test go there.
    asker: Option<Asker>,
}

impl<'a> Follower<'a> {
    fn new(
        shared: &'a Arc<Shared>,
        run: &'a ClaimedRun,
        name: &'a str,
        output: OutputStream,
        cancel: CancellationToken,
        sampler: Sampler,
        deadline: Instant,
    ) -> Follower<'a> {
        let caps = (shared.config.log_cap_bytes, shared.config.log_cap_lines);
        let writer = Writer::start(shared.db.clone());
        let first_wait = deadline.saturating_duration_since(Instant::now()) + WAIT_AT_MOST;
        Follower {
            shared,
            run,
            name,
            output,
            cancel,
            sampler,
            splitter: Splitter::new(&run.record_token),
            sink: Sink::new(run.id, caps, run.log_lines, run.results_stored),
            progress: writer.progress.clone(),
            writer,
            pieces: Vec::new(),
            tick: tokio::time::interval(TICK),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            stacks_due: Some(Box::pin(tokio::time::sleep_until(stacks_due(
                run, deadline,
            )))),
            exit_wait: Some(wait_for_exit(shared, name, Duration::ZERO, first_wait)),
            exit_code: None,
            exit_seen_at: None,
            stream_ended_at: None,
            quiet_since: Instant::now(),
            last_sent: Instant::now(),
            killed: None,
            killed_at: None,
            last_kill: Instant::now(),
            kill_sent: None,
            kill_now: None,
            tick_due: false,
            stacks_asked: 0,
            asker: None,
        }
    }

    async fn run(mut self) -> Result<Outcome> {
        loop {
            match self.step().await? {
                Flow::Follow => {}
                Flow::Exited => return self.finish().await,
                Flow::WriterStopped => {
                    return Err(self.writer.drain().await.err().unwrap_or_else(|| {
                        anyhow::anyhow!("the log writer stopped before the run ended")
                    }))
                }
            }
        }
    }

    /// Waits for the next event, acts on it, then hands output over and
    /// enforces the deadline or a cancel.
    async fn step(&mut self) -> Result<Flow> {
        let buffered = self.sink.buffered_bytes();
        let over_bound = buffered >= BUFFER_BYTES;
        let reading = self.stream_ended_at.is_none() && !over_bound;
        if !reading {
            self.quiet_since = Instant::now();
        }
        if self.exit_code.is_some()
            && (self.stream_ended_at.is_some() || self.quiet_since.elapsed() >= STREAM_GRACE)
        {
            return Ok(Flow::Exited);
        }
        let (exit_wait, kill_sent) = (&mut self.exit_wait, &mut self.kill_sent);
        let (waiting, kill_pending) = (exit_wait.is_some(), kill_sent.is_some());
        let can_kill = self.killed.is_none();
        let running = can_kill && self.exit_code.is_none();
        tokio::select! {
            frame = self.output.next(), if reading => self.on_frame(frame),
            code = async { exit_wait.as_mut().expect("guarded").await }, if waiting => self.on_exit(code)?,
            // (a container that stopped on its own before it did not time out)
            _ = &mut self.deadline, if running => self.on_deadline(),
            _ = async { self.stacks_due.as_mut().expect("guarded").await }, if running && self.stacks_due.is_some() => self.on_stacks_due(),
            _ = self.cancel.cancelled(), if can_kill => self.on_cancel(),
            changed = self.progress.changed(), if !self.writer.stopped() => self.on_progress(changed)?,
            sent = async { kill_sent.as_mut().expect("guarded").await }, if kill_pending => self.on_kill_sent(sent),
            reading = self.sampler.next(), if self.sampler.reading() => self.on_sample(reading),
            room = self.writer.wait_room(buffered), if over_bound => room?,
            _ = self.tick.tick() => self.on_tick(),
        }
        if let Some(asker) = &mut self.asker {
            for piece in &self.pieces {
                if let Piece::Record(record) = piece {
                    asker.see(record);
                }
            }
        }
        self.sink.accept(std::mem::take(&mut self.pieces));
        self.splitter.keep_text(!self.sink.log_full());
        if self.writer.stopped() {
            return Ok(Flow::WriterStopped);
        }
        self.hand_over(over_bound).await?;
        self.enforce()?;
        Ok(Flow::Follow)
    }

    fn on_frame(&mut self, frame: Option<Result<LogOutput, bollard::errors::Error>>) {
        self.quiet_since = Instant::now();
        match frame {
            Some(Ok(LogOutput::StdOut { message })) => {
                self.splitter
                    .push(Stream::Stdout, &message, &mut self.pieces)
            }
            Some(Ok(LogOutput::StdErr { message })) => {
                self.splitter
                    .push(Stream::Stderr, &message, &mut self.pieces)
            }
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                tracing::warn!(error = %err, "reading the container's output");
                self.stream_ended_at = Some(OffsetDateTime::now_utc());
            }
            None => self.stream_ended_at = Some(OffsetDateTime::now_utc()),
        }
        if self.stream_ended_at.is_some() && self.exit_code.is_none() {
            // A test may close its stdout and stderr, a connection may
            // drop: the timers here still run.
            tracing::debug!("the output stream ended before the container stopped");
        }
    }

    fn on_exit(&mut self, code: Result<Option<i64>>) -> Result<()> {
        self.exit_wait = None;
        match code {
            Ok(None) => anyhow::bail!("its container {} disappeared while it ran", self.name),
            Ok(Some(code)) => {
                self.exit_code = Some(code);
                self.exit_seen_at = Some(OffsetDateTime::now_utc());
                self.quiet_since = Instant::now();
            }
            Err(err) => {
                tracing::warn!(
                    error = format!("{err:#}"),
                    "waiting for the container to stop; waiting again"
                );
                let pause = Duration::from_secs(1);
                let wait = wait_for_exit(self.shared, self.name, pause, WAIT_AT_MOST);
                self.exit_wait = Some(wait);
            }
        }
        Ok(())
    }

    fn on_deadline(&mut self) {
        self.kill_now = Some(Kill::Timeout);
    }

    fn on_stacks_due(&mut self) {
        self.stacks_due = None;
        container::signal(self.shared, self.name, container::DEADLINE_NEAR);
    }

    fn on_cancel(&mut self) {
        self.kill_now = Some(Kill::Cancel);
    }

    /// The writer stored a batch: a cancel from elsewhere shows in its
    /// answer, and so does another executor having taken the run over.
    fn on_progress(&mut self, changed: Result<(), watch::error::RecvError>) -> Result<()> {
        let now = *self.progress.borrow();
        if let (Ok(()), Some(now)) = (changed, now) {
            if now.worker_id != Some(self.shared.worker_id) {
                return Err(GaveUp::TakenOver(self.run.id).into());
            }
            if now.stop() && self.killed.is_none() {
                self.kill_now = Some(Kill::Cancel);
            }
            if now.stacks_asked > self.stacks_asked && self.killed.is_none() {
                self.stacks_asked = now.stacks_asked;
                container::signal(self.shared, self.name, container::ASKED);
            }
        }
        Ok(())
    }

    /// The engine took the kill: ask afresh whether the container stopped
    /// (a wait sent while the engine was silent may hang).
    fn on_kill_sent(&mut self, sent: Result<bool, JoinError>) {
        self.kill_sent = None;
        if sent.unwrap_or(false) && self.exit_code.is_none() {
            let wait = wait_for_exit(self.shared, self.name, Duration::ZERO, WAIT_AT_MOST);
            self.exit_wait = Some(wait);
        }
    }

    fn on_sample(&mut self, reading: Option<(usize, Option<ContainerStatsResponse>)>) {
        if let Some(reading) = reading {
            self.sampler.accept(reading);
        }
    }

    fn on_tick(&mut self) {
        self.tick_due = true;
    }

    /// Hands buffered output to the writer when due (or the batch is full);
    /// samples (about one a second) after it, never holding it back.
    async fn hand_over(&mut self, over_bound: bool) -> Result<()> {
        let buffered = self.sink.buffered_bytes();
        let due = self.tick_due && (buffered > 0 || self.last_sent.elapsed() >= CHECK_EVERY);
        if (due || self.sink.batch_full() || over_bound) && self.writer.has_room(buffered) {
            self.writer.send(Message::Output(self.sink.flush())).await?;
            self.last_sent = Instant::now();
        }
        if !over_bound && self.writer.has_room(self.sink.buffered_bytes() + 4096) {
            if let Some(samples) = self.sampler.take() {
                self.writer.send(Message::Resources(samples)).await?;
            }
        }
        Ok(())
    }

    /// Kills when asked to; sends an unconfirmed kill again, and gives up
    /// on a container the engine never says stopped.
    fn enforce(&mut self) -> Result<()> {
        let tick_due = std::mem::take(&mut self.tick_due);
        if let Some(why) = self.kill_now.take() {
            self.killed = Some(why);
            self.killed_at = Some(Instant::now());
            self.last_kill = Instant::now();
            if why == Kill::Timeout {
                let limit = self.run.limits.timeout_secs;
                self.sink
                    .note(format!("time limit of {limit} s reached; killing the run"));
            }
            self.kill_sent = Some(send_kill(self.shared, self.name));
        } else if let (Some(at), None) = (self.killed_at, self.exit_code) {
            if at.elapsed() >= CONFIRM_DEATH_WITHIN {
                return Err(GaveUp::Unconfirmed(self.run.id).into());
            }
            if tick_due && self.last_kill.elapsed() >= KILL_AGAIN_EVERY {
                self.last_kill = Instant::now();
                self.kill_sent = Some(send_kill(self.shared, self.name));
            }
        }
        Ok(())
    }
}
