//! The top of the module graph: merges each domain's routes and adds the
//! layers. Nothing below imports this module.

use axum::{http::StatusCode, middleware, routing::get, Router};
use tower_http::{services::ServeDir, trace::TraceLayer};

use crate::{
    checks, environments, health, measures, openapi, operators, projects, results, runs, scrape,
    state::AppState,
    web::{csrf, headers, json_only, session_store},
    workers,
};

/// The whole application. Serve it with `ConnectInfo<SocketAddr>` (see
/// `serve`): wrong operator tokens are limited per client address.
pub fn app(state: AppState) -> Router {
    let sessions = session_store::layer(&state.db, state.config.secure_cookies);
    let router = Router::new()
        .merge(health::routes())
        .merge(scrape::routes())
        .merge(traced(&state))
        .layer(sessions);
    headers::secure(router).with_state(state)
}

/// The JSON API under `/api/v1`, the pages and the assets, traced.
fn traced(state: &AppState) -> Router<AppState> {
    let (api, document) = openapi::api()
        // The outer layer runs first: a form post is refused before its
        // token is even looked at.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            operators::limit_bearer_guesses,
        ))
        .layer(middleware::from_fn(json_only::require_json))
        .split_for_parts();
    let pages = Router::new()
        .merge(runs::page_routes())
        .merge(results::page_routes())
        .merge(checks::page_routes())
        .merge(projects::page_routes())
        .merge(environments::page_routes())
        .merge(operators::page_routes())
        .merge(workers::page_routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            operators::bind_sessions,
        ))
        // The forms' CSRF token lives in a cookie, not in a stored session.
        .layer(middleware::from_fn_with_state(
            csrf::CookieSettings {
                secure: state.config.secure_cookies,
            },
            csrf::issue,
        ));
    Router::new()
        .merge(api)
        .merge(openapi::routes(document))
        .merge(pages)
        .nest_service("/assets", ServeDir::new(&state.config.assets_dir))
        // The pages name their icon (/assets/favicon.svg); what asks for
        // the old default anyway gets "nothing here", not a 404.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        // After routing: counts by route pattern, never by raw URI.
        .route_layer(middleware::from_fn(measures::count_requests))
        .layer(TraceLayer::new_for_http())
}
