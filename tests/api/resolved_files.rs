//! The executor resolves a run's files again, whoever wrote the run's row:
//! a row written straight into the database that names a file through a
//! symlinked folder, outside the tests folder, that is not a regular file
//! or that is outside the run's project ends `error` naming the file, and
//! nothing of the file it points at reaches the container.

use std::time::Duration;

use crate::helpers::TestApp;

/// A run row as someone with the database could write it: queued, holding
/// its environment, naming whatever it likes.
async fn insert_run(app: &TestApp, environment: i32, file: &str, project: Option<&str>) -> i64 {
    sqlx::query_scalar(
        "insert into runs (username, environment_id, files, file_sha256, holds_environment,
                           millicpus, memory_mb, pids_limit, timeout_secs, project)
         values ('mallory', $1, array[$2], '{x}', true, 1000, 256, 128, 60, $3)
         returning id",
    )
    .bind(environment)
    .bind(file)
    .bind(project)
    .fetch_one(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_run_row_naming_a_file_the_catalog_would_not_list_ends_error_naming_it() {
    let marker = format!("SECRET-{:016x}", rand::random::<u64>());
    let outside = std::env::temp_dir().join(format!("te-outside-{:016x}", rand::random::<u64>()));
    std::fs::create_dir_all(&outside).unwrap();
    let leaky = format!("def test_leak():\n    print('{marker}')  # {marker}\n");
    std::fs::write(outside.join("test_x.py"), &leaky).unwrap();
    let app = TestApp::spawn_with(
        &[
            ("proj/setup.cfg", "[metadata]\nname = proj\n"),
            ("proj/test_p.py", &leaky),
        ],
        |_| {},
    )
    .await;
    std::os::unix::fs::symlink(&outside, app.tests_dir.join("link")).unwrap();
    std::os::unix::fs::symlink(&outside, app.tests_dir.join("proj/link")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(app.tests_dir.join("test_fifo.py"))
        .status()
        .unwrap();
    assert!(made.success());
    let absolute = outside.join("test_x.py").to_string_lossy().into_owned();
    let rows = [
        ("link/test_x.py", None),
        ("../link/test_x.py", None),
        (absolute.as_str(), None),
        ("test_fifo.py", None),
        ("proj/link/test_x.py", Some("proj")),
        ("proj/test_p.py", None),
    ];
    let mut runs = Vec::new();
    for (environment, (file, project)) in (40..).zip(rows) {
        runs.push((insert_run(&app, environment, file, project).await, file));
    }
    for (id, file) in runs {
        let run = app.wait_finished(id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "error", "{file}: {run}");
        let reason = run["reason"].as_str().unwrap();
        assert!(reason.contains(file), "{file}: {reason}");
        let logs = app.log_text(id).await.join("\n");
        assert!(!logs.contains(&marker), "{file}: {logs}");
    }
    let _ = std::fs::remove_dir_all(&outside);
}
