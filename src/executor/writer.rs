//! Stores a run's output on a task of its own, so reading the container's
//! output never waits on Postgres. The read loop hands over messages through
//! a channel bounded by memory, not by count: it waits only once the
//! messages in the writer's hands pass `IN_FLIGHT_BYTES`. The writer takes
//! whatever queued up while it was busy (up to `WRITE_BYTES`) and stores it
//! in one transaction, in order, so batches grow with the load and stay
//! bounded by time (the read loop's tick) and bytes. A write that failed for
//! a reason that passes (a Postgres restart, a dropped connection) is retried
//! with backoff, so no line is lost or stored twice. What each write learns
//! about the run (a cancel asked for elsewhere) goes back on a watch channel.

use std::{sync::Arc, time::Duration};

use anyhow::{Context, Result};
use sqlx::PgPool;
use tokio::{
    sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore},
    task::JoinHandle,
};

use super::{sampler::SampleBatch, sink::Flush};
use crate::store::lifecycle::Progress;

/// Memory of the messages queued for the writer or being stored, past which
/// the read loop waits. With the sink's own bound, this caps the memory a
/// run's output can hold.
const IN_FLIGHT_BYTES: usize = 1024 * 1024;
/// Queued messages stored together, up to about this much memory.
const WRITE_BYTES: usize = 256 * 1024;
/// Backoff between attempts at a failed write.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
/// A failure that does not look like a passing outage is tried this often.
const ATTEMPTS_ON_OTHER_ERRORS: u32 = 3;

/// What the writer stores. Another kind of row joins as a variant, with its
/// `memory` and an arm in `store_in_order`.
pub enum Message {
    /// A run's output and its counters after it.
    Output(Flush),
    /// Resource samples (about one a second) and the run's totals so far.
    Resources(SampleBatch),
}

impl Message {
    /// Memory it holds, roughly: what it costs of `IN_FLIGHT_BYTES`.
    fn memory(&self) -> usize {
        match self {
            Message::Output(flush) => flush.memory(),
            Message::Resources(batch) => 64 + batch.samples.len() * 32,
        }
    }
}

pub struct Writer {
    queue: mpsc::UnboundedSender<(Message, OwnedSemaphorePermit)>,
    /// One permit per byte in flight.
    budget: Arc<Semaphore>,
    pub progress: watch::Receiver<Option<Progress>>,
    task: JoinHandle<Result<()>>,
}

/// The permits a message of `bytes` takes: at least one, at most all (a
/// message larger than the bound waits until the writer is idle).
fn permits(bytes: usize) -> u32 {
    bytes.clamp(1, IN_FLIGHT_BYTES) as u32
}

impl Writer {
    pub fn start(db: PgPool) -> Writer {
        let (queue, messages) = mpsc::unbounded_channel();
        let (report, progress) = watch::channel(None);
        let task = tokio::spawn(store_in_order(db, messages, report));
        Writer {
            queue,
            budget: Arc::new(Semaphore::new(IN_FLIGHT_BYTES)),
            progress,
            task,
        }
    }

    /// Whether a message of `bytes` can be handed over now without waiting.
    pub fn has_room(&self, bytes: usize) -> bool {
        self.budget.available_permits() >= permits(bytes) as usize
    }

    /// Hands a message over, waiting only while the writer holds too much.
    pub async fn send(&self, message: Message) -> Result<()> {
        let permit = self
            .budget
            .clone()
            .acquire_many_owned(permits(message.memory()))
            .await
            .context("the log writer stopped")?;
        if self.queue.send((message, permit)).is_err() {
            anyhow::bail!("the log writer stopped");
        }
        Ok(())
    }

    /// Waits until a message of `bytes` can be handed over (used while the
    /// read loop holds back because its buffer is full).
    pub async fn wait_room(&self, bytes: usize) -> Result<()> {
        let _permits = self
            .budget
            .acquire_many(permits(bytes))
            .await
            .context("the log writer stopped")?;
        Ok(())
    }

