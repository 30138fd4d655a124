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

/// A body read in stages (the browser's upload: its form token first,
/// checked before the archive is read), under the same cap and deadline.
pub struct Staged {
    stream: axum::body::BodyDataStream,
    deadline: tokio::time::Instant,
    secs: u64,
    limit: usize,
    too_large: String,
    pub bytes: Vec<u8>,
}

impl Staged {
    pub fn new(state: &AppState, body: Body, limit: usize, too_large: String) -> Staged {
        let secs = state.config.upload_body_timeout_secs;
        Staged {
            stream: body.into_data_stream(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(secs),
            secs,
            limit,
            too_large,
            bytes: Vec::new(),
        }
    }

    /// Reads the next chunk into `bytes`; `false` at the body's end.
    pub async fn more(&mut self) -> AppResult<bool> {
        use futures_util::StreamExt;
        let next = tokio::time::timeout_at(self.deadline, self.stream.next()).await;
        match next {
            Err(_) => Err(AppError::TimedOut(format!(
                "the request body did not arrive within {} s (UPLOAD_BODY_TIMEOUT_SECS): \
                 nothing was stored",
                self.secs
            ))),
            Ok(None) => Ok(false),
            Ok(Some(Err(_))) => Err(AppError::Invalid(
                "the request body was cut off while it was read".into(),
            )),
            Ok(Some(Ok(chunk))) if self.bytes.len() + chunk.len() > self.limit => {
                Err(AppError::TooLarge(self.too_large.clone()))
            }
            Ok(Some(Ok(chunk))) => {
                self.bytes.extend_from_slice(&chunk);
                Ok(true)
            }
        }
    }

    /// Reads the rest of the body, within a deadline of its own from now:
    /// the wait for a turn (`tree_api::body_turn`) is not the client's.
    pub async fn rest(&mut self) -> AppResult<()> {
        self.deadline = tokio::time::Instant::now() + Duration::from_secs(self.secs);
        while self.more().await? {}
        Ok(())
    }
}
