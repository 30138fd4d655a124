//! "Check for flakiness": a failed test run alone N times, one run at a
//! time in fresh sandboxes, and its verdict (broken, flaky k/N, passing);
//! the API, the pages and the terminal client; bad input refused with
//! nothing written.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{browser, csrf_of, id, TestApp};

/// `test_sometimes` fails one run in three: its run's id decides
/// (`TE_RUN_ID`), not a random draw, so this test is not flaky itself
/// while the checked test is (10 consecutive runs: 3 or 4 failures).
const TESTS: &str = r#"
import os

def test_sometimes():
    if int(os.environ["TE_RUN_ID"]) % 3 == 1:
        raise AssertionError("unlucky: one run in three fails")

def test_always():
    raise AssertionError("always broken")

def test_fine():
    pass
"#;

const FILE: &str = "test_checked.py";
const SOMETIMES: &str = "test_checked.py::test_sometimes";
const ALWAYS: &str = "test_checked.py::test_always";

/// A finished run of the file in which `test_sometimes` failed.
async fn failing_run(app: &TestApp, environment: i64) -> i64 {
    for _ in 0..3 {
        let run = id(&app.create_run(environment, &[FILE]).await);
        app.wait_finished(run, Duration::from_secs(60)).await;
        let failed: Option<String> =
            sqlx::query_scalar("select outcome from run_tests where run_id = $1 and nodeid = $2")
                .bind(run)
                .bind(SOMETIMES)
                .fetch_optional(&app.db)
                .await
                .unwrap();
        if failed.as_deref() == Some("failed") {
            return run;
        }
    }
    panic!("test_sometimes never failed in three runs");
}

async fn start(app: &TestApp, run: i64, body: Value) -> reqwest::Response {
    app.post_json(&format!("/api/v1/runs/{run}/flaky-check"), &body)
        .await
}

/// The check once it is over.
pub async fn wait_check(app: &TestApp, check: i64, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let json = app.get_json(&format!("/api/v1/checks/{check}")).await;
        if json["status"] != "running" {
            return json;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "check {check} not over in {within:?}: {json}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from {table}"))
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_flaky_test_is_flaky_k_of_10_and_an_always_failing_one_broken_10_of_10() {
    let app = TestApp::spawn_with(&[(FILE, TESTS)], |_| {}).await;
    let source = failing_run(&app, 1).await;

    let created = start(&app, source, json!({"nodeid": SOMETIMES})).await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["status"], "running", "{created}");
    assert_eq!(created["times"], 10);
    let flaky = wait_check(&app, id(&created), Duration::from_secs(240)).await;
    assert_eq!(flaky["status"], "done", "{flaky}");
    let verdict = &flaky["verdict"];
    assert_eq!(verdict["verdict"], "flaky", "{flaky}");
    let k = verdict["failed"].as_i64().unwrap();
    assert!((3..=4).contains(&k), "one run in three: {flaky}");
    assert_eq!(verdict["runs"], 10);
    assert_eq!(
        flaky["summary"],
        format!("flaky {k}/10 ({}% failed)", k * 10)
    );
    let messages = verdict["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{flaky}");
    assert!(
        messages[0]
            .as_str()
            .unwrap()
            .contains("unlucky: one run in three fails"),
        "{flaky}"
    );
    // Ten ordinary runs of the one test, one after another.
    let runs = flaky["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 10);
    let overlapping: i64 = sqlx::query_scalar(
        "select count(*) from runs a join runs b on a.check_id = b.check_id and a.id < b.id
          where a.check_id = $1 and b.started_at < a.finished_at",
    )
    .bind(id(&flaky))
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(overlapping, 0, "one run at a time");
    let step = app
        .get_json(&format!("/api/v1/runs/{}", runs[3]["run_id"]))
        .await;
    assert_eq!(step["node_ids"], json!([SOMETIMES]));
    assert_eq!(step["check_id"], id(&flaky));
    assert_eq!(step["environment_id"], 1);

    let broken = start(&app, source, json!({"nodeid": ALWAYS})).await;
    assert_eq!(broken.status(), 201);
    let broken = wait_check(
        &app,
        id(&broken.json().await.unwrap()),
        Duration::from_secs(240),
    )
    .await;
    assert_eq!(broken["summary"], "broken 10/10", "{broken}");
    assert_eq!(
        broken["verdict"]["messages"][0], "AssertionError: always broken",
        "{broken}"
    );

    // The pages: the check's own, and the test's history.
    let page = app
        .get(&format!("/checks/{}", id(&flaky)))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(&format!("flaky {k}/10")), "{page}");
    assert!(page.contains("unlucky: one run in three fails"), "{page}");
    let history = app
        .get("/tests?nodeid=test_checked.py%3A%3Atest_always")
        .await
        .text()
        .await
        .unwrap();
    assert!(history.contains("broken 10/10"), "{history}");
    assert!(
        history.contains(&format!("href=\"/checks/{}\"", id(&broken))),
        "{history}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_written() {
    let app = TestApp::spawn_with(&[(FILE, TESTS)], |_| {}).await;
    let source = failing_run(&app, 2).await;
    let (runs, checks) = (app.count_runs().await, count(&app, "checks").await);
    for (body, status, says) in [
        (json!({"nodeid": SOMETIMES, "times": 0}), 422, "times: 0"),
        (json!({"nodeid": SOMETIMES, "times": 51}), 422, "times: 51"),
        (
            json!({"nodeid": "test_checked.py::test_nope"}),
            422,
            "is not a test of run",
        ),
        (
            json!({"nodeid": "test_checked.py::test_fine"}),
            409,
            "did not fail",
        ),
        (json!({"nodeid": ALWAYS, "username": ""}), 422, ""),
    ] {
        let response = start(&app, source, body.clone()).await;
        assert_eq!(response.status(), status, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(says),
            "{body}: {error}"
        );
    }
    let missing = start(&app, 9999, json!({"nodeid": ALWAYS})).await;
    assert_eq!(missing.status(), 404);
    let bisect_first = app
        .post_json(
            &format!("/api/v1/runs/{source}/bisect"),
            &json!({"nodeid": "test_checked.py::test_sometimes"}),
        )
        .await;
    assert_eq!(
        bisect_first.status(),
        409,
        "it ran first: nothing before it"
    );
    assert_eq!(app.count_runs().await, runs, "no run written");
    assert_eq!(count(&app, "checks").await, checks, "no check written");

    // One check at a time per environment.
    let first = start(&app, source, json!({"nodeid": ALWAYS, "times": 2})).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let second = start(&app, source, json!({"nodeid": SOMETIMES, "times": 2})).await;
    assert_eq!(second.status(), 409);
    let error: Value = second.json().await.unwrap();
    let message = error["error"].as_str().unwrap();
    assert!(
        message.contains(&format!("already has check #{} running", id(&first))),
        "{message}"
    );
    assert_eq!(
        app.count_runs().await,
        runs + 1,
        "only the first check's run"
    );
    let over = wait_check(&app, id(&first), Duration::from_secs(120)).await;
    assert_eq!(over["summary"], "broken 2/2", "{over}");
}

