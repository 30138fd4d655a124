//! `GET /healthz`: 200 when the database, the Docker engine and the runner
//! image are all reachable; otherwise 503 naming what is missing, and when
//! that was checked (`checked_at`: at most once a second, `readiness`).

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

use crate::{readiness::Checks, state::AppState};

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let Checks {
        database,
        engine,
        image,
        at,
    } = state
        .health
        .current(&state.db, &state.engine, &state.config.runner_image)
        .await;
    let mut missing = Vec::new();
    if !database {
        missing.push("database".to_string());
    }
    if !engine {
        missing.push("docker engine".to_string());
    } else if !image {
        missing.push(format!("runner image {}", state.config.runner_image));
    }
    // A pool that cannot start containers is not an outage: runs take the
    // plain path. It is reported here so that someone notices.
    let pool = state.executor.as_ref().map(|e| e.pool_status());
    let status = if missing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if missing.is_empty() { "ok" } else { "unavailable" },
        "database": database,
        "docker": engine,
        "runner_image": image,
        "missing": missing,
        "warm_pool": pool,
        "checked_at": at.format(&Rfc3339).unwrap_or_default(),
    });
    (status, Json(body))
}

/// `GET /healthz`, outside the traced and session-bound routes.
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/healthz", axum::routing::get(healthz))
}
