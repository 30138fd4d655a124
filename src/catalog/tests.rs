//! The catalog's unit tests: finding, resolving and grouping test files, and
//! the conftest files a run takes.

use super::*;
use crate::error::AppError;

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
        .listing_blocking()
        .unwrap()
        .files()
        .iter()
        .map(|f| f.0.clone())
        .collect();
    assert_eq!(names, ["api/v2/test_orders.py", "b_test.py", "test_a.py"]);
}

#[test]
fn resolves_only_catalog_files() {
    let (_dir, catalog) = catalog_with(&["test_a.py", "api/test_b.py"]);
    let listing = catalog.listing_blocking().unwrap();
    let ok = listing.resolve(&[
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
        let err = listing.resolve(&[bad.to_string()]).unwrap_err();
        assert!(matches!(err, AppError::Invalid(_)), "{bad}");
    }
    assert!(listing.resolve(&[]).is_err());
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
        .read_for_run(&[TestFile("api/v2/test_c.py".into())])
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
    let listing = catalog.listing_blocking().unwrap();
    let groups = listing.groups();
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
    let one = listing.resolve(&["six/test_six.py".into()]).unwrap();
    assert_eq!(one.project.unwrap().markers, ["setup.py"]);
    let err = listing
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
    let listing = catalog.listing_blocking().unwrap();
    let projects = listing.projects();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].root, ".");
    assert_eq!(listing.files(), [TestFile("tests/test_a.py".into())]);
}

#[test]
fn symlinks_are_never_listed_nor_sent() {
    let (dir, catalog) = catalog_with(&["api/test_b.py", "secret/test_s.py"]);
    let root = dir.path();
    std::os::unix::fs::symlink(root.join("secret"), root.join("link")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("api/conftest.py")).unwrap();
    std::os::unix::fs::symlink(root.join("api/test_b.py"), root.join("test_l.py")).unwrap();
    let files = catalog.listing_blocking().unwrap().files();
    assert_eq!(
        files,
        [
            TestFile("api/test_b.py".into()),
            TestFile("secret/test_s.py".into())
        ]
    );
    let sent: Vec<String> = catalog
        .read_for_run(&[TestFile("api/test_b.py".into())])
        .unwrap()
        .into_iter()
        .map(|f| f.path)
        .collect();
    assert_eq!(sent, ["api/test_b.py"]);
    let refused = catalog.read_for_run(&[TestFile("link/test_s.py".into())]);
    assert!(refused.is_err());
}

/// A throwaway folder, removed on drop (keeps the dependency tree small).
mod tempdir {
    pub struct Dir(std::path::PathBuf);
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!("te-catalog-{}", rand::random::<u64>()));
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
