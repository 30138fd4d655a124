//! The application state every handler receives, and how it is started.
//! It sits low in the graph: domains take it, it knows no domain's routes.

use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use sqlx::PgPool;

use crate::{
    catalog::Catalog,
    config::Config,
    db::{self, DbRole},
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
    /// Tree bodies held in memory at once (a file up to PROJECT_CAP_BYTES
    /// each, an upload or a tar): a few, so hostile clients cannot stack them.
    #[from_ref(skip)]
    pub tree_bodies: Arc<tokio::sync::Semaphore>,
    /// Runs ending, as Postgres announces them, for requests that wait.
    pub finals: store::finals::Finals,
    /// `/healthz`'s last checks (made at most once a second).
    pub health: Arc<crate::readiness::HealthChecks>,
}

/// What a process of the binary does; all take the same configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The web and the executor (the default).
    Serve,
    /// The web only.
    Web,
    /// The executor only, with `/healthz` on `BIND`.
    Worker,
}

/// Whole-log downloads (`/runs/{id}/log.txt`) at once; more get a 429.
pub const LOG_DOWNLOADS_AT_ONCE: usize = 4;
/// Tree bodies (uploads, tar downloads) held in memory at once.
pub const TREE_BODIES_AT_ONCE: usize = 4;

impl AppState {
    /// `start_as(Role::Serve, config)`: the web and (unless disabled) the
    /// executor.
    pub async fn start(config: Config) -> anyhow::Result<AppState> {
        AppState::start_as(Role::Serve, config).await
    }

    /// Checks the configuration, connects, migrates, and starts what `role`
    /// does: the web's pool (as `te_web`) and the deletion of expired
    /// sessions; the executor's pool (as `te_worker`), the deletion of old
    /// runs' data and the executor.
    pub async fn start_as(role: Role, mut config: Config) -> anyhow::Result<AppState> {
        match role {
            Role::Serve => {}
            Role::Web => config.no_executor = true,
            Role::Worker if config.no_executor => {
                anyhow::bail!("a worker executes runs: unset NO_EXECUTOR")
            }
            Role::Worker => {}
        }
        config.validate()?;
        crate::measures::install();
        let owner = db::connect(&config.database_url).await?;
        db::migrate(&owner).await?;
        owner.close().await;
        let web_db = match role {
            Role::Worker => None,
            _ => Some(db::connect_as(&config.database_url, DbRole::Web).await?),
        };
        let worker_db = match config.no_executor {
            true => None,
            false => Some(db::connect_as(&config.database_url, DbRole::Worker).await?),
        };
        if let Some(db) = &web_db {
            session_store::delete_expired_periodically(
                db.clone(),
                Duration::from_secs(config.session_cleanup_secs),
            );
        }
        if let (Some(days), Some(db)) = (config.retention_days, &worker_db) {
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
            let db = worker_db.clone().expect("a pool for the executor");
            Some(Executor::start(db, catalog.clone(), config.clone()).await?)
        };
        if let Some(db) = &web_db {
            crate::check_driver::start(db.clone(), catalog.clone(), executor.clone());
        }
        // A worker's own routes (`/healthz`) read with the executor's pool.
        let db = web_db.or(worker_db).expect("a web or a worker pool");
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
            tree_bodies: Arc::new(tokio::sync::Semaphore::new(TREE_BODIES_AT_ONCE)),
        })
    }
}
