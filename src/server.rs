//! Application state, the router, and serving with graceful shutdown.

use std::sync::Arc;

use anyhow::Context;
use axum::{extract::FromRef, routing::get, Router};
use sqlx::PgPool;
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};
use tower_sessions_sqlx_store::PostgresStore;

use crate::{
    catalog::Catalog,
    config::Config,
    db,
    executor::{self, Engine, Executor},
    web,
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    pub catalog: Catalog,
    pub engine: Engine,
    /// `None` when this process only serves the web (`NO_EXECUTOR`).
    pub executor: Option<Executor>,
    pub sign_in_limiter: Arc<crate::operators::SignInLimiter>,
}

impl AppState {
    /// Connects, migrates and (unless disabled) starts the executor.
    pub async fn start(config: Config) -> anyhow::Result<AppState> {
        let db = db::connect(&config.database_url).await?;
        db::migrate(&db).await?;
        let catalog = Catalog::new(&config.tests_dir);
        let engine = Engine::connect()?;
        let executor = if config.no_executor {
            None
        } else {
            let settings = executor::Settings {
                image: config.runner_image.clone(),
                max_parallel_runs: config.max_parallel_runs(),
                log_cap_bytes: config.log_cap_bytes,
                log_cap_lines: config.log_cap_lines,
                warm_pool: config.warm_pool(),
            };
            Some(Executor::start(db.clone(), catalog.clone(), settings).await?)
        };
        Ok(AppState {
            db,
            config: Arc::new(config),
            catalog,
            engine,
            executor,
            sign_in_limiter: Arc::default(),
        })
    }
}

pub fn app(state: AppState) -> Router {
    let sessions = SessionManagerLayer::new(PostgresStore::new(state.db.clone()))
        .with_secure(false)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_expiry(Expiry::OnInactivity(time::Duration::days(30)));
    Router::new()
        .route("/healthz", get(crate::health::healthz))
        .merge(web::routes(&state))
        .layer(sessions)
        .with_state(state)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = AppState::start(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    tracing::info!("serving at http://{bind}");
    let executor = state.executor.clone();
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")?;
    if let Some(executor) = executor {
        executor.shutdown().await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down; running containers are resumed at the next start");
}
