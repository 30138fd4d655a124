//! A followed run's end: the output still in transit taken in, a cancel
//! noted, the outcome decided from what the sink and the sampler gathered,
//! and the last of it stored.

use anyhow::Result;
use std::time::Duration;
use time::OffsetDateTime;

use super::{Follower, Kill};
use crate::{
    executor::{outcome, sampler::Sampler, sink::Sink, writer::Message, Shared},
    store::{
        lifecycle::{ClaimedRun, Outcome},
        RunStatus,
    },
};

impl Follower<'_> {
    /// Once the container stopped: the rest of the output, the verdict, and
    /// everything stored before the outcome is returned.
    pub(super) async fn finish(mut self) -> Result<Outcome> {
        let exit_code = self
            .exit_code
            .expect("the loop ends once the container stopped");
        self.take_the_rest().await;
        let state = self.shared.engine.inspect(self.name).await?;
        let oom_killed = state.is_some_and(|s| s.oom_killed);
        let (run, sink, sampler) = (self.run, &mut self.sink, &mut self.sampler);
        let ran_for = (OffsetDateTime::now_utc() - sampler.started_at())
            .try_into()
            .unwrap_or_default();
        sampler.merge_runner_count(sink.usage, &run.limits, ran_for);
        if oom_killed {
            sampler.killed_for_memory(&run.limits);
        }
        let killed = (self.killed, oom_killed);
        let (status, reason) = verdict(sink, sampler, exit_code, killed, run);
        if oom_killed {
            // pytest never reports the test it was in: listed here, failed by the kill.
            let kill = reason.split(" during ").next().unwrap_or(&reason);
            sink.interrupt("failed", kill.to_owned(), true);
        }
        self.writer.send(Message::Output(sink.flush())).await?;
        if let Some(samples) = sampler.take() {
            self.writer.send(Message::Resources(samples)).await?;
        }
        self.writer.drain().await?;
        let junit = (!self.sink.junit.is_empty()).then(|| std::mem::take(&mut self.sink.junit));
        Ok(Outcome {
            status,
            reason,
            exit_code: Some(exit_code),
            junit,
            stacks: self.sink.stacks.take(),
            ready_at: None,
            // pytest's end: its output's end, or when the engine said it stopped
            exited_at: self
                .stream_ended_at
                .into_iter()
                .chain(self.exit_seen_at)
                .min(),
            warm: None,
        })
    }

    /// The output still in the splitter, the count of what was dropped, and
    /// who cancelled the run (if someone did).
    async fn take_the_rest(&mut self) {
        if self.stream_ended_at.is_none() {
            tracing::warn!(
                "the output stream stayed open after the container stopped; stopped reading"
            );
        }
        self.splitter.finish(&mut self.pieces);
        self.sink.accept(std::mem::take(&mut self.pieces));
        self.sink.note_dropped();
        if self.killed == Some(Kill::Cancel) {
            let since = self.killed_at.map_or(Duration::ZERO, |k| k.elapsed());
            let at = OffsetDateTime::now_utc() - since;
            note_cancel(self.shared, self.run.id, &mut self.sink, at).await;
        }
    }
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
    ending.shard = run.shard_of.is_some();
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
    let who = match crate::store::runs::cancel_requested(&shared.db, run_id).await {
        Ok(Some(who)) => who,
        Ok(None) => return,
        Err(err) => {
            tracing::warn!(error = format!("{err:#}"), "reading who cancelled the run");
            "cancelled".to_owned()
        }
    };
    let line = crate::store::runs::cancel_line(&who, at);
    sink.interrupt("skipped", format!("{line}, while it ran"), false);
    sink.note(line);
}
