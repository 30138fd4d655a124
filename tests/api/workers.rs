//! Several workers sharing one database, on two real Docker engines (the
//! second a dockerd of the test's own, see `engines.rs`), each a process of
//! the real binary: they share the queue, never claim a run twice, end the
//! runs of a lost worker, resume their own after a restart, honour labels
//! and draining. Both engines here report the same engine ID (one key file),
//! as hosts cloned from one image do.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{json, Value};
use sqlx::PgPool;

use crate::{
    engines::{Process, SecondEngine},
    helpers::{fresh_database, id, test_files, TestApp},
};

mod routing;

const QUICK: &str = "def test_quick():\n    assert 1 + 1 == 2\n";

const TICKER: &str = r#"
import time

def test_ticks():
    for i in range(60):
        print(f"tick {i:03d}", flush=True)
        time.sleep(0.1)
"#;

const SLEEPER: &str = r#"
import time

def test_sleeps():
    print("started", flush=True)
    time.sleep(120)
"#;

#[tokio::test]
async fn a_worker_reaches_a_remote_engine_over_tls_and_only_with_its_certificate() {
    let (engine, tls) = match SecondEngine::start_with_tls() {
        Ok(started) => started,
        Err(why) => {
            eprintln!("SKIPPED: a second Docker engine cannot start here: {why}");
            return;
        }
    };
    let database_url = fresh_database().await;
    let tests = test_files(&[("test_quick.py", QUICK)]);
    let web = Process::start("web", &database_url, &tests, &[]).await;
    let app = client_of(&web, &database_url).await;
    let cert_path = tls.cert_path.display().to_string();
    let _remote = Process::start(
        "worker",
        &database_url,
        &tests,
        &[
            ("WORKER_NAME", "remote"),
            ("DOCKER_HOST", &tls.host),
            ("DOCKER_TLS_VERIFY", "1"),
            ("DOCKER_CERT_PATH", &cert_path),
        ],
    )
    .await;
    let run_id = queue_run(&app, 8, "test_quick.py").await;
    let run = app.wait_finished(run_id, Duration::from_secs(90)).await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["worker"], "remote", "{run}");
    let listed = workers(&app).await;
    let remote = listed.iter().find(|w| w["name"] == "remote").unwrap();
    assert_eq!(remote["engine"], tls.host, "{remote}");

    // The engine refuses a client without a certificate its CA signed.
    let refused = Command::new("docker")
        .args(["-H", &tls.host, "--tls", "info"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "{refused:?}");
    drop(engine);
}

/// The second engine, or `None` after saying clearly why it cannot start.
fn second_engine() -> Option<SecondEngine> {
    match SecondEngine::start() {
        Ok(engine) => Some(engine),
        Err(why) => {
            eprintln!("SKIPPED: a second Docker engine cannot start here: {why}");
            None
        }
    }
}

/// A client of the web process (the helpers' API calls work on it).
async fn client_of(process: &Process, database_url: &str) -> TestApp {
    TestApp {
        address: process.address.clone(),
        db: PgPool::connect(database_url).await.unwrap(),
        client: reqwest::Client::new(),
        instance: String::new(),
        database: String::new(),
        tests_dir: std::path::PathBuf::new(),
    }
}

async fn queue_run(app: &TestApp, environment: i64, file: &str) -> i64 {
    let response = app
        .post_json(
            "/api/v1/runs",
            &json!({"username": "ann", "environment_id": environment, "files": [file],
                    "queue_if_busy": true}),
        )
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "creating a run: {body}");
    id(&body)
}

