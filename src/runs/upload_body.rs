//! Reading an upload's body (a content, a batch, a manifest, the browser's
//! archive): within a size cap and within one deadline for the whole body
//! (`UPLOAD_BODY_TIMEOUT_SECS`), so a client that trickles its bytes holds
//! neither a connection nor a body turn for longer. tower-http's
//! `RequestBodyTimeoutLayer` was not taken: its timeout is between frames,
//! restarted by each one, so a byte a second never trips it.

use std::time::Duration;

use axum::body::{Body, Bytes};

use crate::{
    error::{AppError, AppResult},
    state::AppState,
};

/// The body, at most `limit` bytes (else 413 with `too_large`), all of it
/// within the deadline (else 408 naming it).
pub async fn read(
    state: &AppState,
    body: Body,
    limit: usize,
    too_large: String,
) -> AppResult<Bytes> {
    let secs = state.config.upload_body_timeout_secs;
    match tokio::time::timeout(Duration::from_secs(secs), axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(_)) => Err(AppError::TooLarge(too_large)),
        Err(_) => Err(AppError::TimedOut(format!(
            "the request body did not arrive within {secs} s (UPLOAD_BODY_TIMEOUT_SECS): \
             nothing was stored"
        ))),
    }
}

