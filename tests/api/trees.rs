//! Trees a client sends (`submit --tree DIR`), the real client binary
//! against the real server: a working copy runs as a project, only changed
//! contents go up the second time, its dependency image is reused, and
//! symlinks and FIFOs are stripped by the client, never followed. The
//! server's refusals are in `trees_refusals.rs`, the browser's upload in
//! `trees_upload.rs`; the helpers here serve all three.

use std::{path::Path, process::Output, time::Duration};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{browser, csrf_of, id, TestApp};

const FAILING: &str = "from mathpkg import add, sub\n\n\
def test_adds():\n    assert add(2, 2) == 4\n\n\
def test_subtracts():\n    assert sub(5, 3) == 2\n";

pub(crate) const SUBMIT: &[&str] = &["submit", "--user", "ann", "--env", "1", "--tree", "."];

/// A small project: a package under `src/`, tests under `tests/`, one
/// failing test (`sub` is wrong), plus what must not be sent.
pub(crate) fn checkout() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("te-tree-{:016x}/mathproj", rand::random::<u64>()));
    let files: &[(&str, &str)] = &[
        ("pytest.ini", "[pytest]\ntestpaths = tests\n"),
        (
            "src/mathpkg/__init__.py",
            "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a + b\n",
        ),
        ("tests/test_math.py", FAILING),
        (".gitignore", "*.log\n"),
        ("debug.log", "not sent\n"),
        (".venv/pyvenv.cfg", "home = /usr\n"),
        (".venv/lib/junk.py", "not sent\n"),
    ];
    for (path, content) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git")
            .args(args)
            .current_dir(&dir)
            .env("GIT_AUTHOR_NAME", "ann")
            .env("GIT_AUTHOR_EMAIL", "ann@example.invalid")
            .env("GIT_COMMITTER_NAME", "ann")
            .env("GIT_COMMITTER_EMAIL", "ann@example.invalid")
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "start"]);
    dir
}

/// Runs the client binary in `dir` with `args` against `app`.
pub(crate) async fn client_in(
    app: &TestApp,
    dir: &Path,
    args: &[&str],
) -> (Option<i32>, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("TEST_EXECUTOR_URL", &app.address)
        .kill_on_drop(true);
    let output: Output = tokio::time::timeout(Duration::from_secs(180), command.output())
        .await
        .expect("the client ended within 3 minutes")
        .expect("running the client");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) async fn last_run(app: &TestApp) -> Value {
    let runs = app.get_json("/api/v1/runs?limit=1").await;
    runs[0].clone()
}

pub(crate) async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

pub(crate) fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    let mut names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub(crate) fn entry(path: &str, mode: u32, content: &[u8]) -> Value {
    json!({
        "path": path,
        "mode": mode,
        "sha256": format!("{:x}", Sha256::digest(content)),
        "size": content.len(),
    })
}

