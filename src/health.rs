//! `GET /healthz`: 200 when the database, the Docker engine and the runner
//! image are all reachable; otherwise 503 naming what is missing. The
//! checks are made at most once a second, however often it is asked (a
//! load balancer, a script in a loop, someone hostile): each asks the engine
//! and Postgres, which the runs need. Requests meanwhile get the last answer.

use std::time::Duration;

use axum::{extract::State, http::StatusCode, Json};
use serde_json::{json, Value};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};
use tokio::{sync::Mutex, time::Instant};

use crate::state::AppState;

/// How long one round of checks answers for.
const FRESH: Duration = Duration::from_secs(1);

#[derive(Clone, Copy)]
struct Checks {
    database: bool,
    engine: bool,
    image: bool,
    /// When they were made (the answer's `checked_at`).
    at: OffsetDateTime,
}

/// The last round of checks, and when it was made.
#[derive(Default)]
pub struct HealthChecks {
    last: Mutex<Option<(Instant, Checks)>>,
}

impl HealthChecks {
    /// The checks, made now unless a round less than `FRESH` old answers;
    /// requests that come during a round wait for it.
    async fn current(&self, state: &AppState) -> Checks {
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = *last {
            if at.elapsed() < FRESH {
                return checks;
            }
        }
        let database = sqlx::query("select 1").execute(&state.db).await.is_ok();
        // One engine call tells both: reachable, and the image there.
        let (engine, image) = match state.engine.image_id(&state.config.runner_image).await {
            Ok(found) => (true, found.is_some()),
            Err(_) => (false, false),
        };
        let checks = Checks {
            database,
            engine,
            image,
            at: OffsetDateTime::now_utc(),
        };
        *last = Some((Instant::now(), checks));
        checks
    }
}

pub async fn healthz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let Checks {
        database,
        engine,
        image,
        at,
    } = state.health.current(&state).await;
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
