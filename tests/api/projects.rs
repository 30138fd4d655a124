//! Projects through the app: found by their markers, listed, one project per
//! run, the tree (less what must not go) in the container, pytest from the
//! project's root, and the cap on the tree.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    helpers::{browser, csrf_of, id, TestApp},
    sandbox::PROBES,
};

const MINUTE: Duration = Duration::from_secs(60);

/// A src-layout project whose tests check where pytest runs from, which
/// settings it read, and that the package, the root conftest and a
/// subprocess all import as in a checkout.
const SRC_LAYOUT: &[(&str, &str)] = &[
    (
        "calc/pyproject.toml",
        "[project]\nname = \"calc\"\nversion = \"1.0\"\n\n[tool.pytest.ini_options]\nmarkers = [\"arith: arithmetic\"]\n",
    ),
    ("calc/src/calc/__init__.py", "def add(a, b):\n    return a + b\n"),
    (
        "calc/conftest.py",
        "import pytest\n\n@pytest.fixture\ndef two():\n    return 2\n",
    ),
    ("calc/tests/helpers.py", "ANSWER = 42\n"),
    (
        "calc/tests/unit/test_calc.py",
        r#"import os, pathlib, subprocess, sys
import pytest
import calc

@pytest.mark.arith
def test_the_package_imports_from_src(two):
    assert calc.add(two, 2) == 4
    assert pathlib.Path(calc.__file__).parts[-3:] == ("src", "calc", "__init__.py")

def test_pytest_runs_from_the_project_root_with_its_settings(request):
    root = pathlib.Path(os.getcwd())
    assert (root / "pyproject.toml").is_file()
    assert request.config.rootpath == root
    assert request.config.inipath == root / "pyproject.toml"
    assert "arith: arithmetic" in request.config.getini("markers")

def test_the_root_is_importable_and_subprocesses_import_alike():
    from tests.helpers import ANSWER
    assert ANSWER == 42
    out = subprocess.run([sys.executable, "-c", "import calc; print(calc.add(1, 1))"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "2"
"#,
    ),
];

#[tokio::test]
async fn a_src_layout_project_runs_from_its_root_with_its_settings() {
    let app = TestApp::spawn_with(SRC_LAYOUT, |_| {}).await;
    let run = app.create_run(1, &["calc/tests/unit/test_calc.py"]).await;
    assert_eq!(run["project"], "calc", "{run}");
    let hashed_at_creation = run["tree_sha256"].clone();
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(
        run["tree_sha256"], hashed_at_creation,
        "the tree sent is the one hashed"
    );
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert_eq!(run["summary"]["passed"], 3, "{run}");
    let sha = run["tree_sha256"].as_str().unwrap();
    assert!(
        sha.len() == 64 && sha.chars().all(|c| c.is_ascii_hexdigit()),
        "{run}"
    );
    // Its `[project]` table makes it installable: it runs in its own
    // dependency image, installed as a development install would be.
    let image = run["image"].as_str().unwrap().to_owned();
    assert!(image.starts_with("te-deps/calc:"), "{run}");
    let page = app
        .get(&format!("/runs/{}", id(&run)))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Project") && page.contains(">calc<"),
        "the run page names the project"
    );
    assert!(
        page.contains(&sha[..12]) && page.contains(&image),
        "the run page shows the tree and the image"
    );
}

/// The files that must never reach the container, and one that must.
const IGNORED: &[(&str, &str)] = &[
    ("shop/setup.cfg", "[metadata]\nname = shop\n"),
    ("shop/.gitignore", "secrets.env\nfixtures/large/\n"),
    ("shop/secrets.env", "PASSWORD=hunter2\n"),
    ("shop/fixtures/large/blob.bin", "blob"),
    ("shop/fixtures/small.json", "{}"),
    ("shop/.git/config", "[core]\n"),
    ("shop/.git/objects/ab/cdef", "object"),
    ("shop/.venv/pyvenv.cfg", "home = /usr\n"),
    ("shop/env2/pyvenv.cfg", "home = /usr\n"),
    ("shop/env2/lib/site.py", ""),
    ("shop/build/lib/shop.py", ""),
    ("shop/dist/shop-1.0.tar.gz", ""),
    ("shop/shop.egg-info/PKG-INFO", ""),
    ("shop/node_modules/left-pad/index.js", ""),
    (
        "shop/tests/test_tree.py",
        r#"import os

def test_only_the_tree_that_should_go_is_here():
    here = set()
    for folder, dirs, files in os.walk("."):
        for f in files:
            here.add(os.path.relpath(os.path.join(folder, f), "."))
    assert here == {"setup.cfg", ".gitignore", "fixtures/small.json", "tests/test_tree.py"}, here
"#,
    ),
];

#[tokio::test]
async fn gitignored_files_git_virtualenvs_and_build_outputs_never_reach_the_container() {
    let app = TestApp::spawn_with(IGNORED, |_| {}).await;
    let run = app.create_run(1, &["shop/tests/test_tree.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert!(!logs.contains("hunter2"), "{logs}");
}

#[tokio::test]
async fn a_tree_over_the_cap_is_refused_with_a_422_that_says_so() {
    let big = "x".repeat(40 * 1024);
    let files = [
        ("big/pyproject.toml", ""),
        ("big/data/blob.txt", big.as_str()),
        ("big/test_big.py", "def test_ok():\n    pass\n"),
        // the same blob, but .gitignore'd: it does not count
        ("fits/pyproject.toml", ""),
        ("fits/.gitignore", "data/\n"),
        ("fits/data/blob.txt", big.as_str()),
        ("fits/test_fits.py", "def test_ok():\n    pass\n"),
        ("many/setup.py", ""),
        ("many/test_many.py", "def test_ok():\n    pass\n"),
        ("many/a.py", ""),
        ("many/b.py", ""),
        ("many/c.py", ""),
    ];
    let app = TestApp::spawn_with(&files, |c| {
        c.project_cap_bytes = 32 * 1024;
        c.project_cap_files = 4;
    })
    .await;
    let response = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 1, "files": ["many/test_many.py"]}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("5 files") && error.contains("PROJECT_CAP_FILES"),
        "{error}"
    );
    let response = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 1, "files": ["big/test_big.py"]}),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("project big")
            && error.contains("over the cap")
            && error.contains("PROJECT_CAP_BYTES"),
        "{error}"
    );
    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "ann"),
        ("environment_id", "1"),
        ("files", "big/test_big.py"),
    ];
    let page = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 422);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("PROJECT_CAP_BYTES") && page.contains("Username"),
        "the form says so"
    );
    assert_eq!(app.count_runs().await, 0, "nothing written");
    let run = app.create_run(1, &["fits/test_fits.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(run["status"], "success", "{run}");
}

#[tokio::test]
async fn a_run_takes_the_files_of_one_project_only() {
    let files = [
        ("one/setup.py", ""),
        ("one/test_one.py", "def test_ok():\n    pass\n"),
        ("two/tox.ini", ""),
        ("two/test_two.py", "def test_ok():\n    pass\n"),
    ];
    let app = TestApp::spawn_with(&files, |c| c.no_executor = true).await;
    for pair in [
        ["one/test_one.py", "two/test_two.py"],
        ["one/test_one.py", "test_math.py"],
    ] {
        let response = app
            .post_json(
                "/api/v1/runs",
                &json!({"username": "ann", "environment_id": 1, "files": pair}),
            )
            .await;
        assert_eq!(response.status(), 422, "{pair:?}");
        let body: Value = response.json().await.unwrap();
        let error = body["error"].as_str().unwrap();
        assert!(
            error.contains("one project") && error.contains("project one"),
            "{error}"
        );
    }
    let outside = app.create_run(1, &["test_math.py"]).await;
    assert!(
        outside["project"].is_null() && outside["tree_sha256"].is_null(),
        "{outside}"
    );
}

#[tokio::test]
async fn projects_are_listed_by_the_api_and_the_projects_page() {
    let files = [
        ("libs/six/setup.py", ""),
        ("libs/six/setup.cfg", ""),
        ("libs/six/test_six.py", "def test_ok():\n    pass\n"),
        ("libs/six/docs/requirements.txt", ""),
        ("libs/six/docs/test_docs.py", "def test_ok():\n    pass\n"),
        ("app/requirements-test.txt", ""),
        ("app/app/tests/test_views.py", "def test_ok():\n    pass\n"),
    ];
    let app = TestApp::spawn_with(&files, |c| c.no_executor = true).await;
    let projects = app.get_json("/api/v1/projects").await;
    assert_eq!(
        projects,
        json!([
            {"name": "app", "root": "app", "markers": ["requirements-test.txt"], "files": 1,
             "dependency_image": null},
            {"name": "libs/six", "root": "libs/six", "markers": ["setup.cfg", "setup.py"], "files": 2,
             "dependency_image": null},
            // the sample application (sample-tests/notes_app)
            {"name": "notes_app", "root": "notes_app", "markers": ["pytest.ini", "requirements.txt", "test-executor.toml"],
             "files": 1, "dependency_image": null},
        ])
    );
    let files = app.get_json("/api/v1/test-files").await;
    let six = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "libs/six/test_six.py")
        .unwrap();
    assert_eq!(six["project"], "libs/six");
    let page = app.get("/projects").await.text().await.unwrap();
    assert!(page.contains("href=\"/projects\""), "linked from the nav");
    assert!(page.contains("data-project=\"libs/six\"") && page.contains("requirements-test.txt"));
    let form = app.get("/runs/new").await.text().await.unwrap();
    assert!(
        form.contains("Project libs/six") && form.contains("Outside any project"),
        "the picker groups by project"
    );
}

