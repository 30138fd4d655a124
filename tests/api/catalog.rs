//! A hostile tests folder cannot bomb the catalog: ignore files and test
//! files that are symlinks to `/dev/zero` or FIFOs are never opened, and
//! the pages and the API that list the catalog answer at once.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{json, Value};

use crate::helpers::{fresh_database, test_files};

/// The server binary in a process of its own, so that a regression (an
/// abort, runtime threads stuck on a FIFO) shows as a dead server or a
/// timed-out request rather than taking the test down with it.
struct Server {
    child: Child,
    address: String,
    client: reqwest::Client,
    tests_dir: PathBuf,
}

impl Server {
    async fn start(tests_dir: PathBuf) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_test-executor"))
            .env("DATABASE_URL", fresh_database().await)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("TESTS_DIR", &tests_dir)
            .env("NO_EXECUTOR", "true")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the server binary");
        let server = Server {
            child,
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(1))
                .build()
                .unwrap(),
            tests_dir,
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/healthz", server.address))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not come up at {}", server.address);
    }

    /// GETs `path`, asserting a 200 within a second; returns the body.
    async fn quickly(&mut self, path: &str) -> String {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .send()
            .await;
        let alive = self.child.try_wait().unwrap().is_none();
        assert!(alive, "the server died answering GET {path}");
        let response = response.unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status(), 200, "GET {path}");
        response.text().await.unwrap()
    }

    async fn create_run(&self, environment: i64, file: &str) -> reqwest::Response {
        let body = json!({"username": "ann", "environment_id": environment, "files": [file]});
        let url = format!("{}/api/v1/runs", self.address);
        let sent = self.client.post(url).json(&body).send().await;
        sent.unwrap_or_else(|e| panic!("creating a run of {file}: {e}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.tests_dir);
    }
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Two projects whose `.gitignore` is a symlink to `/dev/zero` and a FIFO,
/// and loose test files that are the same.
async fn server_with_bombs() -> Server {
    let dir = test_files(&[
        ("zero/pyproject.toml", "[tool.pytest.ini_options]\n"),
        ("zero/test_z.py", "def test_z():\n    pass\n"),
        ("fifo/setup.cfg", "[metadata]\nname = fifo\n"),
        ("fifo/test_f.py", "def test_f():\n    pass\n"),
    ]);
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero/.gitignore")).unwrap();
    mkfifo(&dir.join("fifo/.gitignore"));
    std::os::unix::fs::symlink("/dev/zero", dir.join("test_zero.py")).unwrap();
    mkfifo(&dir.join("test_fifo.py"));
    Server::start(dir).await
}

#[tokio::test]
async fn ignore_files_that_are_dev_zero_or_a_fifo_leave_the_catalog_listing_the_rest() {
    let mut server = server_with_bombs().await;
    // twice: the server is still up and answers from its listing
    for _ in 0..2 {
        let files: Value =
            serde_json::from_str(&server.quickly("/api/v1/test-files").await).unwrap();
        let paths: Vec<&str> = files
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        for listed in ["zero/test_z.py", "fifo/test_f.py", "test_math.py"] {
            assert!(paths.contains(&listed), "{listed} in {paths:?}");
        }
        for never in ["test_zero.py", "test_fifo.py"] {
            assert!(!paths.contains(&never), "{never} in {paths:?}");
        }
        let form = server.quickly("/runs/new").await;
        assert!(form.contains("zero/test_z.py") && form.contains("fifo/test_f.py"));
    }
}

#[tokio::test]
async fn a_run_of_a_project_with_a_bombed_ignore_file_is_accepted_at_once() {
    let mut server = server_with_bombs().await;
    for (environment, file) in [(1, "zero/test_z.py"), (2, "fifo/test_f.py")] {
        let created = server.create_run(environment, file).await;
        assert_eq!(created.status(), 201, "{file}");
    }
    let refused = server.create_run(3, "test_fifo.py").await;
    assert_eq!(refused.status(), 422);
    let message = refused.text().await.unwrap();
    assert!(message.contains("test_fifo.py"), "{message}");
    server.quickly("/api/v1/test-files").await;
}
