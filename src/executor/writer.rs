//! Stores a run's output on a task of its own, so reading the container's
//! output never waits on Postgres. The read loop hands over batches through a
//! small bounded channel (it stops reading only when its own buffer passes a
//! memory bound); the writer stores them in order, and keeps retrying a batch
//! that failed for a reason that passes (a Postgres restart, a dropped
//! connection) with backoff, so no line is lost or stored twice. What each
//! write learns about the run (a cancel asked for elsewhere) goes back on a
//! watch channel.

use std::time::Duration;

use anyhow::{Context, Result};
use sqlx::PgPool;
use tokio::{
    sync::{mpsc, watch},
    task::JoinHandle,
};

use super::{
    sampler::SampleBatch,
    sink::{Flush, Progress},
};

/// Batches waiting for the writer besides the one it is storing. With the
/// sink's own bound, this caps the memory a run's output can hold.
const QUEUED_BATCHES: usize = 1;
/// Backoff between attempts at a failed write.
const FIRST_RETRY: Duration = Duration::from_millis(100);
const LONGEST_RETRY: Duration = Duration::from_secs(5);
/// A failure that does not look like a passing outage is tried this often.
const ATTEMPTS_ON_OTHER_ERRORS: u32 = 3;

/// What the writer stores: a batch of output, or of resource samples.
enum Batch {
    Output(Flush),
    Resources(SampleBatch),
}

pub struct Writer {
    batches: mpsc::Sender<Batch>,
    pub progress: watch::Receiver<Option<Progress>>,
    task: JoinHandle<Result<()>>,
}

impl Writer {
    pub fn start(db: PgPool) -> Writer {
        let (batches, queue) = mpsc::channel(QUEUED_BATCHES);
        let (report, progress) = watch::channel(None);
        let task = tokio::spawn(store_in_order(db, queue, report));
        Writer {
            batches,
            progress,
            task,
        }
    }

    /// Whether a batch can be handed over now without waiting.
    pub fn ready(&self) -> bool {
        self.batches.capacity() > 0
    }

    /// Hands a batch over, waiting only while the writer is behind.
    pub async fn send(&self, flush: Flush) -> Result<()> {
        if self.batches.send(Batch::Output(flush)).await.is_err() {
            anyhow::bail!("the log writer stopped");
        }
        Ok(())
    }

    /// Hands a batch of resource samples over (call when `ready`).
    pub async fn send_samples(&self, samples: SampleBatch) -> Result<()> {
        if self.batches.send(Batch::Resources(samples)).await.is_err() {
            anyhow::bail!("the log writer stopped");
        }
        Ok(())
    }

    /// Waits until the writer can take a batch (used while the read loop
    /// holds back because its buffer is full).
    pub async fn wait_ready(&self) -> Result<()> {
        match self.batches.reserve().await {
            Ok(_permit) => Ok(()),
            Err(_) => anyhow::bail!("the log writer stopped"),
        }
    }

    /// Whether the writer has stopped (it does so only on a lasting error).
    pub fn stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Waits until every batch handed over is stored; the error of a batch
    /// that could not be stored, if any.
    pub async fn drain(self) -> Result<()> {
        drop(self.batches);
        self.task.await.context("the log writer panicked")?
    }
}

async fn store_in_order(
    db: PgPool,
    mut queue: mpsc::Receiver<Batch>,
    report: watch::Sender<Option<Progress>>,
) -> Result<()> {
    while let Some(batch) = queue.recv().await {
        match batch {
            Batch::Output(flush) => {
                let progress = retry("storing output", || flush.store(&db)).await?;
                report.send_replace(Some(progress));
            }
            Batch::Resources(samples) => {
                retry("storing resource samples", || samples.store(&db)).await?
            }
        }
    }
    Ok(())
}

/// Calls `attempt` until it succeeds: forever while the error looks like a
/// database that is away for a while (it comes back, and the run's container
/// keeps running meanwhile), a few times for anything else.
pub async fn retry<T, F, Fut>(what: &str, mut attempt: F) -> Result<T>
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
