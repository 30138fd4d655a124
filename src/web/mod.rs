//! The web layer: routes for the pages, their htmx fragments and the JSON API.

pub mod components;
pub mod extract;
pub mod headers;
pub mod html_error;
pub mod json_only;
pub mod page;
pub mod session;
pub mod session_store;

use axum::{
    extract::State,
    middleware,
    routing::{get, post},
    Router,
};
use serde::Serialize;
use tower_http::{services::ServeDir, trace::TraceLayer};

use crate::{environments, error::AppResult, operators, projects, results, runs, server::AppState};
use extract::Json;

pub fn routes(state: &AppState) -> Router<AppState> {
    let api = Router::new()
        .route("/test-files", get(test_files))
        .route("/projects", get(projects::api::list))
        .route("/environments", get(environments::api::list))
        .route("/environments/usage", get(environments::api::usage))
        .route(
            "/environments/{id}",
            post(environments::api::create)
                .patch(environments::api::update)
                .delete(environments::api::delete),
        )
        .route("/runs", get(runs::api::list).post(runs::api::create))
        .route("/runs/{id}", get(runs::api::get))
        .route("/runs/{id}/logs", get(runs::api::logs))
        .route("/runs/{id}/cancel", post(runs::api::cancel))
        .route("/runs/{id}/tests", get(results::api::of_run))
        .route("/tests/history", get(results::api::history))
        // The outer layer runs first: a form post is refused before its
        // token is even looked at.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            operators::limit_bearer_guesses,
        ))
        .layer(middleware::from_fn(json_only::require_json));
    let pages = Router::new()
        .route("/", get(runs::views::index))
        .route("/fragments/runs/newer", get(runs::views::newer_fragment))
        .route("/fragments/runs/{id}/row", get(runs::views::row_fragment))
        .route("/runs", post(runs::form::submit))
        .route("/runs/new", get(runs::form::new_form))
        .route("/runs/{id}", get(runs::detail::show))
        .route("/runs/{id}/cancel", post(runs::detail::cancel))
        .route(
            "/runs/{id}/fragments/status",
            get(runs::detail::status_fragment),
        )
        .route(
            "/runs/{id}/fragments/logs",
            get(runs::detail::logs_fragment),
        )
        .route("/runs/{id}/fragments/tests", get(results::views::fragment))
        .route("/runs/{id}/junit.xml", get(results::api::junit))
        .route("/tests", get(results::views::history_page))
        .route("/projects", get(projects::views::index))
        .route(
            "/environments",
            get(environments::views::index).post(environments::views::create),
        )
        .route(
            "/environments/fragments/usage",
            get(environments::views::usage_fragment),
        )
        .route("/environments/{id}", post(environments::views::update))
        .route(
            "/environments/{id}/delete",
            post(environments::views::delete),
        )
        .route("/operator", get(operators::sign_in_page))
        .route("/operator/sign-in", post(operators::sign_in))
        .route("/operator/sign-out", post(operators::sign_out))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            operators::bind_sessions,
        ));
    Router::new()
        .nest("/api/v1", api)
        .merge(pages)
        .nest_service("/assets", ServeDir::new(&state.config.assets_dir))
        .layer(TraceLayer::new_for_http())
}

#[derive(Serialize)]
struct TestFileJson {
    path: String,
    /// The project it belongs to; `null` outside any.
    project: Option<String>,
}

async fn test_files(State(state): State<AppState>) -> AppResult<Json<Vec<TestFileJson>>> {
    let mut files: Vec<TestFileJson> = state
        .catalog
        .groups()?
        .into_iter()
        .flat_map(|group| {
            let project = group.project.map(|p| p.name);
            group.files.into_iter().map(move |f| TestFileJson {
                path: f.as_str().to_owned(),
                project: project.clone(),
            })
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Json(files))
}
