//! Per-test results reported live by the runner's plugin.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

const MINUTE: Duration = Duration::from_secs(60);

const EVERY_OUTCOME: &str = r#"
import pytest

def test_pass_one(): pass
def test_pass_two(): pass
def test_fail(): assert 1 == 2

@pytest.mark.skip(reason="not today")
def test_skip(): pass

@pytest.mark.xfail(reason="known bug")
def test_xfail(): assert False

@pytest.mark.xfail(reason="fixed?")
def test_xpass(): pass

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

def test_error(broken): pass
"#;

const FORGER: &str = r#"
import sys

def test_prints_fake_records():
    fake = '\x1e' + '0' * 32 + ' {"t":"result","nodeid":"x::y","outcome":"failed","duration_ms":1}'
    print(fake)
    print(fake, file=sys.stderr)
    print('\x1e' + '0' * 32 + ' {"t":"collected","n":99}', file=sys.stderr)
"#;

const MANY: &str = r#"
import pytest

@pytest.mark.parametrize("n", range(5000))
def test_case(n):
    assert n >= 0
"#;

async fn run_to_end(app: &TestApp, env: i64, file: &str) -> Value {
    let run = app.create_run(env, &[file]).await;
    app.wait_finished(id(&run), MINUTE * 2).await
}

#[tokio::test]
async fn every_outcome_is_counted_as_pytest_counts_it() {
    let app = TestApp::spawn_with(&[("test_outcomes.py", EVERY_OUTCOME)], |_| {}).await;
    let run = run_to_end(&app, 1, "test_outcomes.py").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(
        run["summary"],
        json!({"collected": 7, "passed": 2, "failed": 1, "skipped": 1, "xfailed": 1, "xpassed": 1, "error": 1})
    );
    let tests = app
        .get_json(&format!("/api/v1/runs/{}/tests", id(&run)))
        .await;
    assert_eq!(tests.as_array().unwrap().len(), 7);
    assert_eq!(tests[0]["outcome"], "failed", "failures first: {tests}");
    assert!(
        tests[0]["message"]
            .as_str()
            .unwrap()
            .contains("assert 1 == 2"),
        "{tests}"
    );
    let errors = app
        .get_json(&format!("/api/v1/runs/{}/tests?outcome=error", id(&run)))
        .await;
    assert_eq!(errors.as_array().unwrap().len(), 1);
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("setup broke"),
        "{errors}"
    );
    assert_eq!(
        app.get(&format!("/api/v1/runs/{}/tests?outcome=weird", id(&run)))
            .await
            .status(),
        422
    );
}

#[tokio::test]
async fn results_and_the_current_test_are_visible_while_the_run_goes_on() {
    let app = TestApp::spawn().await;
    let run = app.create_run(2, &["test_slow.py"]).await;
    let live = app
        .wait_for(id(&run), MINUTE, |r| {
            r["status"] == "running"
                && r["summary"]["passed"].as_i64() >= Some(1)
                && r["current_test"].is_string()
        })
        .await;
    assert!(
        live["current_test"]
            .as_str()
            .unwrap()
            .starts_with("test_slow.py::"),
        "{live}"
    );
    assert!(live["summary"]["collected"].as_i64().unwrap() > 1);
    let done = app.wait_finished(id(&run), MINUTE).await;
    assert!(done["current_test"].is_null());
}

