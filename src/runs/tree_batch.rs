//! `PUT /api/v1/blobs`: many of a tree's contents in one request (the
//! format is in `trees/batch.rs`), each checked against its sha256 and all
//! stored in one transaction, or none. A client sends its small files so
//! and its large ones alone (`PUT /api/v1/blobs/{sha256}`).

use axum::{body::Body, extract::State, http::StatusCode};
use serde::Serialize;

use super::tree_api::{body_turn, Uploader};
use crate::{
    error::{AppError, AppResult, ErrorBody},
    state::AppState,
    store::Username,
    trees::{self, batch},
    web::extract::{Json, Query},
};

#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchStored {
    /// Distinct contents in the batch.
    pub blobs: usize,
    pub bytes: u64,
    /// How many of them the server did not have.
    pub stored: usize,
}

/// Uploads a batch of contents (`application/octet-stream`): records of
/// `<sha256> <size>\n` and that many bytes. At most 8 MiB and 2,000
/// contents; a wrong hash or a malformed record refuses the whole batch.
#[utoipa::path(put, path = "/api/v1/blobs", tag = "trees",
    params(Uploader),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "every content stored (or already there)", body = BatchStored),
        (status = 413, description = "over the batch caps (8 MiB, 2,000 contents), a content over PROJECT_CAP_BYTES, or the username's TREE_QUOTA_BYTES (named)", body = ErrorBody),
        (status = 422, description = "a record malformed or its sha256 wrong (named); nothing is stored", body = ErrorBody),
        (status = 429, description = "busy with other trees' files for 30 s: try again", body = ErrorBody),
    ))]
pub async fn put_blobs(
    State(state): State<AppState>,
    Query(uploader): Query<Uploader>,
    body: Body,
) -> AppResult<(StatusCode, Json<BatchStored>)> {
    let username = Username::parse(&uploader.username)?;
    let _turn = body_turn(&state).await?;
    let too_large = format!(
        "a batch is at most {} MiB (the batch byte cap): send fewer contents per batch, \
         or a large file alone to PUT /api/v1/blobs/{{sha256}}",
        batch::MAX_BYTES >> 20
    );
    let bytes = super::upload_body::read(&state, body, batch::MAX_BYTES, too_large).await?;
    let checked = tokio::task::spawn_blocking(move || {
        let blobs = batch::parse(&bytes)?;
        let owned: Vec<(String, Vec<u8>)> = blobs
            .iter()
            .map(|b| (b.sha256.to_owned(), b.content.to_vec()))
            .collect();
        Ok::<_, batch::Refused>(owned)
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("reading a batch of contents: {e}")))?;
    let owned = checked.map_err(|refused| match refused {
        batch::Refused::TooMany => AppError::TooLarge(refused.to_string()),
        batch::Refused::Malformed { .. } => AppError::Invalid(refused.to_string()),
    })?;
    let cap = state.config.project_cap_bytes;
    if let Some((sha256, content)) = owned.iter().find(|(_, c)| c.len() as u64 > cap) {
        return Err(AppError::TooLarge(format!(
            "content {sha256} has {} bytes, over PROJECT_CAP_BYTES ({cap}): nothing was stored",
            content.len()
        )));
    }
    let blobs: Vec<batch::Blob<'_>> = owned
        .iter()
        .map(|(sha256, content)| batch::Blob { sha256, content })
        .collect();
    let quota = state.config.tree_quota();
    let stored = trees::store::put_blobs(&state.db, &blobs, username.as_str(), quota).await?;
    Ok((
        StatusCode::CREATED,
        Json(BatchStored {
            blobs: blobs.len(),
            bytes: blobs.iter().map(|b| b.content.len() as u64).sum(),
            stored,
        }),
    ))
}