pub(crate) async fn upload(app: &TestApp, content: &[u8]) -> reqwest::Response {
    let sha = format!("{:x}", Sha256::digest(content));
    app.client
        .put(app.url(&format!("/api/v1/blobs/{sha}?username=ann")))
        .header("content-type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_working_copy_fails_then_passes_and_the_second_send_costs_only_the_changed_file() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test_subtracts"),
        "the failure is named: {stdout}"
    );
    let first = last_run(&app).await;
    assert_eq!(first["project"], "tree:mathproj", "{first}");
    assert_eq!(first["files"], json!(["tests/test_math.py"]), "{first}");
    let tree_id = first["tree_id"].as_str().unwrap().to_owned();
    let tree = app.get_json(&format!("/api/v1/trees/{tree_id}")).await;
    assert_eq!(tree["username"], "ann", "{tree}");
    assert_eq!(
        tree["files"], 4,
        "ignored, VCS and venv files stay home: {tree}"
    );
    assert_eq!(tree["received_bytes"], tree["bytes"], "{tree}");
    assert!(
        stderr.contains(&format!("the server received {} new bytes", tree["bytes"])),
        "{stderr}"
    );

    // The fix, made locally: only that file's content goes up.
    let fixed = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n";
    std::fs::write(dir.join("src/mathpkg/__init__.py"), fixed).unwrap();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let second = last_run(&app).await;
    let second_tree = second["tree_id"].as_str().unwrap();
    assert_ne!(second_tree, tree_id);
    let tree = app.get_json(&format!("/api/v1/trees/{second_tree}")).await;
    assert_eq!(
        tree["received_bytes"],
        fixed.len(),
        "only the changed file: {tree}"
    );
    assert!(
        stderr.contains(&format!("sent {} bytes in 1 files", fixed.len())),
        "{stderr}"
    );

    // Unchanged: nothing goes up; the tree is the same.
    let (code, _, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("sent 0 bytes in 0 files"), "{stderr}");
    assert_eq!(last_run(&app).await["tree_id"], second_tree);

    // The run's page says where its files came from; the tree downloads.
    let page = app
        .get(&format!("/runs/{}", id(&second)))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("sent by ann"), "{page}");
    let tar = app.get(&format!("/api/v1/trees/{second_tree}/tar")).await;
    assert_eq!(tar.status(), 200);
    let names = tar_names(&tar.bytes().await.unwrap());
    assert_eq!(
        names,
        [
            "mathproj/.gitignore",
            "mathproj/pytest.ini",
            "mathproj/src/mathpkg/__init__.py",
            "mathproj/tests/test_math.py"
        ]
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn symlinks_and_fifos_are_stripped_by_the_client_never_followed() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    std::fs::write(
        dir.join("src/mathpkg/__init__.py"),
        "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.join("tests/passwd.py")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.join("etc")).unwrap();
    let fifo = std::process::Command::new("mkfifo")
        .arg(dir.join("tests/pipe.py"))
        .status()
        .unwrap();
    assert!(fifo.success());
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let tree_id = last_run(&app).await["tree_id"].as_str().unwrap().to_owned();
    let tar = app.get(&format!("/api/v1/trees/{tree_id}/tar")).await;
    let names = tar_names(&tar.bytes().await.unwrap());
    assert!(
        !names
            .iter()
            .any(|n| n.contains("passwd") || n.contains("pipe") || n.contains("etc/")),
        "{names:?}"
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn changed_code_with_the_same_requirements_reuses_the_trees_dependency_image() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    // A tree that installs itself has an image of its own per content
    // (`trees_poison.rs`); one that lists requirements shares it.
    std::fs::write(dir.join("requirements.txt"), "iniconfig==2.0.0\n").unwrap();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let first = last_run(&app).await;
    let image = first["image"].as_str().unwrap().to_owned();
    assert!(image.starts_with("te-deps/tree-mathproj:"), "{first}");

    let fixed = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n";
    std::fs::write(dir.join("src/mathpkg/__init__.py"), fixed).unwrap();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    let second = last_run(&app).await;
    assert_ne!(second["tree_id"], first["tree_id"]);
    assert_eq!(
        second["image"],
        image.as_str(),
        "the same declaring files, the same image"
    );
    assert_eq!(count(&app, "dependency_images").await, 1, "built once");

    // "Run again" on the page sends the same tree.
    let page = app
        .get(&format!("/runs/{}", id(&second)))
        .await
        .text()
        .await
        .unwrap();
    let tree_id = second["tree_id"].as_str().unwrap();
    assert!(
        page.contains(&format!("name=\"tree_id\" value=\"{tree_id}\"")),
        "Run again keeps the tree: {page}"
    );
    let browser = browser();
    let csrf = csrf_of(&app, &browser, &format!("/runs/{}", id(&second))).await;
    let form = [
        ("_csrf", csrf.as_str()),
        ("username", "bob"),
        ("environment_id", "2"),
        ("files", "tests/test_math.py"),
        ("tree_id", tree_id),
    ];
    let response = browser
        .post(app.url("/runs"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let again = last_run(&app).await;
    assert_eq!(again["tree_id"], tree_id, "{again}");
    let again = app.wait_finished(id(&again), Duration::from_secs(60)).await;
    assert_eq!(again["status"], "success", "{again}");

    // The same project in the server's tests folder never shares the
    // tree's image (a tree runs its own install code): its own key, its own
    // pruning.
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&dir)
        .arg(app.tests_dir.join("mathproj"))
        .status()
        .unwrap();
    assert!(status.success());
    let catalog = app.create_run(3, &["mathproj/tests/test_math.py"]).await;
    let catalog = app
        .wait_finished(id(&catalog), Duration::from_secs(300))
        .await;
    assert_eq!(catalog["status"], "success", "{catalog}");
    assert_eq!(catalog["project"], "mathproj", "{catalog}");
    assert_ne!(catalog["image"], image.as_str(), "{catalog}");
    let projects: Vec<String> =
        sqlx::query_scalar("select project from dependency_images order by project")
            .fetch_all(&app.db)
            .await
            .unwrap();
    assert_eq!(projects, ["mathproj", "tree:mathproj"]);
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

/// The bench, by hand (`--run-ignored only`): `submit --tree .` of
/// a 5,000-file tree, first and second time, against `rsync` of the same
/// tree to a local folder plus a catalog run. Prints the figures.
#[tokio::test]
#[ignore]
async fn bench_a_5000_file_tree_sent_twice() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    let fixed = "def add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n";
    std::fs::write(dir.join("src/mathpkg/__init__.py"), fixed).unwrap();
    for i in 0..5_000 {
        let path = dir.join(format!("src/mathpkg/gen/m{:02}/mod_{i:04}.py", i % 50));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, format!("VALUE = {i}\n# {}\n", "x".repeat(i % 2000))).unwrap();
    }
    for round in ["first", "second"] {
        let started = std::time::Instant::now();
        let (code, _, stderr) = client_in(&app, &dir, SUBMIT).await;
        assert_eq!(code, Some(0), "{stderr}");
        let line = stderr
            .lines()
            .find(|l| l.starts_with("tree "))
            .unwrap_or_default()
            .to_owned();
        println!(
            "BENCH submit --tree ({round}): {:?} — {line}",
            started.elapsed()
        );
    }
    // into the server's tests folder: the catalog run is of the same project
    let target = app.tests_dir.join("mathproj");
    let started = std::time::Instant::now();
    // rsync where installed, else a plain copy (what rsync does the first time)
    let rsync = std::process::Command::new("rsync")
        .args(["-a", "--delete", "--exclude", ".git", "--exclude", ".venv"])
        .arg(format!("{}/", dir.display()))
        .arg(&target)
        .status()
        .or_else(|_| {
            std::process::Command::new("cp")
                .arg("-a")
                .arg(&dir)
                .arg(&target)
                .status()
        });
    let rsync_time = started.elapsed();
    let started = std::time::Instant::now();
    let run = app.create_run(1, &["mathproj/tests/test_math.py"]).await;
    app.wait_finished(id(&run), Duration::from_secs(60)).await;
    println!(
        "BENCH rsync {:?} ({rsync:?}) + a catalog run {:?}",
        rsync_time,
        started.elapsed()
    );
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}
