//! The code under test is hostile: each attack is a test file of its own,
//! and the run must still end with the verdict the evidence supports.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{id, TestApp};

const WITHIN: Duration = Duration::from_secs(120);

/// Finds the plugin (and so the run's token) from inside the test process,
/// as hostile code can.
const FIND_PLUGIN: &str = r#"
import gc, os, sys

def plugin():
    te_plugin = sys.modules["te_plugin"]
    return next(o for o in gc.get_objects() if isinstance(o, te_plugin.Plugin))

def forge(body):
    os.write(2, b"\x1e" + plugin()._token + b" " + body + b"\n")
"#;

const EXIT_AFTER_FAILURE: &str = r#"
import os

def test_a():
    assert 1 == 2

def test_b():
    os._exit(0)
"#;

const PYTEST_EXIT_ZERO: &str = r#"
import pytest

def test_a():
    assert 1 == 2

def test_b():
    pytest.exit("all good, honestly", returncode=0)

def test_c():
    pass
"#;

const EXIT_ALONE: &str = r#"
import os

def test_a():
    os._exit(0)

def test_b():
    pass

def test_c():
    pass
"#;

const FAKE_SUMMARY: &str = r#"
def test_lies_in_print():
    print("=" * 30 + " 3 passed in 0.01s " + "=" * 30)
    assert False, "but it failed"
"#;

const LONG_IDS: &str = r#"
import pytest

@pytest.mark.parametrize("s", ["a" * 6000 + str(i) for i in range(3)])
def test_long(s):
    assert s
"#;

const DELETES_JUNIT: &str = r#"
import os, pytest

class Eraser:
    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self):
        try:
            os.remove("/tmp/te/junit.xml")
        except OSError:
            pass

def test_registers_the_eraser(request):
    request.config.pluginmanager.register(Eraser(), "eraser")
"#;

const HUGE_LINE: &str = r#"
import sys

def test_prints_one_50_mib_line():
    chunk = "x" * (1 << 20)
    for _ in range(50):
        sys.stdout.write(chunk)
    sys.stdout.flush()
"#;

const CLOSES_OUTPUT: &str = r#"
import os

def test_closes_its_output():
    os.close(1)
    os.close(2)

def test_after():
    pass
"#;

async fn attack(name: &str, content: &str) -> (TestApp, Value) {
    let file = format!("{name}.py");
    let content = format!("{FIND_PLUGIN}\n{content}");
    let app = TestApp::spawn_with(&[(&file, &content)], |_| {}).await;
    let run = app.create_run(1, &[&file]).await;
    let run = app.wait_finished(id(&run), WITHIN).await;
    (app, run)
}

fn reason(run: &Value) -> &str {
    run["reason"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn a_test_exiting_zero_after_a_failure_does_not_make_a_success() {
    let (_app, run) = attack("test_exit_after_failure", EXIT_AFTER_FAILURE).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        reason(&run).contains(
            "pytest stopped after 1 of 2 tests (exit status 0): test_exit_after_failure.py::test_b never reported"
        ),
        "{run}"
    );
}

#[tokio::test]
async fn pytest_exit_with_status_zero_after_a_failure_does_not_make_a_success() {
    let (_app, run) = attack("test_pytest_exit", PYTEST_EXIT_ZERO).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        reason(&run).contains("test_pytest_exit.py::test_b never reported"),
        "{run}"
    );
}

#[tokio::test]
async fn a_test_exiting_zero_with_others_pending_does_not_make_a_success() {
    let (_app, run) = attack("test_exit_alone", EXIT_ALONE).await;
    assert_eq!(run["status"], "error", "{run}");
    assert!(
        reason(&run).contains(
            "pytest stopped after 0 of 3 tests (exit status 0): test_exit_alone.py::test_a never reported, nor 2 more"
        ),
        "{run}"
    );
}

