//! A hostile tests folder cannot bomb the catalog: ignore files and test
//! files that are symlinks to `/dev/zero` or FIFOs are never opened, and
//! the pages and the API that list the catalog answer at once.

use std::path::Path;

use serde_json::Value;

use crate::{helpers::test_files, server_process::Server};

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
    Server::start(dir, &[("NO_EXECUTOR", "true")]).await
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
