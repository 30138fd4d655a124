//! An OOM kill names the true peak, not the last one-second reading: a test
//! that grows in 32 MiB steps faster than the readings come is killed in a
//! 256 MiB environment; the reason's peak is at least the last total it
//! printed, and the test is listed as failed with the kill.

use std::time::Duration;

use crate::helpers::{id, remove_containers, TestApp};

const STEPS: &str = r#"
import time

def test_grows_in_steps():
    blocks = []
    while True:
        blocks.append(b"x" * (32 * 1024 * 1024))
        print(f"total {32 * len(blocks)} MiB", flush=True)
        time.sleep(0.05)
"#;

#[tokio::test]
async fn an_oom_kill_names_a_peak_at_least_the_last_total_and_lists_the_test_as_failed() {
    let app = TestApp::spawn_with(&[("oom/test_steps.py", STEPS)], |_| {}).await;
    sqlx::query("update environments set memory_mb = 256, timeout_secs = 120 where id = 48")
        .execute(&app.db)
        .await
        .unwrap();
    let run = app.create_run(48, &["oom/test_steps.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(90)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap();

    let printed: Vec<i64> = app
        .log_text(id(&run))
        .await
        .iter()
        .filter_map(|l| l.strip_prefix("total ")?.strip_suffix(" MiB")?.parse().ok())
        .collect();
    let last = *printed
        .last()
        .unwrap_or_else(|| panic!("no totals printed: {reason}"));
    let peak: i64 = reason
        .split("peak ")
        .nth(1)
        .and_then(|rest| rest.split(" MiB").next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the reason names a peak: {reason}"));
    assert!(
        reason.starts_with("killed: out of memory (limit 256 MiB"),
        "{reason}"
    );
    assert!(
        peak >= last,
        "peak {peak} MiB, but the test had {last} MiB: {reason}"
    );
    let resources = app
        .get_json(&format!("/api/v1/runs/{}/resources", id(&run)))
        .await;
    let stored = resources["peak_memory_bytes"].as_i64().unwrap() >> 20;
    assert_eq!(stored, peak, "the chart's peak is the same");

    let tests = app
        .get_json(&format!("/api/v1/runs/{}/tests", id(&run)))
        .await;
    let killed = &tests[0];
    assert_eq!(
        killed["nodeid"], "oom/test_steps.py::test_grows_in_steps",
        "{tests}"
    );
    assert_eq!(killed["outcome"], "failed");
    let message = killed["message"].as_str().unwrap();
    assert!(
        message.starts_with("killed: out of memory (limit 256 MiB"),
        "{message}"
    );
    assert_eq!(run["summary"]["failed"], 1, "counted as failed: {run}");
    remove_containers(&app.instance);
}

const VICTIM: &str = r#"
KEPT = []

def test_keeps():
    KEPT.append(b"k" * (160 * 1024 * 1024))

def test_small():
    local = b"s" * (128 * 1024 * 1024)
    assert local
"#;

/// The test at the kill is a victim: an earlier one keeps 160 MiB in a
/// module global, and the reason names that one too.
#[tokio::test]
async fn an_oom_kill_names_the_earlier_test_that_raised_the_memory_held() {
    let app = TestApp::spawn_with(&[("oom/test_victim.py", VICTIM)], |_| {}).await;
    sqlx::query("update environments set memory_mb = 256, timeout_secs = 120 where id = 47")
        .execute(&app.db)
        .await
        .unwrap();
    let run = app.create_run(47, &["oom/test_victim.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(90)).await;
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("killed: out of memory (limit 256 MiB"),
        "{reason}"
    );
    assert!(
        reason.contains("during oom/test_victim.py::test_small, after oom/test_victim.py::test_keeps raised the memory held by "),
        "{reason}"
    );
    remove_containers(&app.instance);
}
