//! What a project declares about its dependencies: the files that declare
//! them, whether the project itself is installable, the pip command that
//! installs it all, and the key (hash) a built image is found again by.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::declaration::{self, Declaration, Invalid};
use super::static_meta::{self, ImportRoot, StaticMeta};
use sha2::{Digest, Sha256};

use crate::catalog::safe_fs;

/// Changes when the way images are built changes, so old images are not
/// taken for new ones.
const RECIPE_VERSION: &str = "te-deps-2";
/// Added to a tree's key (so a tree's images are never a catalog project's).
const TREE_RECIPE: &str = "te-tree-2";
/// Added to the key of a tree whose install the server writes.
const STATIC_RECIPE: &str = "te-tree-static-1";

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
    /// For a tree a client sent, its id (the hash of every file in it).
    /// Installing a project runs its code (setup.py, an in-tree backend,
    /// any file they read), and what that code writes stays in the image:
    /// an installable tree's image is keyed by the whole tree, so it only
    /// ever runs with the tree that built it, never with another tree of
    /// the same name and declaring files (usernames are not accounts).
    /// A tree whose metadata is static is the exception (`metadata`).
    pub tree_id: Option<String>,
    /// Where the project's code is imported from, by the layout's rule
    /// (`static_meta::ImportRoot`).
    import_root: ImportRoot,
    /// For a tree with static metadata, that metadata (`Err`: refused):
    /// pip never installs it, the server writes its install.
    metadata: Option<Result<StaticMeta, String>>,
    /// For a tree, the username a build is for: a tree's images are pruned
    /// per name and username, so one person's builds never push another's
    /// out (`prune_group`).
    pub owner: Option<String>,
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
        let mut source = ProjectSource {
            name: name.to_owned(),
            root: root.to_owned(),
            declaring,
            tree_id: None,
            import_root: ImportRoot::Root,
            metadata: None,
            owner: None,
        };
        source.import_root = source.layout(root);
        Ok(source)
    }

    /// The same project, as tree `id` a client sent: its metadata is read
    /// for a static install.
    pub fn of_tree(mut self, id: &str) -> ProjectSource {
        self.tree_id = Some(id.to_owned());
        let text = |path: &str| {
            self.file(path)
                .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
        };
        self.metadata = text("pyproject.toml").and_then(|pyproject| {
            let setup_cfg = text("setup.cfg");
            let setup_py = self.file("setup.py").is_some();
            static_meta::read(&pyproject, setup_py, setup_cfg.as_deref(), self.import_root)
                .transpose()
        });
        self
    }

    /// The same tree, its builds for `username`.
    pub fn built_for(mut self, username: &str) -> ProjectSource {
        self.owner = Some(username.to_owned());
        self
    }

    /// What the project's images are pruned among (`DEPS_KEEP_IMAGES` of
    /// each): a catalog project's by its name; a tree's by its name and the
    /// username its builds were for (a tree's name is its folder's, so two
    /// people's trees may share it).
    pub fn prune_group(&self) -> String {
        match (&self.tree_id, &self.owner) {
            (Some(_), Some(owner)) => format!("{} by {owner}", self.name),
            _ => self.name.clone(),
        }
    }

    /// The layout's rule: the code is imported from `src/` when the tree
    /// has a `src` folder and its root holds no package or module of the
    /// project's name (`name/` or `name.py`, the name normalized with `_`);
    /// else from the root.
    fn layout(&self, root: &Path) -> ImportRoot {
        let is = |path: &Path, dir: bool| {
            std::fs::symlink_metadata(path)
                .is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() })
        };
        if !is(&root.join("src"), true) {
            return ImportRoot::Root;
        }
        let own = self
            .file("pyproject.toml")
            .and_then(|f| static_meta::declared_name(&String::from_utf8_lossy(&f.bytes)))
            .map(|name| static_meta::normalized(&name));
        let flat = own.is_some_and(|own| {
            is(&root.join(&own), true) || is(&root.join(format!("{own}.py")), false)
        });
        if flat {
            ImportRoot::Root
        } else {
            ImportRoot::Src
        }
    }

    /// The static metadata whose install the server writes, if any.
    pub fn written(&self) -> Option<&StaticMeta> {
        self.metadata.as_ref().and_then(|w| w.as_ref().ok())
    }

    /// Why the tree's static metadata is refused, if it is.
    pub fn refused_metadata(&self) -> Option<&str> {
        self.metadata
            .as_ref()
            .and_then(|w| w.as_ref().err())
            .map(String::as_str)
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

    /// What the project declares its tests need (`test-executor.toml`, or
    /// `[tool.test-executor]` in `pyproject.toml`); `offered` are the
    /// service images this server offers (`SERVICE_IMAGES`).
    pub fn declaration(&self, offered: &[String]) -> Result<Declaration, Invalid> {
        declaration::parse(
            self.text(declaration::FILE).as_deref(),
            self.text("pyproject.toml").as_deref(),
            offered,
        )
    }

    fn text(&self, path: &str) -> Option<String> {
        self.file(path)
            .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
    }

    /// Whether the project declares anything to install (else its runs use
    /// the base image as it is).
    pub fn declares_anything(&self) -> bool {
        self.installable() || !self.requirement_files().is_empty() || self.wants_system_packages()
    }

    /// Whether the declaration lists Debian packages (an invalid one is
    /// reported where it is read in full, at creation and at the build).
    fn wants_system_packages(&self) -> bool {
        declaration::system_packages(
            self.text(declaration::FILE).as_deref(),
            self.text("pyproject.toml").as_deref(),
        )
        .is_some_and(|p| !p.is_empty())
    }

    /// The arguments after `pip install` that install the project itself,
    /// or `None` when it is not installable.
    pub fn project_args(&self) -> Option<Vec<String>> {
        // compat: the editable install is a path `.pth` (no import hook
        // with absolute file lists), so the tree sent with each run is the
        // code that is imported.
        (self.installable() && self.metadata.is_none()).then(|| {
            vec![
                "--config-settings".to_owned(),
                "editable_mode=compat".to_owned(),
                "-e".to_owned(),
                format!(".[{TEST_EXTRAS}]"),
            ]
        })
    }

    /// What building the project needs (`[build-system] requires`, or
    /// setuptools for a `setup.py` alone), with what backends add for an
    /// editable build; empty when it is not installable. An in-tree backend
    /// (`backend-path`) needs nothing it does not list.
    pub fn build_requires(&self) -> Result<Vec<String>, String> {
        // A refused static declaration fails the build with its reason.
        if let Some(refused) = self.refused_metadata() {
            return Err(refused.to_owned());
        }
        if !self.installable() || self.metadata.is_some() {
            return Ok(Vec::new());
        }
        let mut requires = match self.file("pyproject.toml") {
            Some(file) => {
                let text = String::from_utf8_lossy(&file.bytes);
                let table: toml::Table = toml::from_str(&text)
                    .map_err(|e| format!("pyproject.toml is not valid TOML: {e}"))?;
                match table.get("build-system").and_then(|b| b.get("requires")) {
                    Some(toml::Value::Array(items)) => items
                        .iter()
                        .map(|v| v.as_str().map(str::to_owned))
                        .collect::<Option<Vec<_>>>()
                        .ok_or("pyproject.toml: [build-system] requires must list strings")?,
                    Some(_) => {
                        return Err("pyproject.toml: [build-system] requires must be a list".into())
                    }
                    None => vec!["setuptools>=40.8.0".to_owned()],
                }
            }
            None => vec!["setuptools>=40.8.0".to_owned()],
        };
        // What backends ask for besides (get_requires_for_build_editable).
        let named = |n: &str| {
            requires
                .iter()
                .any(|r| r.trim_start().to_lowercase().starts_with(n))
        };
        let mut extra = Vec::new();
        if named("hatchling") {
            extra.push("editables".to_owned());
        }
        if named("setuptools") {
            extra.push("wheel".to_owned());
        }
        requires.extend(extra);
        Ok(requires)
    }

    /// The image key: this installation, the base image, the project, its
    /// declaring files and the recipe's version; and for a tree pip
    /// installs, the tree itself (see `tree_id`). A tree that only lists
    /// requirements builds from the checked lines alone (its files are not
    /// in the build), and so does one with static metadata (the server
    /// writes its install from the declaring files and the layout), so
    /// their images are shared by every tree declaring the same.
    pub fn key(&self, installation: &str, base_image_id: &str) -> String {
        let mut hash = Sha256::new();
        let mut parts = vec![RECIPE_VERSION, installation, base_image_id, &self.name];
        // A tree's keys changed when its builds stopped receiving the tree
        // of a project that does not install itself: none made before is taken.
        // The layout the written `.pth` points at is the metadata's own.
        let import_root = self.written().map_or(self.import_root, |m| m.import_root);
        let layout = match import_root {
            ImportRoot::Root => "root",
            ImportRoot::Src => "src",
        };
        match (&self.tree_id, self.installable()) {
            (Some(_), _) if self.metadata.is_some() => {
                parts.extend([TREE_RECIPE, STATIC_RECIPE, layout])
            }
            (Some(id), true) => parts.extend([TREE_RECIPE, id.as_str()]),
            (Some(_), false) => parts.push(TREE_RECIPE),
            (None, _) => {}
        }
        for part in parts {
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
        let packaging = matches!(
            name.as_str(),
            "pyproject.toml" | "setup.cfg" | "setup.py" | super::declaration::FILE
        );
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
pub(super) mod tests {
    use super::*;

    /// A project of these declaring files (no folder on disk).
    pub(in crate::dependencies) fn project(files: &[(&str, &str)]) -> ProjectSource {
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
            tree_id: None,
            import_root: ImportRoot::Root,
            metadata: None,
            owner: None,
        }
    }

    #[test]
    fn a_project_with_only_tool_settings_declares_nothing() {
        let p = project(&[("pyproject.toml", "[tool.pytest.ini_options]\n")]);
        assert!(!p.installable());
        assert!(!p.declares_anything());
        assert_eq!(p.project_args(), None);
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
        assert_eq!(p.requirement_files(), ["requirements/test.txt"]);
        assert_eq!(
            p.project_args().unwrap(),
            [
                "--config-settings",
                "editable_mode=compat",
                "-e",
                ".[test,tests,testing]"
            ]
        );
        assert_eq!(p.build_requires().unwrap(), ["hatchling", "editables"]);
    }

    #[test]
    fn build_requirements_come_from_pyproject_or_default_to_setuptools() {
        let p = project(&[("setup.py", "from setuptools import setup; setup()")]);
        assert_eq!(p.build_requires().unwrap(), ["setuptools>=40.8.0", "wheel"]);
        let p = project(&[(
            "pyproject.toml",
            "[build-system]\nrequires = []\nbuild-backend = 'backend'\nbackend-path = ['.']\n",
        )]);
        assert!(p.build_requires().unwrap().is_empty());
        let p = project(&[("pyproject.toml", "[build-system]\nrequires = 'x'\n")]);
        assert!(p.build_requires().is_err());
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
    fn the_key_changes_with_any_declaring_byte_the_base_image_and_the_installation() {
        let a = project(&[("requirements.txt", "iniconfig==2.0.0\n")]);
        let b = project(&[("requirements.txt", "iniconfig==1.1.1\n")]);
        assert_eq!(a.key("i", "sha256:1"), a.key("i", "sha256:1"));
        assert_ne!(a.key("i", "sha256:1"), b.key("i", "sha256:1"));
        assert_ne!(a.key("i", "sha256:1"), a.key("i", "sha256:2"));
        assert_ne!(a.key("i", "sha256:1"), a.key("j", "sha256:1"));
    }

    #[test]
    fn an_installable_trees_key_is_its_whole_tree_a_requirements_only_trees_its_declaring_files() {
        let installable = project(&[("setup.py", "from setuptools import setup; setup()")]);
        let ann = installable.clone().of_tree(&"a".repeat(64));
        let bob = installable.clone().of_tree(&"b".repeat(64));
        assert_ne!(ann.key("i", "sha256:1"), bob.key("i", "sha256:1"));
        assert_ne!(ann.key("i", "sha256:1"), installable.key("i", "sha256:1"));
        let listing = project(&[("requirements.txt", "iniconfig==2.0.0\n")]);
        let ann = listing.clone().of_tree(&"a".repeat(64));
        let bob = listing.clone().of_tree(&"b".repeat(64));
        assert_eq!(ann.key("i", "sha256:1"), bob.key("i", "sha256:1"));
        assert_ne!(ann.key("i", "sha256:1"), listing.key("i", "sha256:1"));
    }

    #[test]
    fn a_static_trees_key_is_its_declaring_files_and_layout_and_pip_never_installs_it() {
        let pyproject = "[project]\nname = 'demo'\nversion = '1.0'\ndependencies = ['six']\n";
        let static_tree = project(&[("pyproject.toml", pyproject)]);
        let ann = static_tree
            .clone()
            .of_tree(&"a".repeat(64))
            .built_for("ann");
        let bob = static_tree
            .clone()
            .of_tree(&"b".repeat(64))
            .built_for("bob");
        assert_eq!(ann.key("i", "sha256:1"), bob.key("i", "sha256:1"));
        assert_eq!(ann.project_args(), None);
        assert!(ann.build_requires().unwrap().is_empty());
        assert_eq!(ann.written().unwrap().requires, ["six"]);
        assert_eq!(ann.prune_group(), "demo by ann");
        let mut src = static_tree.clone();
        src.import_root = ImportRoot::Src;
        let src = src.of_tree(&"a".repeat(64)).built_for("ann");
        assert_eq!(src.written().unwrap().import_root, ImportRoot::Src);
        assert_ne!(src.key("i", "sha256:1"), ann.key("i", "sha256:1"));
        // a dynamic version: pip installs it, keyed by the whole tree
        let dynamic = project(&[(
            "pyproject.toml",
            "[project]\nname = 'demo'\ndynamic = ['version']\n",
        )]);
        let ann = dynamic.clone().of_tree(&"a".repeat(64));
        let bob = dynamic.of_tree(&"b".repeat(64));
        assert_ne!(ann.key("i", "sha256:1"), bob.key("i", "sha256:1"));
        assert!(ann.project_args().is_some());
        // refused: the build fails with the reason, and says it
        let hostile = project(&[(
            "pyproject.toml",
            "[project]\nname = '../x'\nversion = '1.0'\n",
        )])
        .of_tree(&"a".repeat(64));
        assert!(hostile
            .refused_metadata()
            .unwrap()
            .contains("not a project name"));
        assert!(hostile.build_requires().is_err());
    }

    #[test]
    fn the_layout_is_src_when_a_src_folder_holds_the_code_and_the_root_does_not() {
        let dir = std::env::temp_dir().join(format!("te-layout-{:x}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("src/mathpkg")).unwrap();
        std::fs::write(dir.join("pyproject.toml"), "[project]\nname = 'math-pkg'\n").unwrap();
        let found = |dir: &Path| ProjectSource::discover("demo", dir).unwrap().import_root;
        assert_eq!(found(&dir), ImportRoot::Src);
        std::fs::write(dir.join("math_pkg.py"), "").unwrap();
        assert_eq!(
            found(&dir),
            ImportRoot::Root,
            "a module of its name at the root"
        );
        std::fs::remove_dir_all(dir.join("src")).unwrap();
        std::fs::remove_file(dir.join("math_pkg.py")).unwrap();
        assert_eq!(found(&dir), ImportRoot::Root);
        std::fs::remove_dir_all(dir).unwrap();
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
