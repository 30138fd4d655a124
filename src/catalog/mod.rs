//! The test catalog: the pytest files found under the tests folder, grouped
//! by project. A run may name only files from it, and only of one project,
//! so a `TestFile` can only be made by looking one up.

pub mod discovery;
pub mod project;
pub mod tree;

pub use project::Project;
pub use tree::{LoadedTree, TreeError};

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{config::Caps, error::AppError};

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

#[derive(Debug, Clone)]
pub struct Catalog {
    root: PathBuf,
    caps: Caps,
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

    /// Every test file, sorted by path.
    pub fn files(&self) -> anyhow::Result<Vec<TestFile>> {
        let mut files: Vec<TestFile> = self.groups()?.into_iter().flat_map(|g| g.files).collect();
        files.sort();
        Ok(files)
    }

    /// The projects, sorted by name.
    pub fn projects(&self) -> anyhow::Result<Vec<Project>> {
        if let Some(project) = project::top_level(&self.root) {
            return Ok(vec![project]);
        }
        Ok(self.scan()?.0)
    }

    pub fn project(&self, name: &str) -> anyhow::Result<Option<Project>> {
        Ok(self.projects()?.into_iter().find(|p| p.name == name))
    }

    /// The test files grouped by project (projects first, by name), then the
    /// files outside any project, if there are some.
    pub fn groups(&self) -> anyhow::Result<Vec<Group>> {
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
        Ok(groups)
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

    /// Checks every requested path against the catalog; the first unknown one
    /// is refused by name, and so are files of more than one project.
    /// Duplicates are dropped, order kept.
    pub fn resolve(&self, requested: &[String]) -> Result<Selection, AppError> {
        if requested.is_empty() {
            return Err(AppError::Invalid("choose at least one test file".into()));
        }
        if requested.len() > 1000 {
            return Err(AppError::Invalid("choose at most 1000 test files".into()));
        }
        let groups = self.groups()?;
        let group_of: BTreeMap<&TestFile, usize> = groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.files.iter().map(move |f| (f, i)))
            .collect();
        let mut chosen: Vec<TestFile> = Vec::with_capacity(requested.len());
        let mut first: Option<(usize, &str)> = None;
        for path in requested {
            let file = TestFile(path.clone());
            let Some(&group) = group_of.get(&file) else {
                return Err(AppError::Invalid(format!(
                    "{path:?} is not a test file in the catalog; pick one listed at /api/v1/test-files"
                )));
            };
            match first {
                None => first = Some((group, path)),
                Some((g, other)) if g != group => {
                    let name = |i: usize| match &groups[i].project {
                        Some(p) => format!("project {}", p.name),
                        None => "no project".to_owned(),
                    };
                    return Err(AppError::Invalid(format!(
                        "a run takes the files of one project: {other:?} is in {}, {path:?} is in {}; start one run per project",
                        name(g),
                        name(group)
                    )));
                }
                Some(_) => {}
            }
            if !chosen.contains(&file) {
                chosen.push(file);
            }
        }
        let project = first.and_then(|(g, _)| groups[g].project.clone());
        Ok(Selection {
            project,
            files: chosen,
        })
    }

    /// The chosen files plus the `conftest.py` and `__init__.py` files of
    /// every folder above them, which pytest needs to collect them.
    pub fn read_for_run(&self, files: &[String]) -> anyhow::Result<Vec<FileContent>> {
        let mut paths: BTreeSet<String> = BTreeSet::new();
        for file in files {
            let mut folder = Path::new(file).parent();
            while let Some(dir) = folder {
                for support in ["conftest.py", "__init__.py"] {
                    let candidate = dir.join(support);
                    if self.root.join(&candidate).is_file() {
                        paths.insert(candidate.to_string_lossy().into_owned());
                    }
                }
                folder = dir.parent();
            }
        }
        paths.extend(files.iter().cloned());
        paths
            .into_iter()
            .map(|path| {
                let bytes = self.read(&path)?;
                Ok(FileContent { path, bytes })
            })
            .collect()
    }

    /// sha256 of each file, in order, as lowercase hex.
    pub fn sha256(&self, files: &[TestFile]) -> anyhow::Result<Vec<String>> {
        files
            .iter()
            .map(|f| {
                let bytes = self.read(f.as_str())?;
                Ok(hex(&Sha256::digest(&bytes)))
            })
            .collect()
    }

    fn read(&self, relative: &str) -> anyhow::Result<Vec<u8>> {
        let path = self.root.join(relative);
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("reading test file {relative}"))?;
        anyhow::ensure!(meta.is_file(), "{relative} is not a regular file");
        anyhow::ensure!(
            meta.len() <= MAX_FILE_BYTES,
            "{relative} is larger than {MAX_FILE_BYTES} bytes"
        );
        std::fs::read(&path).with_context(|| format!("reading test file {relative}"))
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