#[tokio::test]
async fn the_pages_start_a_check_and_the_client_follows_one_to_its_verdict() {
    let app = TestApp::spawn_with(&[(FILE, TESTS)], |_| {}).await;
    let source = failing_run(&app, 3).await;
    let run_page = app
        .get(&format!("/runs/{source}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(run_page.contains("Check for flakiness"), "{run_page}");
    assert!(run_page.contains("Find the polluting test"), "{run_page}");

    let browser = browser();
    let csrf = csrf_of(&app, &browser, &format!("/runs/{source}")).await;
    let posted = browser
        .post(app.url(&format!("/runs/{source}/flaky-check")))
        .form(&[("_csrf", csrf.as_str()), ("nodeid", ALWAYS), ("times", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303, "{}", posted.text().await.unwrap());
    let location = posted.headers()["location"].to_str().unwrap().to_owned();
    let check: i64 = location.strip_prefix("/checks/").unwrap().parse().unwrap();
    wait_check(&app, check, Duration::from_secs(120)).await;

    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_test-executor"));
    command
        .args(["check-flaky", &source.to_string(), ALWAYS, "--times", "3"])
        .env_clear()
        .env("TEST_EXECUTOR_URL", &app.address)
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("the client ended within 2 minutes")
        .expect("running the client");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.starts_with("broken 3/3\n"), "{stdout}");
    assert!(stdout.contains("AssertionError: always broken"), "{stdout}");
    assert!(stderr.contains("of 3 runs"), "{stderr}");
}

#[tokio::test]
async fn cancelling_a_checks_run_ends_the_check_as_cancelled() {
    let app = TestApp::spawn_with(&[(FILE, TESTS)], |_| {}).await;
    let source = failing_run(&app, 8).await;
    // A run holding the environment: the check's first run waits in line.
    app.set_limits(8, 256, 60).await;
    let holder = id(&app.create_run(8, &["slow/test_one_minute.py"]).await);
    let created = start(&app, source, json!({"nodeid": ALWAYS, "times": 5})).await;
    assert_eq!(created.status(), 201);
    let check: Value = created.json().await.unwrap();
    let first = check["runs"][0]["run_id"].as_i64().unwrap();
    let run = app.get_json(&format!("/api/v1/runs/{first}")).await;
    assert_eq!(run["status"], "queued", "{run}");
    assert!(
        run["waiting_for"]
            .as_str()
            .unwrap()
            .contains("waiting in line for environment 8"),
        "{run}"
    );
    let cancelled = app
        .post_json(
            &format!("/api/v1/runs/{first}/cancel"),
            &json!({"username": "ann"}),
        )
        .await;
    assert_eq!(cancelled.status(), 200);
    let over = wait_check(&app, id(&check), Duration::from_secs(30)).await;
    assert_eq!(over["status"], "cancelled", "{over}");
    assert_eq!(
        over["reason"],
        format!("run #{first} was cancelled"),
        "{over}"
    );
    assert_eq!(over["runs"].as_array().unwrap().len(), 1, "no run after it");
    app.post_json(
        &format!("/api/v1/runs/{holder}/cancel"),
        &json!({"username": "ann"}),
    )
    .await;
}
