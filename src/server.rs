//! Application state, the router, and serving with graceful shutdown.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use axum::{extract::FromRef, routing::get, Router};
use sqlx::PgPool;

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
    /// Wrong operator tokens per client address, sign-in and API together.
    pub operator_limiter: Arc<crate::operators::FailureLimiter>,
}

impl AppState {
    /// Checks the configuration, connects, migrates, starts the deletion of
    /// expired sessions and (unless disabled) the executor.
    pub async fn start(config: Config) -> anyhow::Result<AppState> {
        config.validate()?;
        let db = db::connect(&config.database_url).await?;
        db::migrate(&db).await?;
        web::session_store::delete_expired_periodically(
            db.clone(),
            Duration::from_secs(config.session_cleanup_secs),
        );
        let catalog = Catalog::new(&config.tests_dir).with_caps(config.project_caps());
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
                dependencies: config.dependencies.clone(),
            };
            Some(Executor::start(db.clone(), catalog.clone(), settings).await?)
        };
        Ok(AppState {
            db,
            config: Arc::new(config),
            catalog,
            engine,
            executor,
            operator_limiter: Arc::default(),
        })
    }
}

/// The whole application. Serve it with `ConnectInfo<SocketAddr>` (see
/// `serve`): wrong operator tokens are limited per client address.
pub fn app(state: AppState) -> Router {
    let sessions = web::session_store::layer(&state.db, state.config.secure_cookies);
    let router = Router::new()
        .route("/healthz", get(crate::health::healthz))
        .merge(web::routes(&state))
        .layer(sessions);
    web::headers::secure(router).with_state(state)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = AppState::start(config).await?;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("listening on {bind}"))?;
    tracing::info!("serving at http://{bind}");
    let executor = state.executor.clone();
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
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
