//! A test that closes its stdout and stderr ends the attach stream long
//! before its container stops: the executor's own timers must still enforce
//! the environment's time limit, and a cancel must still kill it.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{id, TestApp};

/// Prints one line, closes both output streams (ending the attach stream),
/// then goes on living asleep…
const SLEEPER: &str = r#"
import os, time

def test_sleeps_in_the_dark():
    print("closing my output", flush=True)
    os.close(1)
    os.close(2)
    time.sleep(600)
"#;

/// …or spinning on the CPU.
const SPINNER: &str = r#"
import os

def test_spins_in_the_dark():
    print("closing my output", flush=True)
    os.close(1)
    os.close(2)
    while True:
        pass
"#;

fn container_running(name: &str) -> bool {
    let out = std::process::Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", name])
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
}

fn seconds_between(run: &serde_json::Value, from: &str, to: &str) -> i64 {
    let parse = |field: &str| {
        time::OffsetDateTime::parse(
            run[field].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    (parse(to) - parse(from)).whole_seconds()
}

#[tokio::test]
async fn a_run_that_closes_its_output_still_times_out_at_the_environments_limit() {
    let app = TestApp::spawn_with(&[("test_sleeper.py", SLEEPER)], |_| {}).await;
    // Long enough for pytest to reach the test even on a loaded machine.
    app.set_limits(61, 512, 8).await;
    let run = app.create_run(61, &["test_sleeper.py"]).await;
    let run_id = id(&run);
    let run = app.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "timed_out", "{run}");
    assert!(
        seconds_between(&run, "started_at", "finished_at") < 25,
        "killed near the 8 s limit: {run}"
    );
    let log = app.log_text(run_id).await.join("\n");
    assert!(log.contains("closing my output"), "{log}");
    assert!(log.contains("time limit of 8 s reached"), "{log}");
    let name = test_executor::executor::container_name(&app.instance, run_id);
    assert!(!container_running(&name), "{name} is dead");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[60]["busy_run_id"].is_null(), "{}", envs[60]);
}

#[tokio::test]
async fn a_run_that_closes_its_output_can_still_be_cancelled() {
    let app = TestApp::spawn_with(&[("test_spinner.py", SPINNER)], |_| {}).await;
    let run = app.create_run(62, &["test_spinner.py"]).await;
    let run_id = id(&run);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["status"] == "running" && r["log_lines"].as_i64() > Some(0)
    })
    .await;
    let name = test_executor::executor::container_name(&app.instance, run_id);
    // Give the stream time to end while the container spins on.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(container_running(&name), "{name} still spins");
    let response = app
        .post_json(
            &format!("/api/v1/runs/{run_id}/cancel"),
            &json!({"username": "ann"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let run = app.wait_finished(run_id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["reason"], "cancelled by ann");
    assert!(!container_running(&name), "{name} is dead");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[61]["busy_run_id"].is_null(), "{}", envs[61]);
}
