//! `GET /metrics`: Prometheus' text format. Counters and histograms come
//! from the recorder (`measures.rs`); the gauges are read now: the queue
//! and the held environments in one query on the active runs, the warm pool
//! from this process's executor, the containers from one engine call.
//!
//! With `METRICS_TOKEN` set, a scrape must send it as a bearer token;
//! unset, `/metrics` is open like `/healthz` (it names no user or file).

use axum::{
    extract::State,
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
};
use metrics::gauge;

use crate::{
    error::AppError,
    measures,
    operators::{bearer, secret_matches},
    state::AppState,
    store::gauges,
};

/// Docker's container states, each reported (0 included) so a state that
/// empties does not keep its last value.
const CONTAINER_STATES: [&str; 7] = [
    "created",
    "running",
    "paused",
    "restarting",
    "removing",
    "exited",
    "dead",
];

/// A run may hold its environment this long past its time limit (stopping
/// and storing take a while) before `te_environments_over_limit` counts it.
const OVER_LIMIT_GRACE_SECS: i32 = 60;

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = state.config.metrics_token.as_deref() {
        if !bearer(&headers).is_some_and(|given| secret_matches(given, expected)) {
            return (
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
                AppError::Unauthorized(
                    "send the METRICS_TOKEN as `Authorization: Bearer <token>`".into(),
                ),
            )
                .into_response();
        }
    }
    let handle = measures::install();
    if let Err(err) = database_gauges(&state).await {
        tracing::warn!(error = format!("{err:#}"), "reading the metrics' gauges");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the database could not be read; see /healthz\n",
        )
            .into_response();
    }
    if let Some(executor) = &state.executor {
        let pool = executor.pool_status();
        gauge!("te_warm_sandboxes_ready").set(pool.ready as f64);
        gauge!("te_warm_pool_size").set(pool.size as f64);
        match state.engine.list_ours(executor.instance()).await {
            Ok(found) => {
                for wanted in CONTAINER_STATES {
                    let n = found.iter().filter(|c| c.state == wanted).count();
                    gauge!("te_containers", "state" => wanted).set(n as f64);
                }
                gauge!("te_engine_up").set(1.0);
            }
            Err(err) => {
                tracing::debug!(
                    error = format!("{err:#}"),
                    "listing containers for /metrics"
                );
                gauge!("te_engine_up").set(0.0);
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    )
        .into_response()
}

async fn database_gauges(state: &AppState) -> sqlx::Result<()> {
    let queue = gauges::queue(&state.db, OVER_LIMIT_GRACE_SECS).await?;
    gauge!("te_runs_queued").set(queue.queued as f64);
    gauge!("te_runs_running").set(queue.running as f64);
    gauge!("te_environments_held").set(queue.held as f64);
    gauge!("te_queue_oldest_seconds").set(queue.oldest_queued_secs);
    gauge!("te_environments_over_limit").set(queue.over_limit as f64);
    Ok(())
}

/// `GET /metrics`, outside the traced and session-bound routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/metrics", axum::routing::get(metrics))
}
