//! `submit --tree DIR`: the folder packed as the catalog packs a project
//! (its walk: `.gitignore`, version-control folders, virtualenvs, caches and
//! build outputs left out; symlinks, FIFOs and devices never followed nor
//! sent), described by a manifest (path, mode, sha256, size), and sent by
//! content: the server names the contents it lacks and only those go up.

use std::{os::unix::fs::PermissionsExt, path::Path};

use futures_util::{stream, StreamExt, TryStreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::api::{Api, ApiError};
use crate::catalog::{safe_fs, walk};

/// Largest file read (the server's PROJECT_CAP_BYTES refuses larger trees anyway).
const MAX_FILE_BYTES: u64 = 1 << 30;
/// Uploads in flight at once.
const UPLOADS_AT_ONCE: usize = 8;

/// A tree the server now holds, and what sending it cost.
pub struct Sent {
    pub tree_id: String,
    pub files: usize,
    pub bytes: u64,
    /// Bytes of content uploaded now (0 when the server had them all).
    pub uploaded_bytes: u64,
    pub uploaded_files: usize,
    /// What the server counted as new content for this tree.
    pub received_bytes: i64,
}

#[derive(Deserialize)]
struct Missing {
    tree_id: String,
    missing: Vec<String>,
}

#[derive(Deserialize)]
struct Created {
    tree: CreatedTree,
    created: bool,
}

#[derive(Deserialize)]
struct CreatedTree {
    id: String,
    received_bytes: i64,
}

/// The folder's name as a tree name: letters, digits, `._-`.
fn tree_name(dir: &Path) -> String {
    let full = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let raw = full
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let clean: String = raw
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "._-".contains(c) {
            true => c,
            false => '-',
        })
        .take(64)
        .collect();
    let clean = clean.trim_start_matches(['.', '-']).to_owned();
    if clean.is_empty() {
        "tree".to_owned()
    } else {
        clean
    }
}

/// The manifest of `dir`: each file the walk keeps, read without following
/// a symlink, with its mode (executable or not) and sha256.
pub fn manifest(dir: &Path) -> anyhow::Result<Value> {
    let mut files = Vec::new();
    for (path, _) in walk::walk(dir)? {
        let bytes = match safe_fs::read_beneath(dir, &path, MAX_FILE_BYTES) {
            Ok(bytes) => bytes,
            // swapped for a symlink or a FIFO since it was listed: left out
            Err(safe_fs::ReadError::NotRegular(_) | safe_fs::ReadError::Missing(_)) => continue,
            Err(err) => anyhow::bail!("{err}"),
        };
        let executable = std::fs::symlink_metadata(dir.join(&path))
            .is_ok_and(|m| m.permissions().mode() & 0o111 != 0);
        files.push(json!({
            "path": path,
            "mode": if executable { 0o100755 } else { 0o100644 },
            "sha256": hex(&Sha256::digest(&bytes)),
            "size": bytes.len(),
        }));
    }
    Ok(json!({ "name": tree_name(dir), "files": files }))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends the tree of `dir` as `user`: its manifest, then only the contents
/// the server lacks, then the tree itself.
pub async fn send(api: &Api, dir: &Path, user: &str) -> Result<Sent, String> {
    let owned = dir.to_owned();
    let mut body = tokio::task::spawn_blocking(move || manifest(&owned))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("packing {}: {e:#}", dir.display()))?;
    body["username"] = json!(user);
    let missing: Missing = api
        .post("/api/v1/trees/missing", &body, None)
        .await
        .map_err(|e| e.to_string())?;
    let entries = body["files"].as_array().cloned().unwrap_or_default();
    let paths: std::collections::HashMap<&str, &str> = entries
        .iter()
        .filter_map(|f| Some((f["sha256"].as_str()?, f["path"].as_str()?)))
        .collect();
    let wanted: Vec<(String, String)> = missing
        .missing
        .iter()
        .filter_map(|sha| {
            paths
                .get(sha.as_str())
                .map(|path| (sha.clone(), path.to_string()))
        })
        .collect();
    let uploaded_bytes = upload(api, dir, user, &wanted).await?;
    let created: Created = api
        .post("/api/v1/trees", &body, None)
        .await
        .map_err(|e| e.to_string())?;
    debug_assert_eq!(created.tree.id, missing.tree_id);
    Ok(Sent {
        tree_id: created.tree.id,
        files: entries.len(),
        bytes: entries.iter().filter_map(|f| f["size"].as_u64()).sum(),
        uploaded_bytes,
        uploaded_files: wanted.len(),
        received_bytes: if created.created {
            created.tree.received_bytes
        } else {
            0
        },
    })
}

/// Uploads each `(sha256, path)`, a few at once; returns the bytes sent.
async fn upload(
    api: &Api,
    dir: &Path,
    user: &str,
    wanted: &[(String, String)],
) -> Result<u64, String> {
    let sizes: Vec<u64> = stream::iter(wanted)
        .map(|(sha, path)| async move {
            let (root, relative) = (dir.to_owned(), path.clone());
            let bytes = tokio::task::spawn_blocking(move || {
                safe_fs::read_beneath(&root, &relative, MAX_FILE_BYTES)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading {path}: {e}"))?;
            if hex(&Sha256::digest(&bytes)) != *sha {
                return Err(format!(
                    "{path} changed while the tree was sent: submit again"
                ));
            }
            let size = bytes.len() as u64;
            let query = [("username", user.to_owned())];
            let _: Value = api
                .put_bytes(&format!("/api/v1/blobs/{sha}"), &query, bytes)
                .await
                .map_err(|e: ApiError| format!("uploading {path}: {e}"))?;
            Ok(size)
        })
        .buffer_unordered(UPLOADS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(sizes.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_name_becomes_a_tree_name() {
        assert_eq!(tree_name(Path::new("/x/my proj")), "my-proj");
        assert_eq!(tree_name(Path::new("/x/.hidden")), "hidden");
        assert_eq!(tree_name(Path::new("/x/---")), "tree");
    }
}