#[tokio::test]
async fn a_tests_folder_with_a_marker_is_one_project_run_from_its_root() {
    let dir = std::env::temp_dir().join(format!("te-proj-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(dir.join("tests")).unwrap();
    std::fs::write(
        dir.join("pytest.ini"),
        "[pytest]\nmarkers =\n    slowish: slow\n",
    )
    .unwrap();
    std::fs::write(dir.join("mod.py"), "VALUE = 7\n").unwrap();
    std::fs::write(
        dir.join("tests/test_mod.py"),
        "import mod\n\ndef test_value(request):\n    assert mod.VALUE == 7\n    assert request.config.inipath.name == 'pytest.ini'\n",
    )
    .unwrap();
    let tests_dir = dir.clone();
    let app = TestApp::spawn_with(&[], move |c| c.tests_dir = tests_dir).await;
    let projects = app.get_json("/api/v1/projects").await;
    assert_eq!(projects[0]["root"], ".", "{projects}");
    assert_eq!(projects.as_array().unwrap().len(), 1, "{projects}");
    let run = app.create_run(1, &["tests/test_mod.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn the_sandbox_probes_pass_inside_a_project_run() {
    let files = [
        (
            "probed/pyproject.toml",
            "[project]\nname = \"probed\"\nversion = \"1.0\"\n",
        ),
        ("probed/tests/test_sandbox.py", PROBES),
    ];
    let app = TestApp::spawn_with(&files, |_| {}).await;
    let run = app.create_run(7, &["probed/tests/test_sandbox.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    let logs = app.log_text(id(&run)).await.join("\n");
    assert_eq!(run["status"], "success", "{run}\n{logs}");
    assert_eq!(run["project"], "probed");
    assert!(logs.contains("6 passed"), "{logs}");
}
