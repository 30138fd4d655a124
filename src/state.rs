//! The application state every handler receives, and how it is started.
//! It sits low in the graph: domains take it, it knows no domain's routes.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::{
    catalog::Catalog,
    config::Config,
    db,
    engine::Engine,
    executor::Executor,
    store,
    web::{limiter::FailureLimiter, session_store},
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub catalog: Catalog,
    pub engine: Engine,
    /// `None` when this process only serves the web (`NO_EXECUTOR`).
    pub executor: Option<Executor>,
    /// Wrong operator tokens per client address, sign-in and API together.
    pub operator_limiter: Arc<FailureLimiter>,
    /// Whole-log downloads streaming at once: each holds a database
    /// connection while it lasts, so they are few.
    pub log_downloads: Arc<tokio::sync::Semaphore>,
    /// Runs ending, as Postgres announces them, for requests that wait.
    pub finals: store::finals::Finals,
    /// `/healthz`'s last checks (made at most once a second).
    pub health: Arc<crate::readiness::HealthChecks>,
}

/// Whole-log downloads (`/runs/{id}/log.txt`) at once; more get a 429.
pub const LOG_DOWNLOADS_AT_ONCE: usize = 4;

impl AppState {
    /// Checks the configuration, connects, migrates, starts the deletion of
    /// expired sessions and (unless disabled) the executor.
    pub async fn start(config: Config) -> anyhow::Result<AppState> {
        config.validate()?;
        crate::measures::install();
        let db = db::connect(&config.database_url).await?;
        db::migrate(&db).await?;
        session_store::delete_expired_periodically(
            db.clone(),
            Duration::from_secs(config.session_cleanup_secs),
        );
        if let Some(days) = config.retention_days {
            store::retention::delete_periodically(
                db.clone(),
                days,
                Duration::from_secs(config.retention_interval_secs),
            );
        }
        let catalog = Catalog::new(&config.tests_dir).with_caps(config.project_caps());
        let engine = Engine::connect()?;
        let config = Arc::new(config);
        let executor = if config.no_executor {
            None
        } else {
            Some(Executor::start(db.clone(), catalog.clone(), config.clone()).await?)
        };
        Ok(AppState {
            finals: store::finals::Finals::new(&db),
            health: Arc::default(),
            db,
            config,
            catalog,
            engine,
            executor,
            operator_limiter: Arc::default(),
            log_downloads: Arc::new(tokio::sync::Semaphore::new(LOG_DOWNLOADS_AT_ONCE)),
        })
    }
}