async fn workers(app: &TestApp) -> Vec<Value> {
    app.get_json("/api/v1/workers")
        .await
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_until(what: &str, within: Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done().await {
        assert!(Instant::now() < deadline, "{what} within {within:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn two_workers_on_two_engines_share_the_queue_and_never_claim_a_run_twice() {
    let Some(engine) = second_engine() else {
        return;
    };
    let database_url = fresh_database().await;
    let tests = test_files(&[("test_quick.py", QUICK)]);
    let web = Process::start("web", &database_url, &tests, &[]).await;
    let _alpha = Process::start("worker", &database_url, &tests, &[("WORKER_NAME", "alpha")]).await;
    let _beta = Process::start(
        "worker",
        &database_url,
        &tests,
        &[("WORKER_NAME", "beta"), ("DOCKER_HOST", &engine.host())],
    )
    .await;
    let app = client_of(&web, &database_url).await;

    let listed = workers(&app).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    for w in &listed {
        assert_eq!(w["state"], "online", "{w}");
        assert_eq!(w["slots"], 2, "{w}");
        assert!(w["cpus"].as_i64().unwrap() > 0, "{w}");
        assert!(w["memory_bytes"].as_i64().unwrap() > 0, "{w}");
        assert!(w["last_seen"].is_string(), "{w}");
    }
    assert!(
        listed[1]["engine"].as_str().unwrap().contains("te-engine-"),
        "{listed:?}"
    );

    let mut runs = Vec::new();
    for round in 0..2 {
        for environment in 1..=20 {
            runs.push((
                environment,
                round,
                queue_run(&app, environment, "test_quick.py").await,
            ));
        }
    }
    let mut by_worker = std::collections::HashMap::<String, usize>::new();
    for (_, _, run_id) in &runs {
        let run = app.wait_finished(*run_id, Duration::from_secs(300)).await;
        assert_eq!(run["status"], "success", "{run}");
        *by_worker
            .entry(run["worker"].as_str().expect("a worker").to_owned())
            .or_default() += 1;
    }
    assert_eq!(by_worker.values().sum::<usize>(), 40);
    assert!(
        by_worker.get("alpha").is_some_and(|n| *n > 0),
        "{by_worker:?}"
    );
    assert!(
        by_worker.get("beta").is_some_and(|n| *n > 0),
        "{by_worker:?}"
    );

    // No two runs of one environment overlap in time.
    let overlaps: i64 = sqlx::query_scalar(
        "select count(*) from runs a join runs b
            on a.environment_id = b.environment_id and a.id < b.id
         where a.started_at < b.finished_at and b.started_at < a.finished_at",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(overlaps, 0, "runs of one environment overlapped");
    // No run claimed twice: each run's pytest ran once (one session header
    // in its log), and its container existed on one engine only.
    let twice: Vec<(i64, i64)> = sqlx::query_as(
        "select run_id, count(*) from run_logs where line like '%test session starts%'
          group by run_id having count(*) <> 1",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(twice.is_empty(), "pytest ran other than once: {twice:?}");
    let sessions: i64 = sqlx::query_scalar(
        "select count(distinct run_id) from run_logs where line like '%test session starts%'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(sessions, 40);
}

#[tokio::test]
async fn a_lost_worker_s_runs_end_naming_it_and_its_environments_free() {
    let Some(mut engine) = second_engine() else {
        return;
    };
    let database_url = fresh_database().await;
    let tests = test_files(&[("test_quick.py", QUICK), ("test_sleeper.py", SLEEPER)]);
    let lost_after = ("WORKER_LOST_AFTER", "3");
    let web = Process::start("web", &database_url, &tests, &[lost_after]).await;
    let app = client_of(&web, &database_url).await;
    let mut beta = Process::start(
        "worker",
        &database_url,
        &tests,
        &[
            ("WORKER_NAME", "beta"),
            ("DOCKER_HOST", &engine.host()),
            lost_after,
        ],
    )
    .await;
    let run_id = queue_run(&app, 7, "test_sleeper.py").await;
    app.wait_for(run_id, Duration::from_secs(60), |run| {
        run["status"] == "running" && run["log_lines"].as_i64() > Some(0)
    })
    .await;
    let _alpha = Process::start(
        "worker",
        &database_url,
        &tests,
        &[("WORKER_NAME", "alpha"), lost_after],
    )
    .await;

    // The host goes away: its worker and its engine, at once.
    beta.kill();
    engine.kill();
    let killed = Instant::now();
    let run = app.wait_finished(run_id, Duration::from_secs(3 + 15)).await;
    assert_eq!(run["status"], "error", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("worker beta lost (last seen "),
        "{reason}"
    );
    eprintln!("run ended {:?} after the kill", killed.elapsed());
    let listed = workers(&app).await;
    let beta_row = listed.iter().find(|w| w["name"] == "beta").unwrap();
    assert_eq!(beta_row["state"], "lost", "{beta_row}");

    // Its environment is free: a new run there succeeds on the survivor.
    let next = queue_run(&app, 7, "test_quick.py").await;
    let next = app.wait_finished(next, Duration::from_secs(60)).await;
    assert_eq!(next["status"], "success", "{next}");
    assert_eq!(next["worker"], "alpha", "{next}");

    // The host comes back: the leftover container goes, nothing runs again.
    engine.restart().expect("restarting the second engine");
    let leftover = format!("label=te.run={run_id}");
    assert!(
        !engine
            .docker(&["ps", "-aq", "--filter", &leftover])
            .unwrap()
            .trim()
            .is_empty(),
        "the engine kept the lost run's container"
    );
    let beta = Process::start(
        "worker",
        &database_url,
        &tests,
        &[
            ("WORKER_NAME", "beta"),
            ("DOCKER_HOST", &engine.host()),
            lost_after,
        ],
    )
    .await;
    wait_until(
        "the leftover container is removed",
        Duration::from_secs(30),
        async || {
            engine
                .docker(&["ps", "-aq", "--filter", &leftover])
                .unwrap()
                .trim()
                .is_empty()
        },
    )
    .await;
    let run = app.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "error", "still over: {run}");
    let sessions: i64 = sqlx::query_scalar(
        "select count(*) from run_logs where run_id = $1 and line like '%test session starts%'",
    )
    .bind(run_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(sessions, 1, "the lost run never ran again");
    let listed = workers(&app).await;
    let beta_row = listed.iter().find(|w| w["name"] == "beta").unwrap();
    assert_eq!(beta_row["state"], "online", "{beta_row}");
    drop(beta);
}

#[tokio::test]
async fn a_worker_killed_and_restarted_on_its_engine_resumes_its_run_with_every_line_once() {
    let Some(engine) = second_engine() else {
        return;
    };
    let database_url = fresh_database().await;
    let tests = test_files(&[("test_ticker.py", TICKER)]);
    let web = Process::start("web", &database_url, &tests, &[]).await;
    let app = client_of(&web, &database_url).await;
    let beta_env = [
        ("WORKER_NAME", "beta"),
        ("DOCKER_HOST", engine.host().leak() as &str),
    ];
    let mut beta = Process::start("worker", &database_url, &tests, &beta_env).await;
    let run_id = queue_run(&app, 9, "test_ticker.py").await;
    app.wait_for(run_id, Duration::from_secs(60), |run| {
        run["log_lines"].as_i64().unwrap_or(0) > 10
    })
    .await;
    beta.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _beta = Process::start("worker", &database_url, &tests, &beta_env).await;
    let run = app.wait_finished(run_id, Duration::from_secs(90)).await;
    assert_eq!(run["status"], "success", "{run}");
    assert_eq!(run["worker"], "beta", "{run}");
    let ticks: Vec<String> = app
        .log_text(run_id)
        .await
        .into_iter()
        // The first one follows pytest's file name on its line.
        .filter_map(|l| Some(l[l.find("tick ")?..].to_owned()))
        .collect();
    let expected: Vec<String> = (0..60).map(|i| format!("tick {i:03}")).collect();
    assert_eq!(ticks, expected, "every line once, in order");
}
