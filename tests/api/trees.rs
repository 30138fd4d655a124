//! Trees a client sends (`submit --tree DIR`), the real client binary
//! against the real server: a working copy runs as a project, only changed
//! contents go up the second time, hostile trees are stripped by the client
//! and refused by the server, and every refusal writes nothing.

use std::{path::Path, process::Output, time::Duration};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{browser, csrf_of, id, TestApp};

const FAILING: &str = "from mathpkg import add, sub\n\n\
def test_adds():\n    assert add(2, 2) == 4\n\n\
def test_subtracts():\n    assert sub(5, 3) == 2\n";

/// A small project: a package under `src/`, tests under `tests/`, one
/// failing test (`sub` is wrong), plus what must not be sent.
fn checkout() -> std::path::PathBuf {
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
async fn client_in(app: &TestApp, dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
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

const SUBMIT: &[&str] = &["submit", "--user", "ann", "--env", "1", "--tree", "."];

async fn last_run(app: &TestApp) -> Value {
    let runs = app.get_json("/api/v1/runs?limit=1").await;
    runs[0].clone()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn tar_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = tar::Archive::new(bytes);
    let mut names: Vec<String> = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
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
    assert_eq!(first["project"], "mathproj", "{first}");
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

fn entry(path: &str, mode: u32, content: &[u8]) -> Value {
    json!({
        "path": path,
        "mode": mode,
        "sha256": format!("{:x}", Sha256::digest(content)),
        "size": content.len(),
    })
}

async fn upload(app: &TestApp, content: &[u8]) -> reqwest::Response {
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
async fn hand_made_manifests_with_traversal_links_or_devices_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let ok = b"def test_ok():\n    pass\n";
    assert_eq!(upload(&app, ok).await.status(), 201);
    for (bad, mode) in [
        ("../escape.py", 0o100644),
        ("/etc/passwd", 0o100644),
        ("a//test_x.py", 0o100644),
        ("a/./test_x.py", 0o100644),
        (".te/meta.json", 0o100644),
        ("passwd.py", 0o120777),
        ("pipe.py", 0o010644),
        ("dev.py", 0o020644),
    ] {
        let manifest = json!({"username": "ann", "name": "evil",
            "files": [entry("test_ok.py", 0o100644, ok), entry(bad, mode, ok)]});
        for path in ["/api/v1/trees/missing", "/api/v1/trees"] {
            let response = app.post_json(path, &manifest).await;
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            assert_eq!(status, 422, "{bad} at {path}: {body}");
            assert!(
                body["error"].as_str().unwrap().contains("refused"),
                "{body}"
            );
        }
    }
    assert_eq!(count(&app, "trees").await, 0);
    assert_eq!(count(&app, "tree_files").await, 0);
}

#[tokio::test]
async fn a_tree_over_a_cap_is_refused_with_the_cap_named() {
    let app = TestApp::spawn_with(&[], |c| {
        c.project_cap_files = 3;
        c.project_cap_bytes = 1000;
    })
    .await;
    let dir = checkout();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("PROJECT_CAP_FILES") && stderr.contains("413"),
        "{stderr}"
    );
    let big = vec![b'x'; 2000];
    let manifest =
        json!({"username": "ann", "name": "big", "files": [entry("big.py", 0o100644, &big)]});
    let response = app.post_json("/api/v1/trees/missing", &manifest).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("PROJECT_CAP_BYTES"),
        "{body}"
    );
    let response = upload(&app, &big).await;
    assert_eq!(response.status(), 413, "a content over the cap is not read");
    assert_eq!(count(&app, "tree_blobs").await, 0);
    assert_eq!(count(&app, "trees").await, 0);
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn bad_hashes_unknown_trees_and_missing_contents_get_a_clear_4xx_and_write_nothing() {
    let app = TestApp::spawn().await;
    let content = b"def test_ok():\n    pass\n";
    let wrong = format!("{:x}", Sha256::digest(b"something else"));
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{wrong}?username=ann")))
        .header("content-type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("nothing was stored"),
        "{body}"
    );
    let response = app
        .client
        .put(app.url("/api/v1/blobs/not-a-hash?username=ann"))
        .header("content-type", "application/octet-stream")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{wrong}?username=ann")))
        .header("content-type", "text/plain")
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415, "only octets or JSON");
    assert_eq!(count(&app, "tree_blobs").await, 0);

    // A tree whose contents were never uploaded.
    let manifest =
        json!({"username": "ann", "name": "t", "files": [entry("test_ok.py", 0o100644, content)]});
    let missing: Value = app
        .post_json("/api/v1/trees/missing", &manifest)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(missing["missing"].as_array().unwrap().len(), 1, "{missing}");
    let response = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("not uploaded"),
        "{body}"
    );
    assert_eq!(count(&app, "trees").await, 0);

    // Unknown trees.
    for tree in ["f".repeat(64), "../../etc".to_owned()] {
        let response = app
            .post_json(
                "/api/v1/runs",
                &json!({"username": "ann", "environment_id": 1, "tree_id": tree}),
            )
            .await;
        assert_eq!(response.status(), 404, "{tree}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("no tree"),
            "{body}"
        );
    }
    assert_eq!(
        app.get(&format!("/api/v1/trees/{}", "0".repeat(64)))
            .await
            .status(),
        404
    );
    assert_eq!(app.count_runs().await, 0);

    // Uploaded, then made and run by id: the API's own path.
    assert_eq!(upload(&app, content).await.status(), 201);
    let response = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["tree"]["received_bytes"],
        content.len(),
        "{created}"
    );
    let again = app.post_json("/api/v1/trees", &manifest).await;
    assert_eq!(again.status(), 200, "the same tree again is the one stored");
    let tree_id = created["tree"]["id"].as_str().unwrap();
    let response = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "bob", "environment_id": 2, "tree_id": tree_id}),
        )
        .await;
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["files"], json!(["test_ok.py"]), "{run}");
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");
}

