//! No environment stays held by a run that no executor follows: a run left
//! running by its own (live) executor — its task ended without recording an
//! outcome, e.g. because the database was down then — is taken over by that
//! executor's reconciler, resumed from its container and ended.

use std::{process::Command, time::Duration};

use crate::helpers::{id, TestApp};

#[tokio::test]
async fn a_run_its_live_executor_no_longer_follows_is_resumed_and_ends() {
    let app = TestApp::spawn().await;
    // A first run tells which executor this app is, and which engine.
    let first = id(&app.create_run(90, &["test_math.py"]).await);
    app.wait_finished(first, Duration::from_secs(60)).await;
    let (worker_id, engine_id): (i64, String) =
        sqlx::query_as("select worker_id, engine_id from runs where id = $1")
            .bind(first)
            .fetch_one(&app.db)
            .await
            .unwrap();

    // The orphan: marked running by this very executor, its container alive,
    // but no task of the executor following it.
    let run_id: i64 = sqlx::query_scalar("select nextval('runs_id_seq')")
        .fetch_one(&app.db)
        .await
        .unwrap();
    let name = test_executor::executor::container_name(&app.instance, run_id);
    let image =
        std::env::var("RUNNER_IMAGE").unwrap_or_else(|_| "test-executor-runner:latest".into());
    let started = Command::new("docker")
        .args(["run", "-d", "--network", "none", "--name", &name])
        .args(["--label", &format!("te.instance={}", app.instance)])
        .args(["--label", &format!("te.run={run_id}")])
        .args([&image, "python3", "-c"])
        .arg("import time\nprint('orphan output', flush=True)\ntime.sleep(3)")
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    sqlx::query(
        "insert into runs (id, username, environment_id, files, file_sha256, status,
                           holds_environment, millicpus, memory_mb, pids_limit, timeout_secs,
                           started_at, worker_id, engine_id, record_token)
         values ($1, 'ann', 91, '{test_math.py}', '{x}', 'running', true, 1000, 512, 256, 600,
                 now(), $2, $3, md5('orphan'))",
    )
    .bind(run_id)
    .bind(worker_id)
    .bind(&engine_id)
    .execute(&app.db)
    .await
    .unwrap();

    // The reconciler looks every 10 s.
    let run = app.wait_finished(run_id, Duration::from_secs(45)).await;
    assert_ne!(run["status"], "running", "{run}");
    let log = app.log_text(run_id).await;
    assert_eq!(log, ["orphan output"], "its output stored once");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[90]["busy_run_id"].is_null(), "{}", envs[90]);
}
