//! `/api/v1/trees` and `/api/v1/blobs`: how a client sends a tree
//! (`submit --tree DIR`). It asks which contents of its manifest are
//! missing, uploads only those (`PUT /blobs/{sha256}`, the body checked
//! against its hash), then creates the tree from the manifest; a run then
//! names the tree (`RunRequest::tree_id`). Bodies are read within caps and
//! parsed here, so an oversized or malformed one gets a clear 4xx.

use axum::{
    body::{Body, Bytes},
    extract::State,
    http::{header, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{
    error::{AppError, AppResult, ErrorBody},
    state::AppState,
    store::Username,
    trees::{
        self,
        manifest::{self, Entry, Manifest},
        Tree,
    },
    web::extract::{Json, Path, Query},
};

/// A manifest, and who sends it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct TreeRequest {
    pub username: String,
    /// The tree's name (its folder's name).
    pub name: String,
    pub files: Vec<Entry>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Missing {
    /// The id the tree will have.
    pub tree_id: String,
    /// Whether that tree is stored already (nothing to send).
    pub exists: bool,
    /// The contents (sha256) to upload before creating the tree.
    pub missing: Vec<String>,
    pub missing_bytes: u64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Stored {
    pub sha256: String,
    pub size: u64,
    /// `false`: the server had it already.
    pub stored: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Created {
    pub tree: Tree,
    /// `false`: the same tree was stored already (nothing was received for it now).
    pub created: bool,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Uploader {
    /// Whose quota the content counts against.
    pub username: String,
}

impl TreeRequest {
    fn check(self, state: &AppState) -> AppResult<(Username, Manifest)> {
        let username = Username::parse(&self.username)?;
        let manifest = Manifest {
            name: self.name,
            files: self.files,
        }
        .check(state.config.project_caps())?;
        Ok((username, manifest))
    }
}

/// The largest manifest body read: room for every file the cap allows.
fn manifest_limit(state: &AppState) -> usize {
    state.config.project_cap_files.saturating_mul(1400) + 65_536
}

/// A turn to hold a tree body in memory: waits up to 30 s for one of
/// `TREE_BODIES_AT_ONCE`, then 429.
pub async fn body_turn(state: &AppState) -> AppResult<tokio::sync::OwnedSemaphorePermit> {
    let turn = state.tree_bodies.clone().acquire_owned();
    match tokio::time::timeout(std::time::Duration::from_secs(30), turn).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => Err(AppError::TooManyRequests(
            "the server is busy with other trees' files: try again in a moment".into(),
        )),
    }
}

/// Reads a body of at most `limit` bytes (413 naming `what` beyond it),
/// within the upload deadline.
async fn read_body(state: &AppState, body: Body, limit: usize, what: &str) -> AppResult<Bytes> {
    let too_large = format!("{what} is over {limit} bytes (or was cut off while it was read)");
    super::upload_body::read(state, body, limit, too_large).await
}

async fn read_json<T: DeserializeOwned>(state: &AppState, body: Body) -> AppResult<T> {
    let bytes = read_body(state, body, manifest_limit(state), "the manifest").await?;
    serde_json::from_slice(&bytes).map_err(|e| {
        AppError::Invalid(format!(
            "the request body is not valid JSON for this call: {e}"
        ))
    })
}

/// Which contents of a manifest the server lacks. The manifest is checked
/// in full here (paths, modes, caps), before anything is uploaded; the tree
/// or the contents already stored are touched (retention starts again).
#[utoipa::path(post, path = "/api/v1/trees/missing", tag = "trees",
    request_body = TreeRequest,
    responses(
        (status = 200, description = "the tree's id and the contents to upload", body = Missing),
        (status = 413, description = "over PROJECT_CAP_FILES or PROJECT_CAP_BYTES (named)", body = ErrorBody),
        (status = 422, description = "a path, mode or hash refused (named)", body = ErrorBody),
    ))]
pub async fn missing(State(state): State<AppState>, body: Body) -> AppResult<Json<Missing>> {
    let request: TreeRequest = read_json(&state, body).await?;
    let (_, manifest) = request.check(&state)?;
    let tree_id = manifest.id();
    // touched, as its stored contents are below: nothing this answer
    // counts on is deleted before the client creates or runs the tree
    if trees::store::touch_if_stored(&state.db, &tree_id)
        .await?
        .is_some()
    {
        return Ok(Json(Missing {
            tree_id,
            exists: true,
            missing: Vec::new(),
            missing_bytes: 0,
        }));
    }
    let missing = trees::store::missing(&state.db, &manifest.blobs()).await?;
    let sizes: std::collections::HashMap<&str, u64> = manifest
        .files
        .iter()
        .map(|f| (f.sha256.as_str(), f.size))
        .collect();
    let missing_bytes = missing.iter().filter_map(|m| sizes.get(m.as_str())).sum();
    Ok(Json(Missing {
        tree_id,
        exists: false,
        missing,
        missing_bytes,
    }))
}

/// Uploads one content (`application/octet-stream`), stored under its
/// sha256 once the body is checked against it.
#[utoipa::path(put, path = "/api/v1/blobs/{sha256}", tag = "trees",
    params(("sha256" = String, Path, description = "the content's sha256, lowercase hex"), Uploader),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses(
        (status = 201, description = "stored (or already there)", body = Stored),
        (status = 413, description = "over PROJECT_CAP_BYTES, or the username's TREE_QUOTA_BYTES", body = ErrorBody),
        (status = 422, description = "the body's sha256 is not the one named", body = ErrorBody),
        (status = 429, description = "busy with other trees' files for 30 s: try again", body = ErrorBody),
    ))]
