//! Serving the application with graceful shutdown.

use std::net::SocketAddr;

use anyhow::Context;

use crate::{config::Config, routes::app, state::AppState};

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
