//! Walking a project's tree: its regular files, no symlink followed, leaving
//! out version-control folders, virtualenvs, caches, build outputs and what
//! its `.gitignore` files exclude.
//!
//! The `.gitignore` files are read here, not by the `ignore` crate's walker:
//! that walker opens whatever is named `.gitignore` and reads it line by line
//! to the end, so a FIFO blocks the thread forever and a symlink to
//! `/dev/zero` allocates until the process aborts. Here only a regular file
//! of at most [`MAX_IGNORE_BYTES`] is read, and the crate only parses lines.

use std::path::Path;

use anyhow::Context;
use ignore::{
    gitignore::{Gitignore, GitignoreBuilder},
    Match,
};

use super::safe_fs::{self, ReadError};

/// The largest `.gitignore` read; a larger one is left out (and logged).
pub const MAX_IGNORE_BYTES: u64 = 1 << 20;

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
        || std::fs::symlink_metadata(path.join("pyvenv.cfg")).is_ok_and(|m| m.is_file())
}

/// The `.gitignore` rules of one folder on the way down.
struct Rules {
    depth: usize,
    matcher: Gitignore,
    /// A folder holding `.git` is a repository's root: rules above it do
    /// not apply inside (as the `ignore` crate and git have it).
    has_git: bool,
}

impl Rules {
    fn of(dir: &Path, depth: usize) -> Rules {
        let path = dir.join(".gitignore");
        let mut builder = GitignoreBuilder::new(dir);
        match safe_fs::read_regular(&path, ".gitignore", MAX_IGNORE_BYTES) {
            Ok(bytes) => add_lines(&mut builder, &path, &bytes),
            Err(ReadError::Missing(_) | ReadError::NotRegular(_)) => {}
            Err(err) => tracing::warn!(folder = %dir.display(), "{err}; its rules are left out"),
        }
        Rules {
            depth,
            matcher: builder.build().unwrap_or_else(|_| Gitignore::empty()),
            has_git: std::fs::symlink_metadata(dir.join(".git")).is_ok(),
        }
    }
}

/// Adds each line as `GitignoreBuilder::add` would: a leading BOM dropped,
/// lines that are not UTF-8 or not a valid glob skipped.
fn add_lines(builder: &mut GitignoreBuilder, path: &Path, bytes: &[u8]) {
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let _ = builder.add_line(Some(path.to_owned()), line);
    }
}

/// Whether the deepest rule that matches `path` ignores it.
fn ignored(stack: &[Rules], path: &Path, is_dir: bool) -> bool {
    for rules in stack.iter().rev() {
        match rules.matcher.matched(path, is_dir) {
            Match::Ignore(_) => return true,
            Match::Whitelist(_) => return false,
            Match::None if rules.has_git => return false,
            Match::None => {}
        }
    }
    false
}

/// The regular files of the tree under `dir`, as (path relative to `dir`
/// with `/` separators, size), sorted by path. Symlinks, FIFOs, devices and
/// files whose name is not UTF-8 are left out.
pub fn walk(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let mut stack = vec![Rules::of(dir, 0)];
    let mut files = Vec::new();
    let mut walker = walkdir::WalkDir::new(dir)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        let depth = entry.depth();
        if depth == 0 {
            continue;
        }
        // leave the rules of the folders the walk came out of
        while stack.last().is_some_and(|r| r.depth >= depth) {
            stack.pop();
        }
        let is_dir = entry.file_type().is_dir();
        let name = entry.file_name().to_string_lossy();
        // `.te/` at the top is where the payload's own metadata goes
        let left_out = (is_dir && skipped_dir(&name, entry.path()))
            || (depth == 1 && name == ".te")
            || ignored(&stack, entry.path(), is_dir);
        if left_out && is_dir {
            walker.skip_current_dir();
        }
        if left_out {
            continue;
        }
        if is_dir {
            stack.push(Rules::of(entry.path(), depth));
        } else if entry.file_type().is_file() {
            if let Some(relative) = relative_utf8(dir, entry.path()) {
                let size = entry
                    .metadata()
                    .with_context(|| format!("reading {}", entry.path().display()))?
                    .len();
                files.push((relative, size));
            }
        }
    }
    files.sort();
    Ok(files)
}

fn relative_utf8(dir: &Path, path: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = path
        .strip_prefix(dir)
        .ok()?
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}

#[cfg(test)]
mod tests;
