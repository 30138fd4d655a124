//! A real project with dependencies, through the app: its first run builds
//! the dependency image (and says so while it waits), its second builds
//! nothing, and both count as pytest does by hand in that image.

use std::time::{Duration, Instant};

use crate::{
    helpers::{id, TestApp},
    projects_real::{app_counts, by_hand_in, tests_dir_with, Real},
};

/// A `src/` layout that reads its own version from package metadata, and
/// whose tests import freezegun from its `tests` extra.
const HUMANIZE: Real = Real {
    name: "humanize",
    version: "4.9.0",
    tests: &[
        "tests/test_filesize.py",
        "tests/test_i18n.py",
        "tests/test_number.py",
        "tests/test_time.py",
    ],
};

#[tokio::test]
async fn a_project_with_dependencies_builds_once_and_runs_as_pytest_does_by_hand() {
    let dir = tests_dir_with(&[&HUMANIZE]).await;
    // The sdist ships compiled translations (`*.mo`) that its `.gitignore`
    // leaves out, so a run (which honours `.gitignore`) sees what a checkout
    // has: none. Pytest by hand gets the same tree.
    remove_compiled_translations(&dir);
    let tests_dir = dir.clone();
    let app = TestApp::spawn_with(&[], move |c| c.tests_dir = tests_dir).await;
    let folder = HUMANIZE.folder();
    let files: Vec<String> = HUMANIZE
        .tests
        .iter()
        .map(|t| format!("{folder}/{t}"))
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();

    let first = app.create_run(1, &files).await;
    let waiting = app
        .wait_for(id(&first), Duration::from_secs(600), |run| {
            run["waiting_for"]
                .as_str()
                .is_some_and(|w| w.starts_with("installing dependencies"))
                || !matches!(run["status"].as_str(), Some("queued" | "running"))
        })
        .await;
    assert!(
        waiting["waiting_for"].is_string(),
        "the first run says it installs dependencies: {waiting}"
    );
    let first = app
        .wait_finished(id(&first), Duration::from_secs(600))
        .await;
    let logs = app.log_text(id(&first)).await;
    let tail = logs[logs.len().saturating_sub(30)..].join("\n");
    assert_eq!(first["status"], "success", "{first}\n{tail}");
    let image = first["image"].as_str().expect("the run names its image");
    assert!(image.starts_with("te-deps/"), "a dependency image: {image}");

    let expected = by_hand_in(image, &dir.join(&folder), HUMANIZE.tests, "/tmp/work").await;
    assert!(
        expected.0 > 100,
        "pytest by hand in the image: {expected:?}"
    );
    assert_eq!(app_counts(&first), expected, "{tail}");

    let started = Instant::now();
    let second = app.create_run(1, &files).await;
    let second = app
        .wait_finished(id(&second), Duration::from_secs(120))
        .await;
    let took = started.elapsed();
    assert_eq!(second["status"], "success", "{second}");
    assert_eq!(second["image"], image, "the second run reuses the image");
    assert_eq!(app_counts(&second), expected);
    let builds: i64 = sqlx::query_scalar("select count(*) from dependency_images")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(builds, 1, "one build for both runs");
    let projects = app.get_json("/api/v1/projects").await;
    let listed = &projects[0]["dependency_image"];
    assert_eq!(listed["state"], "ready", "{projects}");
    assert_eq!(listed["image"], image, "{projects}");
    let page = app.get("/projects").await.text().await.unwrap();
    assert!(
        page.contains(image) && page.contains("Build log"),
        "the projects page shows the image and its build log"
    );
    eprintln!("second run, POST to final: {took:?}");
    let _ = std::fs::remove_dir_all(dir);
}

fn remove_compiled_translations(dir: &std::path::Path) {
    for entry in walkdir::WalkDir::new(dir).into_iter().flatten() {
        if entry.path().extension().is_some_and(|e| e == "mo") {
            std::fs::remove_file(entry.path()).unwrap();
        }
    }
}
