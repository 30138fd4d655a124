//! Which worker takes a run: an environment that requires a label waits for
//! a worker having it, and a draining worker finishes its run and takes no
//! more.

use super::*;

#[tokio::test]
async fn an_environment_requiring_a_label_waits_for_a_worker_having_it() {
    let database_url = fresh_database().await;
    let tests = test_files(&[("test_quick.py", QUICK)]);
    let web = Process::start("web", &database_url, &tests, &[]).await;
    let app = client_of(&web, &database_url).await;
    let _plain = Process::start("worker", &database_url, &tests, &[("WORKER_NAME", "plain")]).await;

    let refused = app
        .client
        .patch(app.url("/api/v1/environments/5"))
        .bearer_auth("operator-secret")
        .json(&json!({"required_labels": ["GPU!"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 422);
    let refused: Value = refused.json().await.unwrap();
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("\"GPU!\" is not a label"),
        "{refused}"
    );
    let changed = app
        .client
        .patch(app.url("/api/v1/environments/5"))
        .bearer_auth("operator-secret")
        .json(&json!({"required_labels": ["gpu"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 200);
    let changed: Value = changed.json().await.unwrap();
    assert_eq!(changed["required_labels"], json!(["gpu"]), "{changed}");

    let run_id = queue_run(&app, 5, "test_quick.py").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let run = app.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "queued", "{run}");
    assert_eq!(
        run["waiting_for"], "no online worker has label gpu",
        "{run}"
    );
    // Another environment's run goes meanwhile.
    let other = queue_run(&app, 6, "test_quick.py").await;
    let other = app.wait_finished(other, Duration::from_secs(60)).await;
    assert_eq!(other["worker"], "plain", "{other}");

    let _gpu = Process::start(
        "worker",
        &database_url,
        &tests,
        &[("WORKER_NAME", "gpu-box"), ("WORKER_LABELS", "gpu,big")],
    )
    .await;
    let run = app.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["worker"], "gpu-box", "{run}");
    let listed = workers(&app).await;
    let gpu = listed.iter().find(|w| w["name"] == "gpu-box").unwrap();
    assert_eq!(gpu["labels"], json!(["big", "gpu"]), "{gpu}");
}

#[tokio::test]
async fn a_draining_worker_finishes_its_run_and_takes_no_more() {
    let database_url = fresh_database().await;
    let tests = test_files(&[("test_ticker.py", TICKER), ("test_quick.py", QUICK)]);
    let web = Process::start("web", &database_url, &tests, &[]).await;
    let app = client_of(&web, &database_url).await;
    let _alpha = Process::start(
        "worker",
        &database_url,
        &tests,
        &[("WORKER_NAME", "alpha"), ("WORKER_LOST_AFTER", "4")],
    )
    .await;
    let run_id = queue_run(&app, 3, "test_ticker.py").await;
    app.wait_for(run_id, Duration::from_secs(60), |run| {
        run["status"] == "running"
    })
    .await;

    let anonymous = app
        .post_json("/api/v1/workers/alpha/drain", &json!({}))
        .await;
    assert_eq!(anonymous.status(), 401);
    let unknown = app
        .client
        .post(app.url("/api/v1/workers/nobody/drain"))
        .bearer_auth("operator-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let drained = app
        .client
        .post(app.url("/api/v1/workers/alpha/drain"))
        .bearer_auth("operator-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(drained.status(), 200);
    let drained: Value = drained.json().await.unwrap();
    assert_eq!(drained["state"], "draining", "{drained}");
    // The heartbeat (every second here) tells the worker.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let next = queue_run(&app, 4, "test_quick.py").await;

    let run = app.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(
        run["status"], "success",
        "the draining worker finished its run: {run}"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let next = app.get_json(&format!("/api/v1/runs/{next}")).await;
    assert_eq!(
        next["status"], "queued",
        "a draining worker takes no new run: {next}"
    );
    assert_eq!(
        next["waiting_for"], "no worker is online to take it",
        "{next}"
    );
    let page = app.get("/environments").await.text().await.unwrap();
    assert!(
        page.contains("id=\"worker-alpha\""),
        "the page lists the worker"
    );
    assert!(page.contains("draining"), "and its state");

    // Resumed, the worker takes the waiting run.
    let resumed = app
        .client
        .post(app.url("/api/v1/workers/alpha/resume"))
        .bearer_auth("operator-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let resumed: Value = resumed.json().await.unwrap();
    assert_eq!(resumed["state"], "online", "{resumed}");
    let next = app.wait_finished(id(&next), Duration::from_secs(60)).await;
    assert_eq!(
        next["status"], "success",
        "a resumed worker takes runs: {next}"
    );
    assert_eq!(next["worker"], "alpha", "{next}");
}
