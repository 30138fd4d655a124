//! Finding projects under the tests folder, and the test files of each.

use std::path::Path;

use anyhow::Context;

use super::{walk, Project};
use crate::catalog::{is_hidden_or_cache, is_test_file_name, relative_path};

/// The projects under the tests folder (a project's own subfolders are
/// its own, never projects of their own) and the test files outside them.
pub fn scan(root: &Path) -> anyhow::Result<(Vec<Project>, Vec<String>)> {
    let mut found = Vec::new();
    let mut outside = Vec::new();
    let mut walker = walkdir::WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter();
    while let Some(entry) = walker.next() {
        let entry = entry.with_context(|| format!("scanning {}", root.display()))?;
        let is_dir = entry.file_type().is_dir();
        if entry.depth() == 0 {
            continue;
        }
        if is_dir {
            if is_hidden_or_cache(entry.file_name()) {
                walker.skip_current_dir();
                continue;
            }
            let markers = super::project::markers_in(entry.path());
            if !markers.is_empty() {
                if let Some(folder) = relative_path(root, entry.path()) {
                    found.push(Project {
                        name: folder.clone(),
                        root: folder,
                        markers,
                    });
                }
                walker.skip_current_dir();
            }
            continue;
        }
        if !entry.file_type().is_file() || !is_test_file_name(entry.file_name()) {
            continue;
        }
        if let Some(relative) = relative_path(root, entry.path()) {
            outside.push(relative);
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    outside.sort();
    Ok((found, outside))
}

/// A project's test files: those of the tree a run of it would receive.
pub fn test_files_of(tests_dir: &Path, project: &Project) -> anyhow::Result<Vec<String>> {
    let dir = project.dir(tests_dir);
    let mut files = Vec::new();
    for (path, _) in walk::walk(&dir)? {
        let name = path.rsplit('/').next().unwrap_or(&path);
        if !is_test_file_name(std::ffi::OsStr::new(name)) {
            continue;
        }
        if let Some(relative) = relative_path(&dir, &dir.join(&path)) {
            files.push(if project.root == "." {
                relative
            } else {
                format!("{}/{relative}", project.root)
            });
        }
    }
    Ok(files)
}
