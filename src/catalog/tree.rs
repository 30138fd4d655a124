//! A project's tree as it goes into a run's container: the files the walk
//! lists (`walk`), within a size and a file-count cap, with one sha256 over
//! paths and contents.

use std::path::Path;

use sha2::{Digest, Sha256};

use super::{
    safe_fs::{self, ReadError},
    walk::walk,
    FileContent,
};
use crate::config::Caps;

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Over a cap: the message says which and what to do.
    #[error("{0}")]
    TooLarge(String),
    /// A listed file that cannot be read as a regular file (swapped for a
    /// symlink or a FIFO, made unreadable): the project's to fix.
    #[error("{0}")]
    Unreadable(String),
    #[error(transparent)]
    Io(#[from] anyhow::Error),
}

/// A tree read into memory, ready for the payload.
pub struct LoadedTree {
    pub files: Vec<FileContent>,
    pub bytes: u64,
    pub sha256: String,
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
        // a file may have grown (or been swapped) since it was listed
        let content = match safe_fs::read_beneath(dir, &path, caps.bytes - bytes) {
            Ok(content) => content,
            Err(ReadError::TooLarge(..)) => {
                return Err(TreeError::TooLarge(too_large(name, caps.bytes + 1, caps)))
            }
            Err(err) => return Err(TreeError::Unreadable(format!("project {name}: {err}"))),
        };
        bytes += content.len() as u64;
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