pub async fn put_blob(
    State(state): State<AppState>,
    Path(sha256): Path<String>,
    Query(uploader): Query<Uploader>,
    body: Body,
) -> AppResult<(StatusCode, Json<Stored>)> {
    let username = Username::parse(&uploader.username)?;
    if !manifest::is_sha256(&sha256) {
        return Err(AppError::Invalid(
            "a content is named by its sha256: 64 lowercase hex digits".into(),
        ));
    }
    let limit = usize::try_from(state.config.project_cap_bytes).unwrap_or(usize::MAX);
    let _turn = body_turn(&state).await?;
    let bytes = read_body(&state, body, limit, "the file (PROJECT_CAP_BYTES)").await?;
    let actual = manifest::hex(&Sha256::digest(&bytes));
    if actual != sha256 {
        return Err(AppError::Invalid(format!(
            "the body's sha256 is {actual}, not {sha256}: nothing was stored"
        )));
    }
    let quota = state.config.tree_quota();
    let stored =
        trees::store::put_blob(&state.db, &sha256, &bytes, username.as_str(), quota).await?;
    let size = bytes.len() as u64;
    Ok((
        StatusCode::CREATED,
        Json(Stored {
            sha256,
            size,
            stored,
        }),
    ))
}

/// Stores the tree once every content it names is uploaded; the same tree
/// again is answered with the one stored (200).
#[utoipa::path(post, path = "/api/v1/trees", tag = "trees",
    request_body = TreeRequest,
    responses(
        (status = 201, description = "the tree, stored: `received_bytes` is what it cost", body = Created),
        (status = 200, description = "the same tree was stored already", body = Created),
        (status = 413, description = "over PROJECT_CAP_FILES or PROJECT_CAP_BYTES (named)", body = ErrorBody),
        (status = 422, description = "a refused path, mode or hash, or contents not uploaded; nothing is written", body = ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    body: Body,
) -> AppResult<(StatusCode, Json<Created>)> {
    let request: TreeRequest = read_json(&state, body).await?;
    let (username, manifest) = request.check(&state)?;
    let id = manifest.id();
    let (tree, created) =
        trees::store::create(&state.db, &id, &manifest, username.as_str()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Created { tree, created })))
}

/// Ids are 64 hex digits; anything else is no tree.
pub async fn find(state: &AppState, id: &str) -> AppResult<Tree> {
    let found = match manifest::is_sha256(id) {
        true => trees::store::get(&state.db, id).await?,
        false => None,
    };
    found.ok_or_else(|| {
        AppError::NotFound(format!(
            "no tree {:?}: send it again (trees unused for RETENTION_DAYS are deleted)",
            id.chars().take(64).collect::<String>()
        ))
    })
}

/// A stored tree: who sent it, its size, what it cost.
#[utoipa::path(get, path = "/api/v1/trees/{id}", tag = "trees",
    params(("id" = String, Path, description = "the tree's id")),
    responses(
        (status = 200, description = "the tree", body = Tree),
        (status = 404, description = "no such tree", body = ErrorBody),
    ))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Json<Tree>> {
    Ok(Json(find(&state, &id).await?))
}

/// The tree's files as a tar (an inert download).
#[utoipa::path(get, path = "/api/v1/trees/{id}/tar", tag = "trees",
    params(("id" = String, Path, description = "the tree's id")),
    responses(
        (status = 200, description = "the tree's files, under a folder named after it", body = Vec<u8>, content_type = "application/x-tar"),
        (status = 404, description = "no such tree", body = ErrorBody),
    ))]
pub async fn tar(State(state): State<AppState>, Path(id): Path<String>) -> AppResult<Response> {
    let tree = find(&state, &id).await?;
    let _turn = body_turn(&state).await?;
    let files = trees::store::files(&state.db, &tree.id).await?;
    let mut archive = tar::Builder::new(Vec::new());
    for (path, mode, content) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(*mode as u32 & 0o777);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let path = format!("{}/{path}", tree.name);
        archive
            .append_data(&mut header, &path, content.as_slice())
            .map_err(|e| AppError::Internal(anyhow::anyhow!("packing {path}: {e}")))?;
    }
    let bytes = archive
        .into_inner()
        .map_err(|e| AppError::Internal(anyhow::anyhow!("packing a tree: {e}")))?;
    let name = format!("{}-{}.tar", tree.name, &tree.id[..12]);
    Ok((
        [(header::CONTENT_TYPE, "application/x-tar")],
        crate::web::headers::attachment(&name),
        bytes,
    )
        .into_response())
}
