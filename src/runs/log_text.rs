//! `/runs/{id}/log.txt`: the whole log as a plain-text download, streamed
//! from Postgres (constant memory whatever its size).

use axum::{
    body::Body,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{
    error::AppError,
    logs::{self, StreamFilter},
    state::{AppState, LOG_DOWNLOADS_AT_ONCE},
    web::{
        extract::{Path, Query},
        headers::attachment,
        html_error::PageResult,
    },
};

#[derive(Debug, Deserialize)]
pub struct TextQuery {
    pub stream: Option<String>,
}

pub async fn log_text(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(query): Query<TextQuery>,
) -> PageResult<Response> {
    let stream = StreamFilter::parse(query.stream.as_deref())?;
    crate::store::runs::get(&state.db, id).await?;
    let permit = state.log_downloads.clone().try_acquire_owned().map_err(|_| {
        AppError::TooManyRequests(format!(
            "{LOG_DOWNLOADS_AT_ONCE} whole-log downloads are streaming already; try again in a moment \
             (the page and /api/v1/runs/{id}/logs page through the log meanwhile)"
        ))
    })?;
    let filename = match stream.name() {
        Some(name) => format!("run-{id}-{name}.txt"),
        None => format!("run-{id}-log.txt"),
    };
    let body = Body::from_stream(logs::text(state.db.clone(), id, stream, permit));
    Ok((
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned())],
        attachment(&filename),
        body,
    )
        .into_response())
}
