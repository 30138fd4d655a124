//! The check driver: when a check's run ends, it queues the next one, or
//! records the verdict. One task per process serving the web (it creates
//! queued runs, as the web does, with the web's database role); it reacts
//! to runs ending (`run_final`) and looks at every running check each
//! `EVERY` anyway, so a missed notice, a restart or a run ended by another
//! process only delays a step. Each check is advanced in a transaction
//! holding its row (`for update skip locked`): two drivers never both
//! advance one, and the next run is created in that transaction, so a
//! crash leaves either the step before or the step after.

mod bisect;
mod flaky;
pub mod plan;

use std::time::Duration;

use anyhow::Context;
use sqlx::{postgres::PgListener, PgPool};

use crate::store::checks::{self, Check, CheckStatus};
use crate::store::runs::{self, NewRun};
use crate::{catalog::Catalog, error::AppError, executor::Executor, store::Username};

/// How often every running check is looked at, notice or not.
const EVERY: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Driver {
    db: PgPool,
    catalog: Catalog,
    executor: Option<Executor>,
}

/// Starts the driver for the life of the process.
pub fn start(db: PgPool, catalog: Catalog, executor: Option<Executor>) {
    let driver = Driver {
        db,
        catalog,
        executor,
    };
    tokio::spawn(async move { driver.run().await });
}

impl Driver {
    async fn run(self) {
        let mut listener = None;
        loop {
            if listener.is_none() {
                listener = self.listen().await;
            }
            if let Err(err) = self.pass().await {
                tracing::warn!(error = format!("{err:#}"), "advancing checks");
            }
            match &mut listener {
                Some(l) => {
                    if let Ok(Err(_)) = tokio::time::timeout(EVERY, l.recv()).await {
                        listener = None;
                    }
                }
                None => tokio::time::sleep(EVERY).await,
            }
        }
    }

    async fn listen(&self) -> Option<PgListener> {
        let mut listener = PgListener::connect_with(&self.db).await.ok()?;
        listener.listen("run_final").await.ok()?;
        Some(listener)
    }

    /// Advances every running check that has a step to take.
    async fn pass(&self) -> anyhow::Result<()> {
        for id in checks::running(&self.db).await.context("listing checks")? {
            // One check's trouble (tried again next pass) holds up no other.
            if let Err(err) = self.advance(id).await {
                tracing::warn!(
                    check_id = id,
                    error = format!("{err:#}"),
                    "advancing a check"
                );
            }
        }
        Ok(())
    }

    async fn advance(&self, id: i64) -> anyhow::Result<()> {
        let mut tx = self.db.begin().await?;
        let Some(check) = checks::lock_running(&mut tx, id).await? else {
            return Ok(());
        };
        let steps = checks::steps(&mut *tx, id, &check.nodeid).await?;
        let created = match plan::next(&check, &steps) {
            plan::Next::Wait => return Ok(()),
            plan::Next::Run(node_ids) => {
                let step = steps.last().map_or(0, |s| s.step + 1);
                let last = steps
                    .last()
                    .map(|s| s.run_id)
                    .unwrap_or(check.source_run_id);
                match self.queue_step(&mut tx, &check, last, step, node_ids).await {
                    Ok(()) => true,
                    // The database failing: try again next pass.
                    Err(AppError::Internal(err)) => return Err(err),
                    Err(refused) => {
                        let reason = format!("could not queue run {}: {refused}", step + 1);
                        checks::finish(&mut tx, id, CheckStatus::Error, None, Some(&reason))
                            .await?;
                        false
                    }
                }
            }
            plan::Next::Done(verdict) => {
                checks::finish(&mut tx, id, CheckStatus::Done, Some(&verdict), None).await?;
                false
            }
            plan::Next::Stop(status, reason) => {
                checks::finish(&mut tx, id, status, None, Some(&reason)).await?;
                false
            }
        };
        tx.commit().await?;
        if let (true, Some(executor)) = (created, &self.executor) {
            executor.wake();
        }
        Ok(())
    }

    /// Queues the check's next run: the previous run's files (looked up
    /// again: gone files end the check) and recorded content hashes, the
    /// same environment, waiting in line for it.
    async fn queue_step(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
        check: &Check,
        previous: i64,
        step: i32,
        node_ids: Vec<String>,
    ) -> Result<(), AppError> {
        let run = runs::get(&self.db, previous).await?;
        let catalog = match &run.tree_id {
            None => self.catalog.clone(),
            Some(id) => crate::trees::checkout::catalog(&self.db, id, self.catalog.caps())
                .await
                .map_err(AppError::Invalid)?,
        };
        // A tests folder that cannot be listed (over its caps, unreadable)
        // stays so: the check ends, rather than hold its environment.
        let listing = catalog.listing().await.map_err(|e| {
            AppError::Invalid(format!("the tests folder could not be listed: {e:#}"))
        })?;
        let selection = listing.resolve(&run.files)?;
        let new = NewRun {
            username: Username::parse(&check.username)?,
            environment_id: check.environment_id,
            files: selection.files,
            file_sha256: run.file_sha256,
            queue_if_busy: true,
            project: run.project,
            tree_sha256: run.tree_sha256,
            node_ids: Some(node_ids),
            rerun_of: None,
            tree_id: run.tree_id,
            check: Some((check.id, step)),
            shard: None,
        };
        // A savepoint: a refusal leaves the transaction able to end the check.
        let mut savepoint = sqlx::Connection::begin(&mut **tx).await?;
        runs::create_in(&mut savepoint, &new, None).await?;
        savepoint.commit().await?;
        crate::measures::run_created(check.environment_id.get());
        Ok(())
    }
}
