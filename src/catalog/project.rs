//! Projects: folders under the tests folder that hold a project marker
//! (`pyproject.toml`, `setup.py`, ...). A run of a project's files receives
//! the project's whole tree and runs pytest from the project's root.

use std::path::Path;

use serde::Serialize;

/// A project found under the tests folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Project {
    /// How runs name it: its folder relative to the tests folder, or the
    /// tests folder's own name when that folder is the project.
    pub name: String,
    /// Its folder relative to the tests folder (`.` for the tests folder itself).
    pub root: String,
    /// The marker files found in its root, sorted.
    pub markers: Vec<String>,
}

impl Project {
    /// A test file's path relative to this project's root, if it is inside.
    pub fn relative<'a>(&self, file: &'a str) -> Option<&'a str> {
        if self.root == "." {
            return Some(file);
        }
        file.strip_prefix(self.root.as_str())?.strip_prefix('/')
    }

    pub fn dir(&self, tests_dir: &Path) -> std::path::PathBuf {
        if self.root == "." {
            tests_dir.to_owned()
        } else {
            tests_dir.join(&self.root)
        }
    }
}

/// What a project declares its tests need (`dependencies::declaration`):
/// it marks a project's root too.
pub const DECLARATION: &str = "test-executor.toml";

/// Whether a file name marks its folder as a project's root.
pub fn is_marker(name: &str) -> bool {
    matches!(
        name,
        "pyproject.toml" | "setup.py" | "setup.cfg" | "pytest.ini" | "tox.ini" | DECLARATION
    ) || (name.starts_with("requirements") && name.ends_with(".txt"))
}

/// The markers in a folder, sorted; empty when it is not a project's root.
pub fn markers_in(dir: &Path) -> Vec<String> {
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| is_marker(name))
        .collect();
    found.sort();
    found
}

/// The project a tests folder is by itself, when it holds a marker.
pub fn top_level(tests_dir: &Path) -> Option<Project> {
    let markers = markers_in(tests_dir);
    if markers.is_empty() {
        return None;
    }
    let name = std::fs::canonicalize(tests_dir)
        .ok()
        .and_then(|p| p.file_name().and_then(|n| n.to_str()).map(str::to_owned))
        .unwrap_or_else(|| "project".into());
    Some(Project {
        name,
        root: ".".into(),
        markers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_the_usual_project_files() {
        for name in [
            "pyproject.toml",
            "setup.py",
            "setup.cfg",
            "pytest.ini",
            "tox.ini",
            "requirements.txt",
            "requirements-dev.txt",
            "test-executor.toml",
        ] {
            assert!(is_marker(name), "{name}");
        }
        for name in ["conftest.py", "README.md", "requirements.in", "Makefile"] {
            assert!(!is_marker(name), "{name}");
        }
    }

    #[test]
    fn a_file_is_relative_to_its_project_root_only_when_inside_it() {
        let project = Project {
            name: "lib/six".into(),
            root: "lib/six".into(),
            markers: vec![],
        };
        assert_eq!(project.relative("lib/six/test_six.py"), Some("test_six.py"));
        assert_eq!(project.relative("lib/sixty/test_x.py"), None);
        assert_eq!(project.relative("test_x.py"), None);
    }
}
