//! The browser's way to run a small tree: a `.tar` or `.tar.gz` uploaded on
//! `/runs/new` (`POST /runs/upload`, a multipart form with its CSRF token),
//! stored as a client's tree would be (contents by hash, then the tree in
//! one transaction), then run: every test file the catalog finds in it.

use axum::{
    body::Body,
    extract::State,
    http::{header, HeaderMap},
    response::{IntoResponse, Redirect, Response},
};
use maud::{html, Markup};
use tower_sessions::Session;

use super::{request::RunRequest, upload_body};
use crate::{
    error::AppError,
    state::AppState,
    store::Username,
    trees::{self, archive, batch},
    web::{csrf::CsrfCookie, html_error::PageResult, multipart, session},
};

/// The form's token arrives within this many bytes of the body, or never.
const TOKEN_WITHIN: usize = 8 * 1024;

/// The upload form, below the new-run form.
pub fn form(csrf: &str, username: &str) -> Markup {
    html! {
        details.upload {
            summary { "Or run a folder of your own: upload a .tar or .tar.gz" }
            form method="post" action="/runs/upload" enctype="multipart/form-data" {
                input type="hidden" name="_csrf" value=(csrf);
                label { "Username" input type="text" name="username" value=(username) required maxlength="64"; }
                label { "Environment (1–100)" input type="number" name="environment_id" min="1" max="100" required; }
                label { "Archive (symlinks and special files are left out)" input type="file" name="archive" accept=".tar,.tar.gz,.tgz" required; }
                button type="submit" { "Upload and run" }
            }
        }
    }
}

pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    cookie: CsrfCookie,
    headers: HeaderMap,
    body: Body,
) -> PageResult<Response> {
    let caps = state.config.project_caps();
    let limit = usize::try_from(caps.bytes).unwrap_or(usize::MAX / 2) + 1024 * 1024;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let boundary = multipart::boundary(content_type)?;
    let too_large = format!("the upload is over {} MiB (PROJECT_CAP_BYTES)", limit >> 20);
    let mut body = upload_body::Staged::new(&state, body, limit, too_large);
    let token = form_token(&mut body, &boundary).await?;
    session::verify_csrf(&session, &cookie, &token).await?;
    let _turn = super::tree_api::body_turn(&state).await?;
    body.rest().await?;
    let parts = multipart::parse(&body.bytes, &boundary)?;
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name)
            .map(|p| String::from_utf8_lossy(p.content).into_owned())
            .unwrap_or_default()
    };
    let username = Username::parse(&text("username"))?;
    let environment_id: i64 = text("environment_id")
        .trim()
        .parse()
        .map_err(|_| AppError::Invalid("choose an environment (1–100)".into()))?;
    let file = parts
        .iter()
        .find(|p| p.name == "archive")
        .ok_or_else(|| AppError::Invalid("choose a .tar or .tar.gz to upload".into()))?;
    let filename = file.filename.clone().unwrap_or_default();
    let content = file.content.to_vec();
    let unpacked = tokio::task::spawn_blocking(move || archive::unpack(&content, &filename, caps))
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("reading an upload: {e}")))??;
    let tree_id = store(&state, &username, unpacked).await?;
    let request = RunRequest {
        username: username.as_str().to_owned(),
        environment_id,
        files: Vec::new(),
        queue_if_busy: true,
        node_ids: None,
        shards: None,
        tree_id: Some(tree_id),
    };
    let run = super::request::submit(&state, &request).await?;
    session::remember_username(&session, username.as_str()).await?;
    Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response())
}

/// The form's token, its first field (the form puts it first): read
/// before the archive, so a forged post is refused at once, never after
/// its whole body was taken in.
async fn form_token(body: &mut upload_body::Staged, boundary: &str) -> Result<String, AppError> {
    let refused = || {
        AppError::Forbidden(
            "this form's token must come first, before the archive; reload the page and try again"
                .into(),
        )
    };
    loop {
        if let Some(part) = multipart::first_part(&body.bytes, boundary)? {
            if part.name != "_csrf" {
                return Err(refused());
            }
            return Ok(String::from_utf8_lossy(part.content).into_owned());
        }
        if body.bytes.len() > TOKEN_WITHIN || !body.more().await? {
            return Err(refused());
        }
    }
}

/// Stores the contents, then the tree; its id.
async fn store(
    state: &AppState,
    username: &Username,
    unpacked: archive::Unpacked,
) -> Result<String, AppError> {
    let archive::Unpacked {
        manifest,
        contents,
        left_out,
    } = unpacked;
    if left_out > 0 {
        tracing::info!(
            left_out,
            "an upload's symlinks and special files were left out"
        );
    }
    // in the archive's order, as `contents` are; `check` sorts
    let hashes: Vec<String> = manifest.files.iter().map(|f| f.sha256.clone()).collect();
    let manifest = manifest.check(state.config.project_caps())?;
    let quota = state.config.tree_quota();
    let (mut chunk, mut bytes) = (Vec::new(), 0);
    for (sha256, content) in hashes.iter().zip(&contents) {
        if chunk.len() == batch::MAX_BLOBS || bytes + content.len() > batch::MAX_BYTES {
            trees::store::put_blobs(&state.db, &chunk, username.as_str(), quota).await?;
            (chunk, bytes) = (Vec::new(), 0);
        }
        bytes += content.len();
        chunk.push(batch::Blob { sha256, content });
    }
    trees::store::put_blobs(&state.db, &chunk, username.as_str(), quota).await?;
    let id = manifest.id();
    trees::store::create(&state.db, &id, &manifest, username.as_str()).await?;
    Ok(id)
}
