//! The web layer: routes for the pages, their htmx fragments and the JSON API.

pub mod extract;

use axum::{
    extract::State,
    routing::{get, post},
    Router,
};
use serde::Serialize;
use tower_http::{services::ServeDir, trace::TraceLayer};

use crate::{environments, error::AppResult, results, runs, server::AppState};
use extract::Json;

pub fn routes(state: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/test-files", get(test_files))
        .route("/environments", get(environments::api::list))
        .route("/runs", get(runs::api::list).post(runs::api::create))
        .route("/runs/{id}", get(runs::api::get))
        .route("/runs/{id}/logs", get(runs::api::logs))
        .route("/runs/{id}/cancel", post(runs::api::cancel))
        .route("/runs/{id}/tests", get(results::api::of_run))
        .route("/tests/history", get(results::api::history));
    Router::new()
        .nest("/api/v1", api)
        .route("/runs/{id}/junit.xml", get(results::api::junit))
        .nest_service("/assets", ServeDir::new(&state.config.assets_dir))
        .layer(TraceLayer::new_for_http())
}

#[derive(Serialize)]
struct TestFileJson {
    path: String,
}

async fn test_files(State(state): State<AppState>) -> AppResult<Json<Vec<TestFileJson>>> {
    let files = state.catalog.files()?;
    Ok(Json(
        files
            .into_iter()
            .map(|f| TestFileJson {
                path: f.as_str().to_owned(),
            })
            .collect(),
    ))
}
