//! "Find the polluting test": a test that fails after another set a module
//! global, among 30 tests, is traced to that test in at most 7 runs, each a
//! fresh sandbox running the node ids in the order given.

use std::time::Duration;

use serde_json::{json, Value};

use crate::{
    flaky_check::wait_check,
    helpers::{id, TestApp},
};

/// 30 tests; `test_b` fails only after `test_a` (the 13th) dirtied the module.
const POLLUTED: &str = r#"
import pytest

STATE = {"dirty": False}

@pytest.mark.parametrize("n", range(12))
def test_before(n):
    pass

def test_a():
    STATE["dirty"] = True

@pytest.mark.parametrize("n", range(12))
def test_between(n):
    pass

def test_b():
    assert not STATE["dirty"], "test_b found the module dirty"

@pytest.mark.parametrize("n", range(4))
def test_after(n):
    pass
"#;

#[tokio::test]
async fn the_bisect_names_the_test_that_pollutes_another_in_at_most_7_runs() {
    let app = TestApp::spawn_with(&[("test_polluted.py", POLLUTED)], |_| {}).await;
    let source = id(&app.create_run(5, &["test_polluted.py"]).await);
    let run = app.wait_finished(source, Duration::from_secs(60)).await;
    assert_eq!(run["summary"]["collected"], 30, "{run}");
    assert_eq!(run["summary"]["failed"], 1, "{run}");

    let created = app
        .post_json(
            &format!("/api/v1/runs/{source}/bisect"),
            &json!({"nodeid": "test_polluted.py::test_b"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["kind"], "bisect");
    assert_eq!(created["candidates"], 25, "the tests that ran before it");
    let check = wait_check(&app, id(&created), Duration::from_secs(240)).await;
    assert_eq!(check["status"], "done", "{check}");
    assert_eq!(check["verdict"]["verdict"], "found", "{check}");
    assert_eq!(
        check["verdict"]["polluter"], "test_polluted.py::test_a",
        "{check}"
    );
    let runs = check["runs"].as_array().unwrap();
    assert!(runs.len() <= 7, "{} runs: {check}", runs.len());
    assert_eq!(
        check["summary"],
        format!("fails after test_polluted.py::test_a ({} runs)", runs.len())
    );

    // The first run is the test alone (it passes), each later one a subset
    // of the earlier tests in their order, the test last.
    let first = app
        .get_json(&format!("/api/v1/runs/{}", runs[0]["run_id"]))
        .await;
    assert_eq!(first["node_ids"], json!(["test_polluted.py::test_b"]));
    assert_eq!(runs[0]["outcome"], "passed");
    for step in &runs[1..] {
        let run = app
            .get_json(&format!("/api/v1/runs/{}", step["run_id"]))
            .await;
        let ids: Vec<&str> = run["node_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(ids.last(), Some(&"test_polluted.py::test_b"));
        let ran: Vec<String> =
            sqlx::query_scalar("select nodeid from run_tests where run_id = $1 order by idx")
                .bind(step["run_id"].as_i64().unwrap())
                .fetch_all(&app.db)
                .await
                .unwrap();
        assert_eq!(ran, ids, "pytest ran the node ids in the order given");
        let failed = step["outcome"] == "failed";
        assert_eq!(failed, ids.contains(&"test_polluted.py::test_a"), "{step}");
    }

    // The client names it too.
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"));
    command
        .args(["bisect", &source.to_string(), "test_polluted.py::test_b"])
        .env_clear()
        .env("TEST_EXECUTOR_URL", &app.address)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(240), command.output())
        .await
        .expect("the client ended within 4 minutes")
        .expect("running the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("fails after test_polluted.py::test_a ("),
        "{stdout}"
    );
}

/// Tests that take a moment each, so both shards get going, and one that
/// always fails.
const SPLIT: &str = "import time\n\n\
    def test_1():\n    time.sleep(0.3)\n\n\
    def test_2():\n    time.sleep(0.3)\n\n\
    def test_3():\n    time.sleep(0.3)\n\n\
    def test_4():\n    time.sleep(0.3)\n\n\
    def test_5():\n    time.sleep(0.3)\n\n\
    def test_x():\n    assert False\n";

#[tokio::test]
async fn a_bisect_of_a_sharded_runs_test_bisects_the_order_of_the_shard_that_ran_it() {
    let app = TestApp::spawn_with(&[("test_split.py", SPLIT)], |_| {}).await;
    let created = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": 1, "files": ["test_split.py"],
                    "shards": [1, 2]}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let parent = id(&created.json().await.unwrap());
    let run = app.wait_finished(parent, Duration::from_secs(120)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let shard: i64 = sqlx::query_scalar(
        "select t.run_id from run_tests t join runs r on r.id = t.run_id
          where r.shard_of = $1 and t.nodeid = 'test_split.py::test_x'",
    )
    .bind(parent)
    .fetch_one(&app.db)
    .await
    .unwrap();
    let before: i64 = sqlx::query_scalar(
        "select count(*) from run_tests where run_id = $1 and idx <
           (select idx from run_tests where run_id = $1 and nodeid = 'test_split.py::test_x')",
    )
    .bind(shard)
    .fetch_one(&app.db)
    .await
    .unwrap();

    let answer = app
        .post_json(
            &format!("/api/v1/runs/{parent}/bisect"),
            &json!({"nodeid": "test_split.py::test_x"}),
        )
        .await;
    let status = answer.status();
    let body: Value = answer.json().await.unwrap();
    if before == 0 {
        // It ran first in its shard: nothing there can have polluted it.
        assert_eq!(status, 409, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(&format!("in run #{shard}")), "{error}");
    } else {
        assert_eq!(status, 201, "{body}");
        assert_eq!(
            body["run_id"], shard,
            "the shard's run is the source: {body}"
        );
        assert_eq!(
            body["candidates"], before,
            "the shard's tests before it: {body}"
        );
    }
}
