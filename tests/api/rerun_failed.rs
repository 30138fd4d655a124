//! "Rerun failed tests": a run of only the failed and errored tests of a
//! finished run (API, page, terminal client), linked both ways, refused when
//! the files changed since unless asked to use the current content.

use std::{collections::BTreeSet, time::Duration};

use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

/// 20 tests: two fail (one of them parametrized), one errors in its fixture.
const TWENTY: &str = r#"
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("fixture broke")

@pytest.mark.parametrize("n", range(10))
def test_p(n):
    assert n != 3

def test_f1():
    assert 1 == 2

def test_e(broken):
    pass

@pytest.mark.parametrize("n", range(8))
def test_ok(n):
    assert n >= 0
"#;

async fn nodeids(app: &TestApp, run: i64) -> BTreeSet<String> {
    sqlx::query_scalar("select nodeid from run_tests where run_id = $1")
        .bind(run)
        .fetch_all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

async fn rerun(app: &TestApp, run: i64, body: Value) -> reqwest::Response {
    app.post_json(&format!("/api/v1/runs/{run}/rerun-failed"), &body)
        .await
}

#[tokio::test]
async fn only_the_failed_tests_run_again_and_a_changed_file_refuses_it() {
    let app = TestApp::spawn_with(&[("test_twenty.py", TWENTY)], |_| {}).await;
    let first = id(&app.create_run(1, &["test_twenty.py"]).await);
    let first_run = app.wait_finished(first, Duration::from_secs(60)).await;
    assert_eq!(first_run["status"], "failed", "{first_run}");
    assert_eq!(first_run["summary"]["passed"], 17, "{first_run}");
    let failed: BTreeSet<String> = [
        "test_twenty.py::test_p[3]",
        "test_twenty.py::test_f1",
        "test_twenty.py::test_e",
    ]
    .map(String::from)
    .into();

    let created = rerun(&app, first, json!({"username": "bob"})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["rerun_of"], first);
    assert_eq!(created["username"], "bob");
    let second = id(&created);
    let second_run = app.wait_finished(second, Duration::from_secs(60)).await;
    assert_eq!(second_run["status"], "failed", "{second_run}");
    assert_eq!(second_run["summary"]["collected"], 3, "{second_run}");
    assert_eq!(
        nodeids(&app, second).await,
        failed,
        "exactly the failed tests ran"
    );

    // Linked both ways on the pages.
    let page = app
        .get(&format!("/runs/{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Rerun failed tests"), "the button is offered");
    assert!(page.contains(&format!("href=\"/runs/{second}\"")), "{page}");
    let page = app
        .get(&format!("/runs/{second}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Rerun of") && page.contains(&format!("href=\"/runs/{first}\"")));

    // The file changed: refused, unless asked to use the current content.
    let path = app.tests_dir.join("test_twenty.py");
    std::fs::write(&path, format!("{TWENTY}\n# changed\n")).unwrap();
    let refused = rerun(&app, first, json!({"username": "bob"})).await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.unwrap();
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("test_twenty.py changed since run"),
        "{message}"
    );
    let runs = app.count_runs().await;
    let current = rerun(
        &app,
        first,
        json!({"username": "bob", "use_current_content": true}),
    )
    .await;
    assert_eq!(current.status(), 201);
    assert_eq!(app.count_runs().await, runs + 1);
    let third = app
        .wait_finished(id(&current.json().await.unwrap()), Duration::from_secs(60))
        .await;
    assert_eq!(third["summary"]["collected"], 3, "{third}");

    // A run without failures has nothing to rerun.
    let clean = id(&app.create_run(2, &["test_math.py"]).await);
    app.wait_finished(clean, Duration::from_secs(60)).await;
    let nothing = rerun(&app, clean, json!({"username": "bob"})).await;
    assert_eq!(nothing.status(), 409);
}

#[tokio::test]
async fn node_ids_must_name_tests_of_the_chosen_files() {
    let app = TestApp::spawn_with(&[("test_twenty.py", TWENTY)], |c| c.no_executor = true).await;
    for bad in [
        json!(["test_math.py::test_add"]),
        json!(["--collect-only"]),
        json!([]),
        json!(["test_twenty.py::test_f1\n"]),
    ] {
        let response = app
            .post_json(
                "/api/v1/runs",
                &json!({"username": "ann", "environment_id": 3, "files": ["test_twenty.py"], "node_ids": bad}),
            )
            .await;
        assert_eq!(response.status(), 422, "{bad}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"].as_str().unwrap().contains("node_ids"),
            "{body}"
        );
    }
    assert_eq!(app.count_runs().await, 0, "nothing was written");
}

#[tokio::test]
async fn the_client_reruns_the_failed_tests_and_exits_with_their_verdict() {
    let app = TestApp::spawn_with(&[("test_twenty.py", TWENTY)], |_| {}).await;
    let first = id(&app.create_run(4, &["test_twenty.py"]).await);
    app.wait_finished(first, Duration::from_secs(60)).await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"));
    command
        .args(["rerun-failed", &first.to_string(), "--user", "cli"])
        .env_clear()
        .env("TEST_EXECUTOR_URL", &app.address)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the client ended within 2 minutes")
        .expect("running the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "tests failed again:\n{stdout}"
    );
    assert!(stdout.contains("test_twenty.py::test_f1"), "{stdout}");
    assert!(
        !stdout.contains("test_ok"),
        "only the failed tests ran:\n{stdout}"
    );
}
