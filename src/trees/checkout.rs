//! A stored tree written out into a folder of this process's own
//! (`<temp>/test-executor-trees-<uid>/<id>/<name>/`, the base made 0700 and
//! checked to be ours), so the catalog, the payload and the dependency
//! build read it as they read the tests folder. Each path was checked when
//! the tree was stored and is checked again here; only regular files and
//! folders are made. A checkout is written beside and renamed into place,
//! so a folder that is there is whole; its content is fixed by its id.
//! Each use marks it (its folder's mtime); checkouts unused for a day are
//! removed, looked for at most once an hour (a run reads its checkout
//! within seconds of asking for it, and one removed is written out again).

use std::{
    fs,
    io::Write,
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt},
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{bail, Context, Result};
use sqlx::PgPool;

use super::{manifest, store, Tree};

/// The folder of this process's checkouts, made private on first use.
fn base() -> Result<PathBuf> {
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let base = std::env::temp_dir().join(format!("test-executor-trees-{uid}"));
    match fs::DirBuilder::new().mode(0o700).create(&base) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("creating {}", base.display())),
    }
    let meta = fs::symlink_metadata(&base)?;
    if !meta.is_dir() || meta.uid() != uid || meta.permissions().mode() & 0o077 != 0 {
        bail!(
            "{} is not a private folder of this user: refusing to check trees out there",
            base.display()
        );
    }
    Ok(base)
}

/// What a tree's project is named after: `tree:` and the tree's name (the
/// checkout folder's name, which the catalog names the project by). A tree
/// runs its own install code, so its dependency images must never be those
/// of a project of the tests folder: the name is part of their key, and
/// images are pruned by name. (A folder of the tests folder named with a
/// `:` is an operator's choice.)
pub const PROJECT_PREFIX: &str = "tree:";

/// The folder holding `tree` as its root (`.../<id>/tree:<name>`), written
/// out from the database if it is not there yet.
pub async fn checkout(db: &PgPool, tree: &Tree) -> Result<PathBuf> {
    let base = base()?;
    let folder = format!("{PROJECT_PREFIX}{}", tree.name);
    let root = base.join(&tree.id).join(&folder);
    prune_now_and_then(&base);
    if fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
        mark_used(&base.join(&tree.id));
        return Ok(root);
    }
    let files = store::files(db, &tree.id).await?;
    let id = tree.id.clone();
    tokio::task::spawn_blocking(move || write_out(&base, &id, &folder, &files))
        .await
        .context("checking a tree out")??;
    Ok(root)
}

fn write_out(base: &Path, id: &str, name: &str, files: &[(String, i32, Vec<u8>)]) -> Result<()> {
    let scratch = base.join(format!(".new-{id}-{:016x}", rand::random::<u64>()));
    let root = scratch.join(name);
    fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    for (path, mode, content) in files {
        if manifest::check_path(path).is_err() {
            bail!("tree {id} holds a path that is not allowed: {path:?}");
        }
        let target = root.join(path);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        let executable = *mode as u32 == manifest::MODE_EXECUTABLE;
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .with_context(|| format!("writing {}", target.display()))?;
        file.write_all(content)?;
    }
    let dest = base.join(id);
    let moved = match fs::rename(&scratch, &dest) {
        Ok(()) => return Ok(()),
        // The tree's folder is there, holding it under another name (an
        // older version's, or another process's): ours goes beside it.
        Err(_) if dest.is_dir() => fs::rename(&root, dest.join(name)),
        Err(e) => Err(e),
    };
    let _ = fs::remove_dir_all(&scratch);
    match moved {
        Ok(()) => Ok(()),
        // another process checked it out first: theirs is the same
        Err(_) if dest.join(name).is_dir() => Ok(()),
        Err(e) => Err(e).context("moving a checked-out tree into place"),
    }
}

/// Checkouts unused for this long are removed.
const UNUSED_FOR: Duration = Duration::from_secs(24 * 3600);
/// Seconds since the epoch of this process's last look for them.
static LAST_PRUNE: AtomicU64 = AtomicU64::new(0);

fn mark_used(dir: &Path) {
    if let Ok(file) = fs::File::open(dir) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn prune_now_and_then(base: &Path) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let last = LAST_PRUNE.load(Ordering::Relaxed);
    if now < last + 3600
        || LAST_PRUNE
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let unused = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNUSED_FOR);
        if unused && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// A catalog over stored tree `id`, checked out, with `caps`: what a run of
/// the tree reads its files and project from (the executor, the checks).
/// An error a person can act on when the tree is no longer stored.
pub async fn catalog(
    db: &PgPool,
    id: &str,
    caps: crate::config::Caps,
) -> std::result::Result<crate::catalog::Catalog, String> {
    let tree = match store::get(db, id).await {
        Ok(Some(tree)) => tree,
        Ok(None) => return Err(format!("tree {id} is no longer stored: send it again")),
        Err(err) => return Err(format!("reading the run's tree: {err:#}")),
    };
    let root = checkout(db, &tree)
        .await
        .map_err(|e| format!("checking tree {} out: {e:#}", tree.short_id()))?;
    Ok(crate::catalog::Catalog::new(root).with_caps(caps))
}
