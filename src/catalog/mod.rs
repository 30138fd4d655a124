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
mod tests {
    use super::*;

    fn catalog_with(files: &[&str]) -> (tempdir::Dir, Catalog) {
        let dir = tempdir::Dir::new();
        for f in files {
            let path = dir.path().join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "def test_ok():\n    pass\n").unwrap();
        }
        let catalog = Catalog::new(dir.path());
        (dir, catalog)
    }

    #[test]
    fn finds_test_files_recursively_and_skips_the_rest() {
        let (_dir, catalog) = catalog_with(&[
            "test_a.py",
            "b_test.py",
            "helpers.py",
            "api/v2/test_orders.py",
            "api/conftest.py",
            ".hidden/test_secret.py",
            "__pycache__/test_cached.py",
        ]);
        let names: Vec<String> = catalog
            .files()
            .unwrap()
            .iter()
            .map(|f| f.0.clone())
            .collect();
        assert_eq!(names, ["api/v2/test_orders.py", "b_test.py", "test_a.py"]);
    }

    #[test]
    fn resolves_only_catalog_files() {
        let (_dir, catalog) = catalog_with(&["test_a.py", "api/test_b.py"]);
        let ok = catalog.resolve(&[
            "api/test_b.py".into(),
            "test_a.py".into(),
            "test_a.py".into(),
        ]);
        assert_eq!(ok.unwrap().files.len(), 2);
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "test_missing.py",
            "api/../test_a.py",
            "-k",
        ] {
            let err = catalog.resolve(&[bad.to_string()]).unwrap_err();
            assert!(matches!(err, AppError::Invalid(_)), "{bad}");
        }
        assert!(catalog.resolve(&[]).is_err());
    }

    #[test]
    fn a_run_gets_the_conftest_files_above_its_tests() {
        let (_dir, catalog) = catalog_with(&[
            "conftest.py",
            "api/conftest.py",
            "api/v2/test_c.py",
            "other/conftest.py",
        ]);
        let paths: Vec<String> = catalog
            .read_for_run(&["api/v2/test_c.py".into()])
            .unwrap()
            .into_iter()
            .map(|f| f.path)
            .collect();
        assert_eq!(
            paths,
            ["api/conftest.py", "api/v2/test_c.py", "conftest.py"]
        );
    }

    #[test]
    fn files_are_grouped_by_project_and_a_run_takes_one_project() {
        let (_dir, catalog) = catalog_with(&[
            "test_loose.py",
            "six/setup.py",
            "six/test_six.py",
            "six/docs/requirements.txt",
            "six/build/test_built.py",
            "toolz/pyproject.toml",
            "toolz/toolz/tests/test_a.py",
        ]);
        let groups = catalog.groups().unwrap();
        let summary: Vec<(Option<String>, Vec<&str>)> = groups
            .iter()
            .map(|g| {
                (
                    g.project.as_ref().map(|p| p.name.clone()),
                    g.files.iter().map(TestFile::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Some("six".into()), vec!["six/test_six.py"]),
                (Some("toolz".into()), vec!["toolz/toolz/tests/test_a.py"]),
                (None, vec!["test_loose.py"]),
            ]
        );
        let one = catalog.resolve(&["six/test_six.py".into()]).unwrap();
        assert_eq!(one.project.unwrap().markers, ["setup.py"]);
        let err = catalog
            .resolve(&["six/test_six.py".into(), "test_loose.py".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("one project") && err.contains("project six"),
            "{err}"
        );
    }

    #[test]
    fn a_tests_folder_with_a_marker_is_the_only_project() {
        let (_dir, catalog) = catalog_with(&["pytest.ini", "tests/test_a.py", "sub/setup.py"]);
        let projects = catalog.projects().unwrap();
        assert_eq!(projects.len(), 1);
        assert_eq!(projects[0].root, ".");
        assert_eq!(
            catalog.files().unwrap(),
            [TestFile("tests/test_a.py".into())]
        );
    }

    /// A throwaway folder, removed on drop (keeps the dependency tree small).
    mod tempdir {
        pub struct Dir(std::path::PathBuf);
        impl Dir {
            pub fn new() -> Self {
                let path =
                    std::env::temp_dir().join(format!("te-catalog-{}", rand::random::<u64>()));
                std::fs::create_dir_all(&path).unwrap();
                Dir(path)
            }
            pub fn path(&self) -> &std::path::Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }
}