#[tokio::test]
async fn changed_code_with_the_same_dependencies_reuses_the_trees_dependency_image() {
    let app = TestApp::spawn().await;
    let dir = checkout();
    let pyproject = "[project]\nname = \"mathproj\"\nversion = \"1.0\"\n";
    std::fs::write(dir.join("pyproject.toml"), pyproject).unwrap();
    let (code, stdout, stderr) = client_in(&app, &dir, SUBMIT).await;
    assert_eq!(code, Some(1), "{stdout}\n{stderr}");
    let first = last_run(&app).await;
    let image = first["image"].as_str().unwrap().to_owned();
    assert!(image.starts_with("te-deps/mathproj:"), "{first}");

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
    std::fs::remove_dir_all(dir.parent().unwrap()).unwrap();
}

/// A multipart body as a browser's form sends it.
fn multipart(fields: &[(&str, &str)], archive: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--BOUNDARY\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(
        b"--BOUNDARY\r\nContent-Disposition: form-data; name=\"archive\"; filename=\"up.tar.gz\"\r\n\
Content-Type: application/gzip\r\n\r\n",
    );
    body.extend_from_slice(archive);
    body.extend_from_slice(b"\r\n--BOUNDARY--\r\n");
    body
}

#[tokio::test]
async fn a_browser_uploads_a_tar_gz_on_the_new_run_page_and_it_runs_without_its_symlink() {
    let app = TestApp::spawn().await;
    let mut tar = tar::Builder::new(Vec::new());
    for (path, content) in [
        ("up/pytest.ini", "[pytest]\n"),
        ("up/tests/test_up.py", "def test_up():\n    assert True\n"),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        tar.append_data(&mut header, path, content.as_bytes())
            .unwrap();
    }
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, "up/tests/test_passwd.py", "/etc/passwd")
        .unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &tar.into_inner().unwrap()).unwrap();
    let archive = gz.finish().unwrap();

    let browser = browser();
    let csrf = csrf_of(&app, &browser, "/runs/new").await;
    let send = |fields: Vec<(&'static str, String)>, archive: Vec<u8>| {
        let fields: Vec<(&str, String)> = fields;
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser
            .post(app.url("/runs/upload"))
            .header("content-type", "multipart/form-data; boundary=BOUNDARY")
            .body(multipart(&pairs, &archive))
            .send()
    };
    let fields = vec![
        ("_csrf", csrf.clone()),
        ("username", "ann".into()),
        ("environment_id", "4".into()),
    ];
    let response = send(fields.clone(), archive).await.unwrap();
    assert_eq!(response.status(), 303, "{:?}", response.text().await);
    let run = last_run(&app).await;
    assert_eq!(run["project"], "up", "{run}");
    assert_eq!(
        run["files"],
        json!(["tests/test_up.py"]),
        "the symlink is left out: {run}"
    );
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");

    // Garbage, and a form without its token: refused, nothing written.
    let runs = app.count_runs().await;
    let response = send(fields, b"not an archive".to_vec()).await.unwrap();
    assert_eq!(response.status(), 422);
    let forged = vec![
        ("_csrf", "x".repeat(32)),
        ("username", "ann".into()),
        ("environment_id", "4".into()),
    ];
    let response = send(forged, b"whatever".to_vec()).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(app.count_runs().await, runs);
}

#[tokio::test]
async fn a_manifest_of_many_files_is_read_past_the_usual_body_limit() {
    let app = TestApp::spawn().await;
    let files: Vec<Value> = (0..15_000)
        .map(|i| {
            entry(
                &format!("pkg/module_with_a_long_name_{i:05}.py"),
                0o100644,
                format!("x = {i}\n").as_bytes(),
            )
        })
        .collect();
    let manifest = json!({"username": "ann", "name": "many", "files": files});
    assert!(
        manifest.to_string().len() > 2 * 1024 * 1024,
        "over axum's default 2 MiB"
    );
    let response = app.post_json("/api/v1/trees/missing", &manifest).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["missing"].as_array().unwrap().len(), 15_000);
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

#[tokio::test]
async fn retention_deletes_unused_trees_and_then_their_contents() {
    let app = TestApp::spawn_with(&[], |c| {
        c.retention_days = Some(0);
        c.retention_interval_secs = 1;
    })
    .await;
    let content = b"def test_ok():\n    pass\n";
    assert_eq!(upload(&app, content).await.status(), 201);
    let manifest =
        json!({"username": "ann", "name": "t", "files": [entry("test_ok.py", 0o100644, content)]});
    let response = app.post_json("/api/v1/trees", &manifest).await;
    assert!(response.status().is_success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while count(&app, "trees").await + count(&app, "tree_blobs").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the retention pass deletes them"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_username_past_its_quota_is_refused_naming_it_and_others_are_not() {
    let app = TestApp::spawn_with(&[], |c| c.tree_quota_bytes = 100).await;
    assert_eq!(upload(&app, &[b'a'; 60]).await.status(), 201);
    let response = upload(&app, &[b'b'; 60]).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("TREE_QUOTA_BYTES"),
        "{body}"
    );
    assert_eq!(count(&app, "tree_blobs").await, 1, "nothing written");
    // content already stored costs nothing more
    assert_eq!(upload(&app, &[b'a'; 60]).await.status(), 201);
    let sha = format!("{:x}", Sha256::digest([b'b'; 60]));
    let response = app
        .client
        .put(app.url(&format!("/api/v1/blobs/{sha}?username=bob")))
        .header("content-type", "application/octet-stream")
        .body(vec![b'b'; 60])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "bob has a quota of his own");
}
