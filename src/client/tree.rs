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
use crate::{
    catalog::{safe_fs, walk},
    trees::batch,
};

/// Largest file read (the server's PROJECT_CAP_BYTES refuses larger trees anyway).
const MAX_FILE_BYTES: u64 = 1 << 30;
/// Uploads in flight at once.
const UPLOADS_AT_ONCE: usize = 8;
/// Files up to this size go up in batches (`PUT /api/v1/blobs`), larger
/// ones alone.
const BATCHED_FILE_BYTES: u64 = 1 << 20;
/// Room for a batch record's header (`<sha256> <size>\n`).
const BATCH_HEADER_BYTES: u64 = 86;

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
    let paths: std::collections::HashMap<&str, (&str, u64)> = entries
        .iter()
        .filter_map(|f| {
            let at = (f["path"].as_str()?, f["size"].as_u64()?);
            Some((f["sha256"].as_str()?, at))
        })
        .collect();
    let wanted: Vec<(String, String, u64)> = missing
        .missing
        .iter()
        .filter_map(|sha| {
            paths
                .get(sha.as_str())
                .map(|(path, size)| (sha.clone(), path.to_string(), *size))
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

/// Uploads each `(sha256, path, size)`: small files in batches (one
/// request, one transaction each), large ones alone, a few requests at
/// once; returns the bytes sent.
async fn upload(
    api: &Api,
    dir: &Path,
    user: &str,
    wanted: &[(String, String, u64)],
) -> Result<u64, String> {
    let (small, large): (Vec<_>, Vec<_>) = wanted
        .iter()
        .partition(|(_, _, size)| *size <= BATCHED_FILE_BYTES);
    let mut requests: Vec<Vec<&(String, String, u64)>> = batches(&small);
    requests.extend(large.into_iter().map(|one| vec![one]));
    let sizes: Vec<u64> = stream::iter(requests)
        .map(|files| async move {
            let root = dir.to_owned();
            let owned: Vec<(String, String)> = files
                .iter()
                .map(|(sha, path, _)| (sha.clone(), path.clone()))
                .collect();
            let read = tokio::task::spawn_blocking(move || read_checked(&root, &owned))
                .await
                .map_err(|e| e.to_string())??;
            let size: u64 = read.iter().map(|(_, bytes)| bytes.len() as u64).sum();
            let query = [("username", user.to_owned())];
            let _: Value = match read.len() {
                1 => {
                    let (sha, bytes) = read.into_iter().next().expect("one file");
                    let path = format!("/api/v1/blobs/{sha}");
                    api.put_bytes(&path, &query, bytes).await
                }
                _ => {
                    api.put_bytes("/api/v1/blobs", &query, batch_body(read))
                        .await
                }
            }
            .map_err(|e: ApiError| format!("uploading {}: {e}", files[0].1))?;
            Ok::<u64, String>(size)
        })
        .buffer_unordered(UPLOADS_AT_ONCE)
        .try_collect()
        .await?;
    Ok(sizes.iter().sum())
}

/// Groups small files into batches within the server's caps.
fn batches<'a>(small: &[&'a (String, String, u64)]) -> Vec<Vec<&'a (String, String, u64)>> {
    let mut out: Vec<Vec<&(String, String, u64)>> = Vec::new();
    let mut bytes = 0;
    for file in small {
        let record = file.2 + BATCH_HEADER_BYTES;
        let full = out.last().is_none_or(|last| {
            last.len() == batch::MAX_BLOBS || bytes + record > batch::MAX_BYTES as u64
        });
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        out.last_mut().expect("a batch").push(file);
        bytes += record;
    }
    out
}

/// Each `(sha256, path)`'s content, checked against its hash.
fn read_checked(root: &Path, files: &[(String, String)]) -> Result<Vec<(String, Vec<u8>)>, String> {
    files
        .iter()
        .map(|(sha, path)| {
            let bytes = safe_fs::read_beneath(root, path, MAX_FILE_BYTES)
                .map_err(|e| format!("reading {path}: {e}"))?;
            if hex(&Sha256::digest(&bytes)) != *sha {
                return Err(format!(
                    "{path} changed while the tree was sent: submit again"
                ));
            }
            Ok((sha.clone(), bytes))
        })
        .collect()
}

/// A batch body: `<sha256> <size>\n` and the content, for each.
fn batch_body(files: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    let mut body = Vec::new();
    for (sha, bytes) in files {
        body.extend_from_slice(format!("{sha} {}\n", bytes.len()).as_bytes());
        body.extend_from_slice(&bytes);
    }
    body
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

    #[test]
    fn small_files_are_batched_within_the_servers_caps() {
        let file = |i: usize, size: u64| (format!("{i:064x}"), format!("f{i}"), size);
        let many: Vec<_> = (0..batch::MAX_BLOBS + 1).map(|i| file(i, 10)).collect();
        let refs: Vec<_> = many.iter().collect();
        let sizes: Vec<usize> = batches(&refs).iter().map(Vec::len).collect();
        assert_eq!(sizes, [batch::MAX_BLOBS, 1]);
        let big: Vec<_> = (0..20).map(|i| file(i, 1 << 20)).collect();
        let refs: Vec<_> = big.iter().collect();
        let split = batches(&refs);
        assert_eq!(split.len(), 3, "7 MiB-odd, 7, 6: none over 8 MiB");
        for one in &split {
            let bytes: u64 = one.iter().map(|f| f.2 + BATCH_HEADER_BYTES).sum();
            assert!(bytes <= batch::MAX_BYTES as u64, "{bytes}");
        }
        assert!(batches(&[]).is_empty());
    }
}
