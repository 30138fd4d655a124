//! A tree whose `pyproject.toml` states all its metadata is not installed
//! by pip: its image holds its declared dependencies and the install the
//! server wrote (a `.pth` to the run's tree, a dist-info), none of its
//! files, so changed code reuses the image, and so does another sender's
//! tree of the same name. A tree whose version is computed keeps an image
//! per content (`trees_poison.rs` says why).

use crate::helpers::TestApp;
use crate::trees::{checkout, client_in, count, last_run, SUBMIT};

const STATIC: &str = "[build-system]\nrequires = [\"hatchling\"]\n\
build-backend = \"hatchling.build\"\n\n\
[project]\nname = \"mathproj\"\nversion = \"0.4.2\"\n\
dependencies = [\"iniconfig==2.0.0\"]\n\n\
[project.scripts]\nmathy = \"mathpkg:main\"\n";

/// The install is the server's: the metadata, the entry point, the code
/// from the run's own tree, the dependency installed.
const METADATA_TEST: &str = "import importlib.metadata, importlib.util, shutil\n\
import iniconfig, mathpkg\n\n\
def test_the_metadata_is_installed():\n    \
assert importlib.metadata.version('mathproj') == '0.4.2'\n    \
names = [e.name for e in importlib.metadata.entry_points(group='console_scripts')]\n    \
assert 'mathy' in names\n    \
assert shutil.which('mathy') == '/opt/venv/bin/mathy'\n\n\
def test_the_code_is_the_runs_tree():\n    \
assert mathpkg.__file__ == '/tmp/work/src/mathpkg/__init__.py'\n";

const FIXED: &str = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n\n\
def main():\n    return 0\n";

fn static_tree() -> std::path::PathBuf {
    let dir = checkout();
    std::fs::write(dir.join("pyproject.toml"), STATIC).unwrap();
    std::fs::write(dir.join("tests/test_meta.py"), METADATA_TEST).unwrap();
    dir
}

/// Each build's seconds, oldest first.
async fn build_seconds(app: &TestApp) -> Vec<f64> {
    sqlx::query_scalar(
        "select extract(epoch from finished_at - started_at)::float8 from dependency_images \
         order by started_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_static_trees_changed_code_reuses_its_image_and_runs_the_new_code() {
    let app = TestApp::spawn().await;
    let dir = static_tree();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(1), "sub is wrong: {stdout}\n{stderr}");
    assert!(stdout.contains("test_subtracts"), "{stdout}");
    let first = last_run(&app).await;
    assert_eq!(first["summary"]["passed"], 3, "{first}");
    let image = first["image"].as_str().unwrap().to_owned();
    assert!(image.starts_with("te-deps/tree-mathproj:"), "{first}");
    println!("the first build took {:?} s", build_seconds(&app).await);

    std::fs::write(dir.join("src/mathpkg/__init__.py"), FIXED).unwrap();
    let started = std::time::Instant::now();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    println!(
        "the code-only change ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(code, Some(0), "the changed code runs: {stdout}\n{stderr}");
    let second = last_run(&app).await;
    assert_ne!(second["tree_id"], first["tree_id"]);
    assert_eq!(second["image"], image.as_str(), "{second}");
    assert_eq!(count(&app, "dependency_images").await, 1, "built once");

    // bob's tree of the same name and declaring files, other code: the
    // same image, which holds nothing of ann's, and his code runs.
    let bob = dir.parent().unwrap().join("bob/mathproj");
    std::fs::create_dir_all(bob.parent().unwrap()).unwrap();
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&dir)
        .arg(&bob)
        .status()
        .unwrap();
    assert!(copied.success());
    let broken = "def add(a, b):\n    return 5\n\ndef sub(a, b):\n    return a - b\n";
    std::fs::write(bob.join("src/mathpkg/__init__.py"), broken).unwrap();
    let bobs = ["submit", "--user", "bob", "--env", "2", "--tree", "."];
    let (code, stdout, stderr) = client_in(&app, &bob, &bobs).await;
    assert_eq!(code, Some(1), "bob's own code runs: {stdout}\n{stderr}");
    assert!(stdout.contains("test_adds"), "{stdout}");
    let third = last_run(&app).await;
    assert_eq!(third["image"], image.as_str(), "{third}");
    assert_eq!(count(&app, "dependency_images").await, 1, "built once");
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

const DYNAMIC: &str = "[build-system]\nrequires = [\"setuptools>=61\"]\n\
build-backend = \"setuptools.build_meta\"\n\n\
[project]\nname = \"mathproj\"\ndynamic = [\"version\"]\n\n\
[tool.setuptools.dynamic]\nversion = {attr = \"mathpkg.VERSION\"}\n";

#[tokio::test]
async fn a_tree_whose_version_is_computed_keeps_an_image_per_content() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    std::fs::write(dir.join("pyproject.toml"), DYNAMIC).unwrap();
    let code = |body: &str| format!("VERSION = '1.0'\n{body}");
    let failing = std::fs::read_to_string(dir.join("src/mathpkg/__init__.py")).unwrap();
    std::fs::write(dir.join("src/mathpkg/__init__.py"), code(&failing)).unwrap();
    let (status, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(status, Some(1), "{stdout}\n{stderr}");
    let first = last_run(&app).await;
    std::fs::write(dir.join("src/mathpkg/__init__.py"), code(FIXED)).unwrap();
    let (status, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(status, Some(0), "{stdout}\n{stderr}");
    let second = last_run(&app).await;
    assert_ne!(
        second["image"], first["image"],
        "pip ran the tree's code: its image is its own"
    );
    assert_eq!(count(&app, "dependency_images").await, 2);
    println!(
        "per content, each build took {:?} s",
        build_seconds(&app).await
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_static_tree_with_a_hostile_name_is_refused_before_it_queues() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    let hostile = STATIC.replace("name = \"mathproj\"", "name = \"../../etc/x\"");
    std::fs::write(dir.join("pyproject.toml"), hostile).unwrap();
    let (status, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_ne!(status, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("is not a project name"),
        "the refusal names the key: {stdout}\n{stderr}"
    );
    assert_eq!(app.count_runs().await, 0);
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}
