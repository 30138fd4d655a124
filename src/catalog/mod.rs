//! The test catalog: the pytest files found under the tests folder, grouped
//! by project. A run may name only files from it, and only of one project,
//! so a `TestFile` can only be made by looking one up.

mod cache;
pub mod discovery;
mod listing;
mod project;
pub mod safe_fs;
mod tree;
pub mod walk;

pub use listing::Listing;
pub use project::{Project, DECLARATION};
pub use tree::{LoadedTree, TreeError};

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    sync::Arc,
};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::Caps;

/// Largest test file the catalog hands to a run.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A file in the catalog, by its path relative to the tests folder, always
/// with `/` separators, never absolute, never with `..`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct TestFile(String);

impl TestFile {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder part ("" for the top level).
    pub fn folder(&self) -> &str {
        self.0.rsplit_once('/').map_or("", |(dir, _)| dir)
    }
}

/// The tests folder; clones share one cached listing.
#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
    caps: Caps,
    cache: Arc<cache::Cache>,
}

/// A file's bytes, ready to be sent into a container.
pub struct FileContent {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// The test files of one project, or (`project: None`) those outside any.
#[derive(Debug, Clone)]
pub struct Group {
    pub project: Option<Project>,
    pub files: Vec<TestFile>,
}

/// What a run asked for, checked: files of one project (or of none).
#[derive(Debug, Clone)]
pub struct Selection {
    pub project: Option<Project>,
    pub files: Vec<TestFile>,
}

impl Catalog {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Catalog {
            root: root.into(),
            caps: Caps::default(),
            cache: Arc::default(),
        }
    }

    /// The same catalog with these caps on a project's tree.
    pub fn with_caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn caps(&self) -> Caps {
        self.caps
    }

    /// The test files grouped by project, walked off the async threads
    /// or taken from the cache (at most [`cache::FRESH_FOR`] old).
    pub async fn listing(&self) -> anyhow::Result<Arc<Listing>> {
        let catalog = self.clone();
        self.cache.get(&self.root, move || catalog.walk()).await
    }

    /// The same, from a blocking thread (the executor's payload, tests).
    pub fn listing_blocking(&self) -> anyhow::Result<Arc<Listing>> {
        self.cache.get_blocking(&self.root, || self.walk())
    }

    /// Walks the folder: projects first, by name, then the files outside any.
    fn walk(&self) -> anyhow::Result<Listing> {
        let (found, outside) = match project::top_level(&self.root) {
            Some(project) => (vec![project], Vec::new()),
            None => self.scan()?,
        };
        let mut groups = Vec::with_capacity(found.len() + 1);
        for project in found {
            let files = self.project_files(&project)?;
            groups.push(Group {
                project: Some(project),
                files,
            });
        }
        if !outside.is_empty() {
            groups.push(Group {
                project: None,
                files: outside,
            });
        }
        Ok(Listing::new(groups))
    }

    fn scan(&self) -> anyhow::Result<(Vec<Project>, Vec<TestFile>)> {
        let (found, outside) = discovery::scan(&self.root)?;
        Ok((found, outside.into_iter().map(TestFile).collect()))
    }

    fn project_files(&self, project: &Project) -> anyhow::Result<Vec<TestFile>> {
        let files = discovery::test_files_of(&self.root, project)?;
        Ok(files.into_iter().map(TestFile).collect())
    }

    /// A project's tree, read within the caps.
    pub fn load_tree(&self, project: &Project) -> Result<LoadedTree, TreeError> {
        tree::load(&project.dir(&self.root), &project.name, self.caps)
    }

    /// A project's tree hashed (and checked against the caps), not kept.
    pub fn hash_tree(&self, project: &Project) -> Result<LoadedTree, TreeError> {
        tree::hash(&project.dir(&self.root), &project.name, self.caps)
    }

    /// The chosen files plus the `conftest.py` and `__init__.py` files of
    /// every folder above them, which pytest needs to collect them. Each is
    /// read afresh from under the tests folder: no symlink followed, only
    /// regular files (a support file that is not one is left out), capped.
    pub fn read_for_run(&self, files: &[TestFile]) -> Result<Vec<FileContent>, safe_fs::ReadError> {
        let mut paths: BTreeSet<String> = BTreeSet::new();
        for file in files {
            // "a/b/test_c.py" → "", "a", "a/b"
            let above =
                std::iter::once("").chain(file.0.match_indices('/').map(|(i, _)| &file.0[..i]));
            for folder in above {
                for support in ["conftest.py", "__init__.py"] {
                    let candidate = match folder {
                        "" => support.to_owned(),
                        _ => format!("{folder}/{support}"),
                    };
                    if safe_fs::regular_beneath(&self.root, &candidate).is_ok() {
                        paths.insert(candidate);
                    }
                }
            }
        }
        paths.extend(files.iter().map(|f| f.0.clone()));
        paths
            .into_iter()
            .map(|path| {
                let bytes = self.read(&path)?;
                Ok(FileContent { path, bytes })
            })
            .collect()
    }

    /// sha256 of each file, in order, as lowercase hex.
    pub fn sha256(&self, files: &[TestFile]) -> Result<Vec<String>, safe_fs::ReadError> {
        files
            .iter()
            .map(|f| Ok(hex(&Sha256::digest(self.read(f.as_str())?))))
            .collect()
    }

    fn read(&self, relative: &str) -> Result<Vec<u8>, safe_fs::ReadError> {
        safe_fs::read_beneath(&self.root, relative, MAX_FILE_BYTES)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn is_hidden_or_cache(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name == "__pycache__" || name == "node_modules"
}

pub(crate) fn is_test_file_name(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}

/// `root/a/b.py` → `a/b.py`, only for plain UTF-8 names pytest can take as
/// arguments (no leading `-`, no spaces that would need quoting elsewhere).
pub(crate) fn relative_path(root: &Path, path: &Path) -> Option<String> {
    let relative = path.strip_prefix(root).ok()?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    let parts = parts?;
    let safe = parts.iter().all(|p| {
        !p.is_empty()
            && !p.starts_with('-')
            && *p != ".."
            && p.chars().all(|c| c.is_alphanumeric() || "._-".contains(c))
    });
    safe.then(|| parts.join("/"))
}

#[cfg(test)]
mod tests;