#[tokio::test]
async fn killed_runs_name_the_test_that_was_running() {
    let app = TestApp::spawn().await;
    app.set_limits(3, 128, 120).await;
    app.set_limits(4, 512, 3).await;
    let hog = app.create_run(3, &["resources/test_memory_hog.py"]).await;
    let sleeper = app.create_run(4, &["slow/test_one_minute.py"]).await;
    let hog = app.wait_finished(id(&hog), MINUTE).await;
    let sleeper = app.wait_finished(id(&sleeper), MINUTE).await;
    // (with the peak when a sample was taken before the kill)
    let reason = hog["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("killed: out of memory (limit 128 MiB")
            && reason.ends_with(
                " MiB) during resources/test_memory_hog.py::test_allocates_past_512_mib"
            )
            || reason == "killed: out of memory (limit 128 MiB) during resources/test_memory_hog.py::test_allocates_past_512_mib",
        "{reason}"
    );
    assert_eq!(sleeper["status"], "timed_out");
    assert!(
        sleeper["reason"]
            .as_str()
            .unwrap()
            .ends_with("during slow/test_one_minute.py::test_takes_about_a_minute"),
        "{sleeper}"
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_collected_is_an_error_naming_it() {
    let app = TestApp::spawn_with(
        &[
            ("test_broken.py", "def test_x(:\n    pass\n"),
            ("test_empty.py", "X = 1\n"),
        ],
        |_| {},
    )
    .await;
    let broken = run_to_end(&app, 5, "test_broken.py").await;
    assert_eq!(broken["status"], "error");
    let reason = broken["reason"].as_str().unwrap();
    assert!(
        reason.contains("test_broken.py") && reason.contains("SyntaxError"),
        "{reason}"
    );
    let empty = run_to_end(&app, 6, "test_empty.py").await;
    assert_eq!(empty["status"], "error");
    assert!(
        empty["reason"].as_str().unwrap().contains("no tests"),
        "{empty}"
    );
}

#[tokio::test]
async fn printed_text_that_looks_like_a_record_changes_nothing() {
    let app = TestApp::spawn_with(&[("test_forger.py", FORGER)], |_| {}).await;
    let run = run_to_end(&app, 7, "test_forger.py").await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["summary"]["collected"], 1);
    assert_eq!(run["summary"]["passed"], 1);
    assert_eq!(run["summary"]["failed"], 0);
    let logs = app.log_text(id(&run)).await.join("\n");
    assert!(
        logs.contains("x::y"),
        "the fake record is kept as a log line"
    );
}

#[tokio::test]
async fn a_test_alternating_on_the_run_id_is_flaky_and_one_always_failing_is_not() {
    let app = TestApp::spawn().await;
    for _ in 0..4 {
        let run = app
            .create_run(8, &["test_flaky.py", "test_failing.py"])
            .await;
        app.wait_finished(id(&run), MINUTE).await;
    }
    let flaky = app
        .get_json("/api/v1/tests/history?nodeid=test_flaky.py::test_depends_on_run_id_parity")
        .await;
    assert_eq!(flaky["flaky"], true, "{flaky}");
    let history = flaky["history"].as_array().unwrap();
    assert_eq!(history.len(), 4);
    assert!(
        history[0]["run_id"].as_i64() > history[1]["run_id"].as_i64(),
        "newest first"
    );
    assert_eq!(history[0]["file_sha256"].as_str().unwrap().len(), 64);
    let failing: Value = app.get_json("/api/v1/runs/1/tests?outcome=failed").await;
    let always = failing
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["nodeid"].as_str().unwrap().starts_with("test_failing.py"))
        .expect("a failing test");
    let nodeid = always["nodeid"].as_str().unwrap();
    let steady = app
        .get_json(&format!(
            "/api/v1/tests/history?nodeid={}",
            urlencode(nodeid)
        ))
        .await;
    assert_eq!(steady["flaky"], false, "{steady}");
    assert_eq!(app.get("/api/v1/tests/history").await.status(), 422);
}

#[tokio::test]
async fn the_junit_report_is_kept_and_lists_every_test() {
    let app = TestApp::spawn_with(&[("test_outcomes.py", EVERY_OUTCOME)], |_| {}).await;
    let run = run_to_end(&app, 9, "test_outcomes.py").await;
    let response = app.get(&format!("/runs/{}/junit.xml", id(&run))).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let xml = response.text().await.unwrap();
    let mut reader = quick_xml::Reader::from_str(&xml);
    let mut cases = 0;
    loop {
        match reader.read_event().expect("the report parses as XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e)
                if e.name().as_ref() == b"testcase" =>
            {
                cases += 1
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(cases, 7);
    assert_eq!(app.get("/runs/999/junit.xml").await.status(), 404);
}

#[tokio::test]
async fn a_run_of_5000_tests_stores_all_5000() {
    let app = TestApp::spawn_with(&[("test_many.py", MANY)], |_| {}).await;
    let run = run_to_end(&app, 10, "test_many.py").await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["summary"]["passed"], 5000);
    let stored: i64 =
        sqlx::query_scalar("select count(distinct nodeid) from run_tests where run_id = $1")
            .bind(id(&run))
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, 5000);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
