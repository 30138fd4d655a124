//! The server killed with SIGKILL mid-run and started again: the run
//! completes, no line is lost or stored twice, the environment is freed.

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{json, Value};

use crate::helpers::{fresh_database, test_files};

const TICKER: &str = r#"
import sys, time

def test_ticks():
    for i in range(80):
        print(f"tick {i:03d}", flush=True)
        if i % 7 == 0:
            print(f"tock {i:03d}", file=sys.stderr, flush=True)
        time.sleep(0.1)
"#;

struct Server {
    child: Child,
    address: String,
}

impl Server {
    async fn start(database_url: &str, tests_dir: &std::path::Path) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_test-executor"))
            .env("DATABASE_URL", database_url)
            .env("BIND", format!("127.0.0.1:{port}"))
            .env("TESTS_DIR", tests_dir)
            .env("RUST_LOG", "warn")
            .env("MAX_PARALLEL_RUNS", "2")
            .env("WARM_POOL", "2")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the server binary");
        // Wrapped at once, so the child is killed and reaped on any panic.
        let server = Server {
            child,
            address: format!("http://127.0.0.1:{port}"),
        };
        for _ in 0..100 {
            if reqwest::get(format!("{}/healthz", server.address))
                .await
                .is_ok()
            {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not come up at {}", server.address);
    }

    fn kill_9(mut self) {
        self.child.kill().unwrap(); // SIGKILL on Unix
        self.child.wait().unwrap();
    }

    async fn run(&self, id: i64) -> Value {
        reqwest::get(format!("{}/api/v1/runs/{id}", self.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes what the servers of a test left on the engine.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(db) = std::process::Command::new("psql")
            .arg(&self.0)
            .args(["-tAc", "select id from installation"])
            .output()
        {
            crate::helpers::remove_containers(String::from_utf8_lossy(&db.stdout).trim());
        }
    }
}

async fn start_ticker_run(server: &Server) -> i64 {
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/runs", server.address))
        .json(&json!({"username": "ann", "environment_id": 20, "files": ["test_ticker.py"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap()
}

async fn wait_until(
    server: &Server,
    id: i64,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let run = server.run(id).await;
        if done(&run) {
            return run;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "waited in vain: {run}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_run_survives_a_killed_server_with_every_line_stored_once() {
    let database_url = fresh_database().await;
    let _cleanup = Cleanup(database_url.clone());
    let tests_dir = test_files(&[("test_ticker.py", TICKER)]);
    let server = Server::start(&database_url, &tests_dir).await;
    let id = start_ticker_run(&server).await;
    wait_until(&server, id, Duration::from_secs(30), |r| {
        r["log_lines"].as_i64() >= Some(15)
    })
    .await;
    server.kill_9();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let server = Server::start(&database_url, &tests_dir).await;
    let run = wait_until(&server, id, Duration::from_secs(60), |r| {
        r["status"] != "running"
    })
    .await;
    assert_eq!(run["status"], "success", "{run}");

    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let lines: Vec<String> = sqlx::query_scalar(
        // pytest prints the file name first, on the line of the first tick
        "select substring(line from '(t[io]ck \\d{3})') from run_logs
          where run_id = $1 and line ~ 't[io]ck \\d{3}' order by seq",
    )
    .bind(id)
    .fetch_all(&db)
    .await
    .unwrap();
    let ticks: Vec<&String> = lines.iter().filter(|l| l.starts_with("tick")).collect();
    let expected: Vec<String> = (0..80).map(|i| format!("tick {i:03}")).collect();
    assert_eq!(
        ticks,
        expected.iter().collect::<Vec<_>>(),
        "every tick once, in order"
    );
    assert_eq!(lines.iter().filter(|l| l.starts_with("tock")).count(), 12);
    let holder: Option<i64> =
        sqlx::query_scalar("select id from runs where environment_id = 20 and holds_environment")
            .fetch_optional(&db)
            .await
            .unwrap();
    assert_eq!(holder, None, "environment 20 is free");
}

#[tokio::test]
async fn a_run_whose_container_vanished_while_the_server_was_down_ends_as_error() {
    let database_url = fresh_database().await;
    let _cleanup = Cleanup(database_url.clone());
    let tests_dir = test_files(&[("test_ticker.py", TICKER)]);
    let server = Server::start(&database_url, &tests_dir).await;
    let id = start_ticker_run(&server).await;
    wait_until(&server, id, Duration::from_secs(30), |r| {
        r["log_lines"].as_i64() >= Some(3)
    })
    .await;
    server.kill_9();
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let instance: String = sqlx::query_scalar("select id from installation")
        .fetch_one(&db)
        .await
        .unwrap();
    let name = test_executor::executor::container_name(&instance, id);
    let removed = Command::new("docker")
        .args(["rm", "-f", &name])
        .output()
        .unwrap();
    assert!(removed.status.success());

    let server = Server::start(&database_url, &tests_dir).await;
    let run = wait_until(&server, id, Duration::from_secs(30), |r| {
        r["status"] != "running"
    })
    .await;
    assert_eq!(run["status"], "error");
    assert!(
        run["reason"].as_str().unwrap().contains("run lost"),
        "{run}"
    );
    let envs: Value = reqwest::get(format!("{}/api/v1/environments", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(envs[19]["busy_run_id"].is_null());
}

async fn warm_pool_ids(server: &Server, instance: &str) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health: Value = reqwest::get(format!("{}/healthz", server.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let out = Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=te.instance={instance}"),
                "--filter",
                "name=pool",
            ])
            .output()
            .unwrap();
        let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(String::from)
            .collect();
        if health["warm_pool"]["ready"] == 2 && ids.len() == 2 {
            return ids;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool not settled: {health} {ids:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_restarted_server_leaves_no_orphaned_warm_containers() {
    let database_url = fresh_database().await;
    let _cleanup = Cleanup(database_url.clone());
    let tests_dir = test_files(&[]);
    let server = Server::start(&database_url, &tests_dir).await;
    let db = sqlx::PgPool::connect(&database_url).await.unwrap();
    let instance: String = sqlx::query_scalar("select id from installation")
        .fetch_one(&db)
        .await
        .unwrap();
    let before = warm_pool_ids(&server, &instance).await;
    server.kill_9();
    let server = Server::start(&database_url, &tests_dir).await;
    let after = warm_pool_ids(&server, &instance).await;
    assert!(
        after.iter().all(|c| !before.contains(c)),
        "old warm containers removed: {before:?} → {after:?}"
    );
}

const SLOW_FAIL: &str = r#"
import time

def test_slow_fail():
    time.sleep(1.5)
    raise AssertionError("slow and broken")
"#;

async fn get_json(server: &Server, path: &str) -> Value {
    reqwest::get(format!("{}{path}", server.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_check_goes_on_after_the_server_was_killed_in_its_middle() {
    let database_url = fresh_database().await;
    let _cleanup = Cleanup(database_url.clone());
    let tests_dir = test_files(&[("test_slow_fail.py", SLOW_FAIL)]);
    let server = Server::start(&database_url, &tests_dir).await;
    let client = reqwest::Client::new();
    let created: Value = client
        .post(format!("{}/api/v1/runs", server.address))
        .json(&json!({"username": "ann", "environment_id": 21, "files": ["test_slow_fail.py"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let source = created["id"].as_i64().unwrap();
    wait_until(&server, source, Duration::from_secs(60), |r| {
        r["status"] == "failed"
    })
    .await;
    let check: Value = client
        .post(format!(
            "{}/api/v1/runs/{source}/flaky-check",
            server.address
        ))
        .json(&json!({"nodeid": "test_slow_fail.py::test_slow_fail", "times": 4}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let check = check["id"].as_i64().expect("a check");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let json = get_json(&server, &format!("/api/v1/checks/{check}")).await;
        let runs = json["runs"].as_array().unwrap();
        // Killed once the second run's test is running in its container: a
        // run killed before its container exists is lost (`error`), and a
        // step's run ending `error` ends the check.
        if runs.len() == 2 && runs[1]["status"] == "running" {
            let run = get_json(&server, &format!("/api/v1/runs/{}", runs[1]["run_id"])).await;
            if run["current_test"].is_string() {
                break;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "{json}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.kill_9();
    tokio::time::sleep(Duration::from_secs(1)).await;

    let server = Server::start(&database_url, &tests_dir).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let over = loop {
        let json = get_json(&server, &format!("/api/v1/checks/{check}")).await;
        if json["status"] != "running" {
            break json;
        }
        assert!(tokio::time::Instant::now() < deadline, "{json}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(over["summary"], "broken 4/4", "{over}");
    assert_eq!(over["runs"].as_array().unwrap().len(), 4, "{over}");
}
