//! A project's tree as it goes into a run's container: every regular file
//! under its root except version-control folders, virtualenvs, caches, build
//! outputs and what `.gitignore` excludes, within a size and a file-count cap,
//! with one sha256 over paths and contents.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

use crate::catalog::FileContent;

use crate::config::Caps;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Over a cap: the message says which and what to do.
    #[error("{0}")]
    TooLarge(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// A tree read into memory, ready for the payload.
pub struct LoadedTree {
    pub files: Vec<FileContent>,
    pub bytes: u64,
    pub sha256: String,
}

/// Folders never sent: version control, virtualenvs, caches, build outputs.
fn skipped_dir(name: &str, path: &Path) -> bool {
    matches!(
        name,
        ".git"
            | ".hg"
            | ".svn"
            | "__pycache__"
            | "node_modules"
            | "build"
            | "dist"
            | ".eggs"
            | ".tox"
            | ".nox"
            | ".venv"
            | "venv"
            | ".pytest_cache"
            | ".mypy_cache"
            | ".ruff_cache"
    ) || name.ends_with(".egg-info")
        // any virtualenv, whatever its name
        || path.join("pyvenv.cfg").is_file()
}

/// The regular files of the tree under `dir`, as (path relative to `dir`
/// with `/` separators, size), sorted by path. Symlinks and files whose name
/// is not UTF-8 are left out.
pub fn walk(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut builder = ignore::WalkBuilder::new(dir);
    builder
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        // .gitignore counts in a plain folder too, not only in a checkout
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .filter_entry(|entry| {
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            let name = entry.file_name().to_string_lossy();
            // `.te/` at the top is where the payload's own metadata goes
            !((is_dir && skipped_dir(&name, entry.path())) || (entry.depth() == 1 && name == ".te"))
        });
    let mut files = Vec::new();
    for entry in builder.build() {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(dir) else {
            continue;
        };
        let parts: Option<Vec<&str>> = relative
            .components()
            .map(|c| c.as_os_str().to_str())
            .collect();
        let Some(parts) = parts else { continue };
        let size = entry
            .metadata()
            .with_context(|| format!("reading {}", entry.path().display()))?
            .len();
        files.push((parts.join("/"), size));
    }
    files.sort();
    Ok(files)
}

/// Lists the tree and refuses it when it is over a cap, before reading it.
pub fn check(dir: &Path, name: &str, caps: Caps) -> Result<Vec<(String, u64)>, TreeError> {
    let files = walk(dir)?;
    if files.len() > caps.files {
        return Err(TreeError::TooLarge(format!(
            "project {name} has {} files to send, over the cap of {} (PROJECT_CAP_FILES); \
             list generated or vendored folders in its .gitignore",
            files.len(),
            caps.files
        )));
    }
    let bytes: u64 = files.iter().map(|(_, size)| size).sum();
    if bytes > caps.bytes {
        return Err(TreeError::TooLarge(too_large(name, bytes, caps)));
    }
    Ok(files)
}

fn too_large(name: &str, bytes: u64, caps: Caps) -> String {
    format!(
        "project {name} is {} to send, over the cap of {} (PROJECT_CAP_BYTES); \
         list large data or generated files in its .gitignore",
        mib(bytes),
        mib(caps.bytes)
    )
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// Reads the whole tree (within the caps) and hashes it.
pub fn load(dir: &Path, name: &str, caps: Caps) -> Result<LoadedTree, TreeError> {
    read(dir, name, caps, true)
}

/// The tree's hash and size only (within the caps): what a new run records,
/// without holding the tree in memory.
pub fn hash(dir: &Path, name: &str, caps: Caps) -> Result<LoadedTree, TreeError> {
    read(dir, name, caps, false)
}

fn read(dir: &Path, name: &str, caps: Caps, keep: bool) -> Result<LoadedTree, TreeError> {
    let listed = check(dir, name, caps)?;
    let mut hasher = Sha256::new();
    let mut files = Vec::with_capacity(if keep { listed.len() } else { 0 });
    let mut bytes = 0u64;
    for (path, _) in listed {
        let content =
            std::fs::read(dir.join(&path)).with_context(|| format!("reading {name}/{path}"))?;
        // a file may have grown since it was listed
        bytes += content.len() as u64;
        if bytes > caps.bytes {
            return Err(TreeError::TooLarge(too_large(name, bytes, caps)));
        }
        hasher.update(path.as_bytes());
        hasher.update([0]);
        hasher.update(content.len().to_string().as_bytes());
        hasher.update([0]);
        hasher.update(&content);
        if keep {
            files.push(FileContent {
                path,
                bytes: content,
            });
        }
    }
    let sha256 = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Ok(LoadedTree {
        files,
        bytes,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with(files: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("te-tree-{:016x}", rand::random::<u64>()));
        for (path, content) in files {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, content).unwrap();
        }
        dir
    }

    #[test]
    fn the_tree_leaves_out_vcs_caches_builds_virtualenvs_and_gitignored_files() {
        let dir = tree_with(&[
            ("setup.py", ""),
            ("pkg/__init__.py", ""),
            ("pkg/tests/test_a.py", ""),
            (".gitignore", "*.log\nsecrets/\n"),
            ("debug.log", "x"),
            ("secrets/key.txt", "x"),
            (".git/config", "x"),
            ("pkg/__pycache__/a.pyc", "x"),
            ("build/lib/pkg.py", "x"),
            ("dist/pkg.tar.gz", "x"),
            ("pkg.egg-info/PKG-INFO", "x"),
            ("node_modules/x.js", "x"),
            ("env/pyvenv.cfg", "x"),
            ("env/lib/site.py", "x"),
            (".te/meta.json", "x"),
            (".coveragerc", ""),
        ]);
        let names: Vec<String> = walk(&dir).unwrap().into_iter().map(|(p, _)| p).collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(
            names,
            [
                ".coveragerc",
                ".gitignore",
                "pkg/__init__.py",
                "pkg/tests/test_a.py",
                "setup.py"
            ]
        );
    }

    #[test]
    fn a_tree_over_a_cap_is_refused_with_the_cap_named() {
        let dir = tree_with(&[("setup.py", "0123456789"), ("a.py", "0123456789")]);
        let small = Caps {
            bytes: 15,
            files: 10,
        };
        let err = load(&dir, "p", small).err().unwrap().to_string();
        assert!(err.contains("PROJECT_CAP_BYTES"), "{err}");
        let few = Caps {
            bytes: 1000,
            files: 1,
        };
        let err = load(&dir, "p", few).err().unwrap().to_string();
        assert!(err.contains("PROJECT_CAP_FILES"), "{err}");
        let tree = load(&dir, "p", Caps::default()).unwrap();
        let hashed = hash(&dir, "p", Caps::default()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(tree.bytes, 20);
        assert_eq!(tree.files.len(), 2);
        assert_eq!(tree.sha256.len(), 64);
        assert_eq!(hashed.sha256, tree.sha256);
        assert!(hashed.files.is_empty());
    }

    #[test]
    fn the_hash_changes_with_a_file_name_or_content() {
        let a = tree_with(&[("x.py", "1")]);
        let b = tree_with(&[("y.py", "1")]);
        let c = tree_with(&[("x.py", "2")]);
        let hashes: Vec<String> = [&a, &b, &c, &a]
            .iter()
            .map(|d| load(d, "p", Caps::default()).unwrap().sha256)
            .collect();
        for d in [a, b, c] {
            std::fs::remove_dir_all(d).unwrap();
        }
        assert_ne!(hashes[0], hashes[1]);
        assert_ne!(hashes[0], hashes[2]);
        assert_eq!(hashes[0], hashes[3]);
    }
}
