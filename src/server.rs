//! Serving the application with graceful shutdown.

use std::net::SocketAddr;

use anyhow::Context;
use axum::serve::ListenerExt;

use crate::{
    config::Config,
    routes::app,
    state::{AppState, Role},
};

pub async fn serve_as(role: Role, config: Config) -> anyhow::Result<()> {
    let bind = config.bind;
    let state = AppState::start_as(role, config).await?;
    // TCP_NODELAY: a response goes out in two writes (head, then body);
    // with Nagle's algorithm the second waits for the client's delayed ACK,
    // 40 ms per request on a kept-alive connection.
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("listening on {bind}"))?
        .tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!("setting TCP_NODELAY on a connection: {err}");
            }
        });
    let executor = state.executor.clone();
    let finals = state.finals.clone();
    let router = match role {
        Role::Worker => {
            tracing::info!("worker: health at http://{bind}/healthz");
            crate::health::routes().with_state(state)
        }
        _ => {
            tracing::info!("serving at http://{bind}");
            app(state)
        }
    };
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        // Held `?wait=` requests answer now rather than hold the shutdown.
        finals.close();
    })
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
