//! The walk's unit tests: what a tree leaves out, the `.gitignore` rules as
//! git applies them, and ignore files that are not regular files.

use super::*;

fn tree_with(files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("te-walk-{:016x}", rand::random::<u64>()));
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn names(dir: &Path) -> Vec<String> {
    walk(dir).unwrap().into_iter().map(|(p, _)| p).collect()
}

#[test]
fn the_tree_leaves_out_vcs_caches_builds_virtualenvs_and_gitignored_files() {
    let dir = tree_with(&[
        ("setup.py", ""),
        ("pkg/__init__.py", ""),
        ("pkg/tests/test_a.py", ""),
        (".gitignore", "*.log\nsecrets/\n"),
        ("debug.log", "x"),
        ("secrets/key.txt", "x"),
        (".git/config", "x"),
        ("pkg/__pycache__/a.pyc", "x"),
        ("build/lib/pkg.py", "x"),
        ("dist/pkg.tar.gz", "x"),
        ("pkg.egg-info/PKG-INFO", "x"),
        ("node_modules/x.js", "x"),
        ("env/pyvenv.cfg", "x"),
        ("env/lib/site.py", "x"),
        (".te/meta.json", "x"),
        (".coveragerc", ""),
    ]);
    let names = names(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        names,
        [
            ".coveragerc",
            ".gitignore",
            "pkg/__init__.py",
            "pkg/tests/test_a.py",
            "setup.py"
        ]
    );
}

#[test]
fn a_deeper_gitignore_adds_rules_and_can_take_one_back() {
    let dir = tree_with(&[
        (".gitignore", "*.dat\n/top_only.txt\n"),
        ("top_only.txt", "x"),
        ("a/top_only.txt", "x"),
        ("a/.gitignore", "!keep.dat\nlocal/\n"),
        ("a/keep.dat", "x"),
        ("a/drop.dat", "x"),
        ("a/local/x.py", "x"),
        ("b/drop.dat", "x"),
        ("b/local/x.py", "x"),
    ]);
    let names = names(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        names,
        [
            ".gitignore",
            "a/.gitignore",
            "a/keep.dat",
            "a/top_only.txt",
            "b/local/x.py"
        ]
    );
}

#[test]
fn a_gitignore_that_is_a_symlink_a_fifo_or_too_large_is_left_unread() {
    let dir = tree_with(&[
        ("zero/test_z.py", ""),
        ("fifo/test_f.py", ""),
        ("big/test_b.py", ""),
    ]);
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero/.gitignore")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(dir.join("fifo/.gitignore"))
        .status()
        .unwrap();
    assert!(made.success());
    let huge = "*.py\n".repeat(MAX_IGNORE_BYTES as usize / 5 + 1);
    std::fs::write(dir.join("big/.gitignore"), huge).unwrap();
    let names = names(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    // neither the symlink nor the FIFO is a file of the tree; the large
    // file is sent, but its rules do not apply
    assert_eq!(
        names,
        [
            "big/.gitignore",
            "big/test_b.py",
            "fifo/test_f.py",
            "zero/test_z.py"
        ]
    );
}

/// The same files as the `ignore` crate's own walker lists, on a tree whose
/// ignore files are plain files.
#[test]
fn the_walk_agrees_with_the_ignore_crates_walker_on_a_benign_tree() {
    let dir = tree_with(&[
        (
            ".gitignore",
            "*.dat\n/top_only.txt\n# comment\n\\#hash.txt\ndocs/*.md\n",
        ),
        ("#hash.txt", "x"),
        ("top_only.txt", "x"),
        ("docs/a.md", "x"),
        ("docs/b.rst", "x"),
        ("a/top_only.txt", "x"),
        ("a/.gitignore", "!keep.dat\nlocal/\n*.txt\n"),
        ("a/keep.dat", "x"),
        ("a/x.txt", "x"),
        ("a/local/x.py", "x"),
        ("sub/.git/HEAD", "x"),
        ("sub/.gitignore", "!*.dat\n"),
        ("sub/inner.dat", "x"),
        ("b/drop.dat", "x"),
    ]);
    let mut builder = ignore::WalkBuilder::new(&dir);
    builder
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .filter_entry(|e| e.file_name() != ".git");
    let mut theirs: Vec<String> = builder
        .build()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_some_and(|t| t.is_file()))
        .map(|e| relative_utf8(&dir, e.path()).unwrap())
        .collect();
    theirs.sort();
    let ours = names(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(ours, theirs);
    assert!(ours.contains(&"sub/inner.dat".to_owned()), "{ours:?}");
}
