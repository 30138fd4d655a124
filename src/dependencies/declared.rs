//! What a project declares about its dependencies: the files that declare
//! them, whether the project itself is installable, the pip command that
//! installs it all, and the key (hash) a built image is found again by.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::catalog::safe_fs;

/// Changes when the way images are built changes, so old images are not
/// taken for new ones.
const RECIPE_VERSION: &str = "te-deps-1";

/// Extras that hold a project's test dependencies; pip warns about the ones a
/// project does not have and goes on.
pub const TEST_EXTRAS: &str = "test,tests,testing";

/// The largest declaring file read (a requirements file is small).
const MAX_DECLARING_BYTES: u64 = 1 << 20;

/// A project as the dependency builder sees it.
#[derive(Debug, Clone)]
pub struct ProjectSource {
    pub name: String,
    /// The project's root folder on this machine; its tree goes into the
    /// build so the project can be installed as a development install.
    pub root: PathBuf,
    /// The files that declare dependencies, relative to the root, sorted.
    pub declaring: Vec<DeclaringFile>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeclaringFile {
    /// Relative to the root, `/`-separated.
    pub path: String,
    pub bytes: Vec<u8>,
}

impl ProjectSource {
    /// Reads the declaring files found in `root`: regular files only (a
    /// symlink or a FIFO is not one), each at most 1 MiB.
    pub fn discover(name: &str, root: &Path) -> Result<ProjectSource> {
        let mut declaring = Vec::new();
        for path in candidate_paths(root)? {
            // a regular file only (listed so, but it may have been swapped)
            let bytes = safe_fs::read_beneath(root, &path, MAX_DECLARING_BYTES)?;
            declaring.push(DeclaringFile { path, bytes });
        }
        declaring.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(ProjectSource {
            name: name.to_owned(),
            root: root.to_owned(),
            declaring,
        })
    }

    fn file(&self, path: &str) -> Option<&DeclaringFile> {
        self.declaring.iter().find(|f| f.path == path)
    }

    /// Whether pip can install the project itself: a `setup.py`, or a
    /// `pyproject.toml` that says how to build it. A `pyproject.toml` holding
    /// only tool settings (pytest's, say) is not a package.
    pub fn installable(&self) -> bool {
        if self.file("setup.py").is_some() {
            return true;
        }
        self.file("pyproject.toml").is_some_and(|f| {
            String::from_utf8_lossy(&f.bytes).lines().any(|line| {
                let line = line.trim();
                line == "[project]" || line == "[build-system]"
            })
        })
    }

    /// The requirements files pip installs (`-r`), in a stable order.
    pub fn requirement_files(&self) -> Vec<&str> {
        self.declaring
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| installs_requirements(p))
            .collect()
    }

    /// The arguments after `pip install`, or `None` when the project declares
    /// nothing to install (then the base image is used as it is).
    pub fn pip_install_args(&self) -> Option<Vec<String>> {
        let mut args = Vec::new();
        for file in self.requirement_files() {
            args.push("-r".to_owned());
            args.push(file.to_owned());
        }
        if self.installable() {
            // compat: the editable install is a path `.pth` (no import hook
            // with absolute file lists), so the tree sent with each run is the
            // code that is imported.
            args.push("--config-settings".to_owned());
            args.push("editable_mode=compat".to_owned());
            args.push("-e".to_owned());
            args.push(format!(".[{TEST_EXTRAS}]"));
        }
        (!args.is_empty()).then_some(args)
    }

    /// The image key: the base image, the project and its declaring files.
    pub fn key(&self, base_image_id: &str) -> String {
        let mut hash = Sha256::new();
        for part in [RECIPE_VERSION, base_image_id, &self.name] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        for file in &self.declaring {
            hash.update((file.path.len() as u64).to_le_bytes());
            hash.update(file.path.as_bytes());
            hash.update((file.bytes.len() as u64).to_le_bytes());
            hash.update(&file.bytes);
        }
        format!("{:x}", hash.finalize())
    }
}

