//! Races around an environment: a cancel never frees it while the container
//! lives, a newcomer never jumps ahead of the runs waiting in line, and a run
//! is never created in an environment being deleted.

use std::{process::Command, time::Duration};

use serde_json::{json, Value};

use crate::helpers::{id, TestApp};

fn container_running(name: &str) -> bool {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.State.Running}}", name])
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "true"
}

async fn holder(app: &TestApp, environment: i32) -> Option<i64> {
    sqlx::query_scalar("select id from runs where environment_id = $1 and holds_environment")
        .bind(environment)
        .fetch_optional(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cancelled_run_keeps_its_environment_until_its_container_is_seen_dead() {
    // A run whose executor is gone: web-only app, the run marked running by
    // a dead executor, its container alive on the engine.
    let web = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let run_id = id(&web.create_run(80, &["test_math.py"]).await);
    let instance: String = sqlx::query_scalar("select id from installation")
        .fetch_one(&web.db)
        .await
        .unwrap();
    let engine_id = Command::new("docker")
        .args(["info", "-f", "{{.ID}}"])
        .output()
        .unwrap();
    let engine_id = String::from_utf8_lossy(&engine_id.stdout).trim().to_owned();
    let name = test_executor::executor::container_name(&instance, run_id);
    let image =
        std::env::var("RUNNER_IMAGE").unwrap_or_else(|_| "test-executor-runner:latest".into());
    let started = Command::new("docker")
        .args(["run", "-d", "--network", "none", "--name", &name])
        .args(["--label", &format!("te.instance={instance}")])
        .args(["--label", &format!("te.run={run_id}")])
        .args([&image, "python3", "-c"])
        .arg("import time\nprint('alive', flush=True)\ntime.sleep(300)")
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    sqlx::query(
        "update runs set status = 'running', started_at = now(), worker_id = 4242,
                engine_id = $2, record_token = md5('x') where id = $1",
    )
    .bind(run_id)
    .bind(&engine_id)
    .execute(&web.db)
    .await
    .unwrap();

    let response = web
        .post_json(
            &format!("/api/v1/runs/{run_id}/cancel"),
            &json!({"username": "ann"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let run: Value = response.json().await.unwrap();
    assert_eq!(run["status"], "running", "not over while it lives: {run}");
    assert!(container_running(&name));
    assert_eq!(holder(&web, 80).await, Some(run_id), "environment 80 held");

    // An executor arrives: its reconciler takes the run over, kills the
    // container, sees it dead and only then ends the run.
    let executor = TestApp::spawn_on(&web.database_url().await, &[], |_| {}).await;
    let run = executor
        .wait_finished(run_id, Duration::from_secs(60))
        .await;
    assert_eq!(run["status"], "cancelled", "{run}");
    assert_eq!(run["reason"], "cancelled by ann");
    assert!(!container_running(&name), "{name} is dead");
    assert_eq!(holder(&executor, 80).await, None, "environment 80 free");
}

#[tokio::test]
async fn a_live_executor_frees_a_cancelled_environment_only_after_the_container_died() {
    let app = TestApp::spawn().await;
    let run_id = id(&app.create_run(81, &["slow/test_one_minute.py"]).await);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["status"] == "running" && r["log_lines"].as_i64() > Some(0)
    })
    .await;
    let name = test_executor::executor::container_name(&app.instance, run_id);
    let (path, body) = (
        format!("/api/v1/runs/{run_id}/cancel"),
        json!({"username": "ann"}),
    );
    let cancel = app.post_json(&path, &body);
    let watch = async {
        // The first moment the environment is seen free, the container must
        // already be dead (it cannot come back to life afterwards).
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while holder(&app, 81).await.is_some() {
            assert!(tokio::time::Instant::now() < deadline, "never freed");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        container_running(&name)
    };
    let (response, alive_when_freed) = tokio::join!(cancel, watch);
    assert_eq!(response.status(), 200);
    assert!(
        !alive_when_freed,
        "environment 81 was freed while {name} ran"
    );
    let run = app.wait_finished(run_id, Duration::from_secs(10)).await;
    assert_eq!(run["status"], "cancelled");
}

async fn create(app: &TestApp, environment: i32, queue: bool) -> reqwest::Response {
    app.post_json(
        "/api/v1/runs",
        &json!({"username": "cat", "environment_id": environment,
                "files": ["test_math.py"], "queue_if_busy": queue}),
    )
    .await
}

/// Ends the holder as the executor's finish does, without the promotion
/// that follows it: the moment a newcomer could jump the line.
async fn end_holder_without_promoting(app: &TestApp, run_id: i64) {
    sqlx::query(
        "update runs set status = 'success', holds_environment = false, finished_at = now()
          where id = $1",
    )
    .bind(run_id)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn twenty_concurrent_newcomers_never_jump_ahead_of_the_runs_waiting_in_line() {
    let app = TestApp::spawn_with(&[], |c| c.no_executor = true).await;
    let first = id(&app.create_run(82, &["test_math.py"]).await);
    let mut line = Vec::new();
    for _ in 0..2 {
        let response = create(&app, 82, true).await;
        assert_eq!(response.status(), 201);
        line.push(id(&response.json().await.unwrap()));
    }

    // The holder ends; twenty newcomers who would wait arrive at once.
    end_holder_without_promoting(&app, first).await;
    let responses = futures_util::future::join_all((0..20).map(|_| create(&app, 82, true))).await;
    for response in responses {
        assert_eq!(response.status(), 201);
        let run: Value = response.json().await.unwrap();
        assert_eq!(run["status"], "queued");
        assert!(
            run["waiting_for"]
                .as_str()
                .is_some_and(|w| w.contains("in line")),
            "a newcomer waits in line: {run}"
        );
    }
    assert_eq!(
        holder(&app, 82).await,
        Some(line[0]),
        "the oldest waiter holds it"
    );

    // The next holder ends; twenty newcomers who would not wait are refused,
    // naming the next waiter, now holding it.
    end_holder_without_promoting(&app, line[0]).await;
    let responses = futures_util::future::join_all((0..20).map(|_| create(&app, 82, false))).await;
    for response in responses {
        assert_eq!(response.status(), 409);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["holder_run_id"], line[1], "{body}");
    }
    assert_eq!(holder(&app, 82).await, Some(line[1]));
    let total: i64 = sqlx::query_scalar("select count(*) from runs where environment_id = 82")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(
        total, 23,
        "1 + 2 waiters + 20 newcomers; the refused made nothing"
    );
}

#[tokio::test]
async fn a_delete_racing_creates_leaves_no_run_in_a_deleted_environment() {
    // 100 runs stay queued (no executor): above the default per-user cap.
    let app = TestApp::spawn_with(&[], |c| {
        c.no_executor = true;
        c.max_queued_per_user = 1_000;
    })
    .await;
    for environment in 83..=92 {
        let delete = async {
            app.client
                .delete(app.url(&format!("/api/v1/environments/{environment}")))
                .bearer_auth("operator-secret")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        };
        let creates =
            futures_util::future::join_all((0..10).map(|_| create(&app, environment, true)));
        let (deleted_status, responses) = tokio::join!(delete, creates);
        let created = responses.iter().filter(|r| r.status() == 201).count();
        for response in &responses {
            assert!(
                matches!(response.status().as_u16(), 201 | 409),
                "create answered {}",
                response.status()
            );
        }
        let exists: bool =
            sqlx::query_scalar("select exists(select 1 from environments where id = $1)")
                .bind(environment)
                .fetch_one(&app.db)
                .await
                .unwrap();
        let runs: i64 = sqlx::query_scalar("select count(*) from runs where environment_id = $1")
            .bind(environment)
            .fetch_one(&app.db)
            .await
            .unwrap();
        assert_eq!(runs, created as i64);
        if exists {
            assert_eq!(deleted_status, 409, "refused while in use");
        } else {
            assert_eq!(deleted_status, 204);
            assert_eq!(runs, 0, "no run in deleted environment {environment}");
        }
    }
}
