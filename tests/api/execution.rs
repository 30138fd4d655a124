use std::time::Duration;

use crate::helpers::{id, TestApp};

const MINUTE: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_passing_file_succeeds_with_exit_0_and_its_output_stored() {
    let app = TestApp::spawn().await;
    let run = app.create_run(1, &["test_math.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["exit_code"], 0);
    assert!(run["reason"].as_str().unwrap().contains("passed"), "{run}");
    assert!(run["started_at"].is_string() && run["finished_at"].is_string());
    let logs = app.log_text(id(&run)).await.join("\n");
    assert!(logs.contains("passed"), "{logs}");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[0]["busy_run_id"].is_null(), "environment freed");
}

#[tokio::test]
async fn a_failing_file_fails_with_exit_1() {
    let app = TestApp::spawn().await;
    let run = app.create_run(1, &["test_failing.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert_eq!(run["exit_code"], 1);
    assert!(run["reason"].as_str().unwrap().contains("failed"), "{run}");
}

#[tokio::test]
async fn a_memory_hog_is_killed_and_the_reason_names_memory() {
    let app = TestApp::spawn().await;
    app.set_limits(2, 128, 120).await;
    let run = app.create_run(2, &["resources/test_memory_hog.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE * 2).await;
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("out of memory") && reason.contains("128 MiB"),
        "{reason}"
    );
    assert_eq!(run["limits"]["memory_mb"], 128);
}

#[tokio::test]
async fn a_sleeper_past_the_deadline_times_out() {
    let app = TestApp::spawn().await;
    app.set_limits(3, 512, 3).await;
    let run = app.create_run(3, &["slow/test_one_minute.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(run["status"], "timed_out", "{run}");
    assert!(run["reason"].as_str().unwrap().contains("3 s"), "{run}");
    let started = time::OffsetDateTime::parse(
        run["started_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let finished = time::OffsetDateTime::parse(
        run["finished_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(
        (finished - started).whole_seconds() < 20,
        "killed near the deadline"
    );
}

#[tokio::test]
async fn cancelling_a_running_run_kills_it_and_frees_the_environment() {
    let app = TestApp::spawn().await;
    let run = app.create_run(4, &["slow/test_one_minute.py"]).await;
    let run_id = id(&run);
    app.wait_for(run_id, MINUTE, |r| {
        r["status"] == "running" && r["log_lines"].as_i64() > Some(0)
    })
    .await;
    let response = app
        .client
        .post(app.url(&format!("/api/v1/runs/{run_id}/cancel")))
        .json(&serde_json::json!({"username": "ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let run = app.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "cancelled");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(
        envs[3]["busy_run_id"].is_null(),
        "environment 4 free at once: {}",
        envs[3]
    );
    // the container is gone soon after
    let name = test_executor::executor::container_name(&app.instance, run_id);
    let mut gone = false;
    for _ in 0..50 {
        let out = std::process::Command::new("docker")
            .args(["inspect", &name])
            .output()
            .unwrap();
        if !out.status.success() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(gone, "container {name} removed");
    let again = app
        .client
        .post(app.url(&format!("/api/v1/runs/{run_id}/cancel")))
        .json(&serde_json::json!({"username": "ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
}

#[tokio::test]
async fn a_queued_run_can_be_cancelled_before_it_starts() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run_id = id(&app.create_run(5, &["test_math.py"]).await);
    let response = app
        .client
        .post(app.url(&format!("/api/v1/runs/{run_id}/cancel")))
        .json(&serde_json::json!({"username": "ann"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let run = app.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "cancelled");
    assert!(app.get_json("/api/v1/environments").await[4]["busy_run_id"].is_null());
}

#[tokio::test]
async fn nested_files_and_several_files_run_together_with_their_conftest() {
    let app = TestApp::spawn().await;
    let run = app
        .create_run(
            6,
            &["api/test_users.py", "api/v2/test_orders.py", "test_math.py"],
        )
        .await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(
        run["status"],
        "success",
        "{run} {:?}",
        app.log_text(id(&run)).await
    );
    let logs = app.log_text(id(&run)).await.join("\n");
    for file in ["api/test_users.py", "api/v2/test_orders.py", "test_math.py"] {
        assert!(logs.contains(file), "{file} ran: {logs}");
    }
}

#[tokio::test]
async fn a_missing_runner_image_ends_the_run_as_error_saying_so() {
    let app = TestApp::spawn_with(&[], |c| {
        c.runner_image = "test-executor-runner:no-such-tag".into()
    })
    .await;
    let run = app.create_run(1, &["test_math.py"]).await;
    let run = app.wait_finished(id(&run), MINUTE).await;
    assert_eq!(run["status"], "error");
    assert!(
        run["reason"].as_str().unwrap().contains("runner image"),
        "{run}"
    );
}