    /// Whether the writer has stopped (it does so only on a lasting error).
    pub fn stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until every message handed over is stored; the error of one
    /// that could not be stored, if any.
    pub async fn drain(self) -> Result<()> {
        drop(self.queue);
        self.task.await.context("the log writer panicked")?
    }
}

async fn store_in_order(
    db: PgPool,
    mut queue: mpsc::UnboundedReceiver<(Message, OwnedSemaphorePermit)>,
    report: watch::Sender<Option<Progress>>,
) -> Result<()> {
    while let Some(first) = queue.recv().await {
        let mut bytes = first.0.memory();
        let mut taken = vec![first];
        while bytes < WRITE_BYTES {
            let Ok(next) = queue.try_recv() else { break };
            bytes += next.0.memory();
            taken.push(next);
        }
        // The permits are given back once what they count is stored.
        let (messages, _permits): (Vec<Message>, Vec<OwnedSemaphorePermit>) =
            taken.into_iter().unzip();
        let mut output: Option<Flush> = None;
        let mut resources = Vec::new();
        for message in messages {
            match message {
                Message::Output(flush) => match &mut output {
                    Some(earlier) => earlier.absorb(flush),
                    None => output = Some(flush),
                },
                Message::Resources(batch) => resources.push(batch),
            }
        }
        if let Some(flush) = output {
            let started = std::time::Instant::now();
            let progress = retry("storing output", || flush.store(&db)).await?;
            crate::measures::logs_stored(flush.size(), started.elapsed());
            report.send_replace(Some(progress));
        }
        // Samples after the output they came with: they never hold it back.
        for batch in resources {
            retry("storing resource samples", || batch.store(&db)).await?;
        }
    }
    Ok(())
}

/// Calls `attempt` until it succeeds: forever while the error looks like a
/// database that is away for a while (it comes back, and the run's container
/// keeps running meanwhile), a few times for anything else.
pub async fn retry<T, F, Fut>(what: &'static str, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut delay = FIRST_RETRY;
    let mut other_errors = 0;
    loop {
        match attempt().await {
            Ok(done) => return Ok(done),
            Err(err) => {
                crate::measures::store_failed(what);
                if !passing(&err) {
                    other_errors += 1;
                    if other_errors >= ATTEMPTS_ON_OTHER_ERRORS {
                        return Err(err);
                    }
                }
                tracing::warn!(
                    error = format!("{err:#}"),
                    retry_in_ms = delay.as_millis() as u64,
                    "{what} failed; trying again"
                );
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(LONGEST_RETRY);
            }
        }
    }
}

/// Whether an error is one a database restart or a network blip gives:
/// worth waiting out rather than failing the run.
pub fn passing(err: &anyhow::Error) -> bool {
    let Some(err) = err.chain().find_map(|e| e.downcast_ref::<sqlx::Error>()) else {
        return false;
    };
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // connection exceptions, shutting down / starting up, out of
            // resources, serialization failures and deadlocks
            code.starts_with("08")
                || code.starts_with("57P")
                || code.starts_with("53")
                || code == "40001"
                || code == "40P01"
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_is_waited_out_but_a_bad_statement_is_not() {
        let lost = anyhow::Error::new(sqlx::Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset,
        )))
        .context("storing output of run 1");
        assert!(passing(&lost));
        assert!(passing(&anyhow::Error::new(sqlx::Error::PoolTimedOut)));
        let bad = anyhow::Error::new(sqlx::Error::RowNotFound).context("storing");
        assert!(!passing(&bad));
        assert!(!passing(&anyhow::anyhow!("something else")));
    }

    #[tokio::test]
    async fn a_write_that_keeps_failing_for_another_reason_gives_up() {
        let mut calls = 0;
        let result: Result<()> = retry("testing", || {
            calls += 1;
            async { Err(anyhow::anyhow!("no")) }
        })
        .await;
        assert!(result.is_err());
        assert_eq!(calls, ATTEMPTS_ON_OTHER_ERRORS);
    }
}
