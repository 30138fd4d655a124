//! The test catalog: the pytest files found under the tests folder. A run may
//! name only files from it, so a `TestFile` can only be made by looking one up.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::AppError;

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
}

/// A file's bytes, ready to be sent into a container.
pub struct FileContent {
    pub path: String,
    pub bytes: Vec<u8>,
}

impl Catalog {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Catalog { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every test file, sorted by path.
    pub fn files(&self) -> anyhow::Result<Vec<TestFile>> {
        let mut files = Vec::new();
        let walker = walkdir::WalkDir::new(&self.root)
            .follow_links(false)
            .sort_by_file_name()
            .into_iter()
            .filter_entry(|e| e.depth() == 0 || !is_hidden_or_cache(e.file_name()));
        for entry in walker {
            let entry = entry.with_context(|| format!("scanning {}", self.root.display()))?;
            if !entry.file_type().is_file() || !is_test_file_name(entry.file_name()) {
                continue;
            }
            if let Some(relative) = relative_path(&self.root, entry.path()) {
                files.push(TestFile(relative));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Checks every requested path against the catalog; the first unknown one
    /// is refused by name. Duplicates are dropped, order kept.
    pub fn resolve(&self, requested: &[String]) -> Result<Vec<TestFile>, AppError> {
        if requested.is_empty() {
            return Err(AppError::Invalid("choose at least one test file".into()));
        }
        if requested.len() > 1000 {
            return Err(AppError::Invalid("choose at most 1000 test files".into()));
        }
        let known: BTreeSet<TestFile> = self.files()?.into_iter().collect();
        let mut chosen: Vec<TestFile> = Vec::with_capacity(requested.len());
        for path in requested {
            let file = TestFile(path.clone());
            if !known.contains(&file) {
                return Err(AppError::Invalid(format!(
                    "{path:?} is not a test file in the catalog; pick one listed at /api/v1/test-files"
                )));
            }
            if !chosen.contains(&file) {
                chosen.push(file);
            }
        }
        Ok(chosen)
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

fn is_hidden_or_cache(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name == "__pycache__" || name == "node_modules"
}

fn is_test_file_name(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.ends_with(".py") && (name.starts_with("test_") || name.ends_with("_test.py"))
}

/// `root/a/b.py` → `a/b.py`, only for plain UTF-8 names pytest can take as
/// arguments (no leading `-`, no spaces that would need quoting elsewhere).
fn relative_path(root: &Path, path: &Path) -> Option<String> {
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
        assert_eq!(ok.unwrap().len(), 2);
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