#[tokio::test]
async fn a_forged_record_with_an_unknown_outcome_is_dropped_and_counted() {
    let forger = r#"
def test_forges():
    forge(b'{"t":"result","nodeid":"x::y","outcome":"hacked"}')
    forge(b'{"t":"collected","n":"many"}')
    forge(b'{"t":"result","nodeid":7,"outcome":"passed"}')

def test_after():
    pass
"#;
    let (app, run) = attack("test_forged_outcome", forger).await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(
        reason(&run),
        "2 passed · 3 invalid records dropped",
        "{run}"
    );
    let tests = app
        .get_json(&format!("/api/v1/runs/{}/tests", id(&run)))
        .await;
    assert_eq!(tests.as_array().unwrap().len(), 2, "{tests}");
    let log = app.log_text(id(&run)).await.join("\n");
    assert!(log.contains("3 invalid records carrying the run's token were dropped"));
}

#[tokio::test]
async fn a_hundred_thousand_forged_collect_errors_end_in_a_bounded_error() {
    let flood = r#"
def test_floods():
    p = plugin()
    for i in range(100000):
        p.emit({"t": "collect_error", "nodeid": f"f{i}.py", "message": "nope"})
"#;
    let (app, run) = attack("test_collect_flood", flood).await;
    assert_eq!(run["status"], "error", "{run}");
    assert_eq!(
        reason(&run),
        "could not collect f0.py: nope (and 99999 more files)",
        "{run}"
    );
    // The server still answers, and a run after it is judged normally.
    let next = app.create_run(2, &["test_math.py"]).await;
    let next = app.wait_finished(id(&next), WITHIN).await;
    assert_eq!(next["status"], "success", "{next}");
}

#[tokio::test]
async fn printed_summary_lines_do_not_change_the_verdict() {
    let (_app, run) = attack("test_fake_summary", FAKE_SUMMARY).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(reason(&run), "1 failed", "{run}");
}

#[tokio::test]
async fn kilobyte_long_parametrised_node_ids_are_stored_and_searchable() {
    let (app, run) = attack("test_long_ids", LONG_IDS).await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(reason(&run), "3 passed", "{run}");
    let tests = app
        .get_json(&format!("/api/v1/runs/{}/tests", id(&run)))
        .await;
    let ids: Vec<&str> = tests
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["nodeid"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.iter().all(|n| n.len() <= 2048), "ids are cut");
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    let history: Value = app
        .client
        .get(app.url("/api/v1/tests/history"))
        .query(&[("nodeid", ids[1])])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["history"][0]["run_id"], run["id"], "{history}");
}

#[tokio::test]
async fn deleting_the_junit_report_leaves_the_verdict_alone() {
    let (app, run) = attack("test_deletes_junit", DELETES_JUNIT).await;
    assert_eq!(run["status"], "success", "{run}");
    let junit = app.get(&format!("/runs/{}/junit.xml", id(&run))).await;
    assert_eq!(junit.status(), 404);
}

#[tokio::test]
async fn an_inflated_junit_report_is_not_kept() {
    let inflate = r#"
def test_inflates():
    p = plugin()
    for _ in range(300):
        p.emit({"t": "junit", "data": "<x/>" * 8192})
"#;
    let (app, run) = attack("test_inflated_junit", inflate).await;
    assert_eq!(run["status"], "success", "{run}");
    let junit = app.get(&format!("/runs/{}/junit.xml", id(&run))).await;
    assert_eq!(junit.status(), 404);
    let log = app.log_text(id(&run)).await.join("\n");
    assert!(log.contains("JUnit report is larger than 8 MiB"), "{log}");
}

#[tokio::test]
async fn one_huge_line_is_cut_at_the_byte_cap_and_the_run_goes_on() {
    let (app, run) = attack("test_huge_line", HUGE_LINE).await;
    assert_eq!(run["status"], "success", "{run}");
    let log = app.log_text(id(&run)).await;
    let stored: usize = log.iter().map(String::len).sum();
    assert!(stored <= 32 * 1024 * 1024, "{stored} bytes stored");
    assert!(
        log.iter()
            .any(|l| l.contains("log cut here") && l.contains("the cap of 32 MiB")),
        "the marker says what was cut"
    );
}

#[tokio::test]
async fn closing_the_output_cannot_make_a_success() {
    let (_app, run) = attack("test_closes_output", CLOSES_OUTPUT).await;
    assert_eq!(run["status"], "error", "{run}");
    assert!(
        reason(&run).contains("test_closes_output.py::test_closes_its_output never reported"),
        "{run}"
    );
}