/// Requirements files pip is told to install.
fn installs_requirements(path: &str) -> bool {
    let txt = |name: &str| name.ends_with(".txt");
    match path.split_once('/') {
        Some(("requirements", name)) => name.starts_with("test") && txt(name),
        Some(_) => false,
        None => {
            (path.starts_with("requirements-test") && txt(path))
                || path == "test-requirements.txt"
                || path == "requirements-dev.txt"
                || path == "requirements.txt"
        }
    }
}

/// Every file that may declare dependencies: the packaging files, and all
/// requirements and constraints files at the root or in `requirements/` (a
/// file that is installed may include another with `-r` or `-c`).
fn candidate_paths(root: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let listed = |dir: &Path| -> Result<Vec<String>> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(Vec::new());
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            if entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        Ok(names)
    };
    for name in listed(root)? {
        let packaging = matches!(name.as_str(), "pyproject.toml" | "setup.cfg" | "setup.py");
        let requirements = name.ends_with(".txt")
            && (name.starts_with("requirements")
                || name.starts_with("constraints")
                || name == "test-requirements.txt");
        if packaging || requirements {
            found.push(name);
        }
    }
    // a symlink named `requirements` is not a folder of the project
    let folder = root.join("requirements");
    if !std::fs::symlink_metadata(&folder).is_ok_and(|m| m.is_dir()) {
        return Ok(found);
    }
    for name in listed(&folder)? {
        if name.ends_with(".txt") {
            found.push(format!("requirements/{name}"));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(files: &[(&str, &str)]) -> ProjectSource {
        ProjectSource {
            name: "demo".into(),
            root: PathBuf::from("/nowhere"),
            declaring: files
                .iter()
                .map(|(p, b)| DeclaringFile {
                    path: (*p).into(),
                    bytes: b.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn a_project_with_only_tool_settings_declares_nothing() {
        let p = project(&[("pyproject.toml", "[tool.pytest.ini_options]\n")]);
        assert!(!p.installable());
        assert_eq!(p.pip_install_args(), None);
    }

    #[test]
    fn an_installable_project_is_installed_editable_with_its_test_extras() {
        let p = project(&[
            (
                "pyproject.toml",
                "[build-system]\nrequires = ['hatchling']\n",
            ),
            ("requirements/test.txt", "freezegun\n"),
            ("requirements/docs.txt", "sphinx\n"),
        ]);
        assert_eq!(
            p.pip_install_args().unwrap(),
            [
                "-r",
                "requirements/test.txt",
                "--config-settings",
                "editable_mode=compat",
                "-e",
                ".[test,tests,testing]"
            ]
        );
    }

    #[test]
    fn the_listed_requirements_files_are_installed_and_others_only_hashed() {
        for path in [
            "requirements-test.txt",
            "requirements-tests.txt",
            "test-requirements.txt",
            "requirements/testing.txt",
            "requirements-dev.txt",
            "requirements.txt",
        ] {
            assert!(installs_requirements(path), "{path}");
        }
        for path in [
            "constraints.txt",
            "requirements-docs.txt",
            "requirements/docs.txt",
        ] {
            assert!(!installs_requirements(path), "{path}");
        }
    }

    #[test]
    fn the_key_changes_with_any_declaring_byte_and_with_the_base_image() {
        let a = project(&[("requirements.txt", "iniconfig==2.0.0\n")]);
        let b = project(&[("requirements.txt", "iniconfig==1.1.1\n")]);
        assert_eq!(a.key("sha256:1"), a.key("sha256:1"));
        assert_ne!(a.key("sha256:1"), b.key("sha256:1"));
        assert_ne!(a.key("sha256:1"), a.key("sha256:2"));
    }

    #[test]
    fn discovery_finds_declaring_files_and_skips_the_rest() {
        let dir = std::env::temp_dir().join(format!("te-declared-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("requirements")).unwrap();
        for (path, text) in [
            ("setup.py", "from setuptools import setup; setup()"),
            ("requirements/test.txt", "x"),
            ("README.md", "readme"),
            ("constraints.txt", "x<2"),
        ] {
            std::fs::write(dir.join(path), text).unwrap();
        }
        let p = ProjectSource::discover("demo", &dir).unwrap();
        let paths: Vec<&str> = p.declaring.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            ["constraints.txt", "requirements/test.txt", "setup.py"]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
