//! Postgres restarts under a running run: output is kept and retried until
//! the database is back, the run ends with its true outcome and every line
//! stored once, and its environment is freed. The test makes a Postgres
//! cluster of its own (never the shared one) and drops it at the end.

use std::{process::Command, time::Duration};

use serde_json::Value;

use crate::helpers::TestApp;

const TICKER: &str = r#"
import time

def test_ticks_for_thirty_seconds():
    for i in range(30):
        print(f"tick {i:02d}", flush=True)
        time.sleep(1)
"#;

const VERSION: &str = "15";

/// A Postgres cluster made for one test, dropped (stopped first) when done,
/// whatever the test's outcome.
struct Cluster {
    name: String,
    port: u16,
}

fn run(command: &mut Command) {
    let out = command.output().expect("running a Postgres tool");
    assert!(
        out.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    fn create() -> Cluster {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Cluster {
            name: format!("te_fault_{:08x}", rand::random::<u32>()),
            port,
        };
        run(Command::new("pg_createcluster").args([
            VERSION,
            &cluster.name,
            "-p",
            &port.to_string(),
            "--start",
        ]));
        for sql in [
            "create role te_fault login password 'te_fault'",
            "create database te_fault owner te_fault",
            // As scripts/lib.sh does: the app's roles (migrations/0020_roles.sql).
            "create role te_web nologin",
            "create role te_worker nologin",
            "grant te_web, te_worker to te_fault",
        ] {
            run(Command::new("runuser").args([
                "-u",
                "postgres",
                "--",
                "psql",
                "-p",
                &port.to_string(),
                "-v",
                "ON_ERROR_STOP=1",
                "-c",
                sql,
            ]));
        }
        cluster
    }

    fn url(&self) -> String {
        format!(
            "postgres://te_fault:te_fault@127.0.0.1:{}/te_fault",
            self.port
        )
    }

    fn ctl(&self, action: &str) {
        run(Command::new("pg_ctlcluster").args([VERSION, &self.name, action]));
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("pg_dropcluster")
            .args(["--stop", VERSION, &self.name])
            .output();
    }
}

/// The run as the API shows it, once it is over; errors while the database
/// is away are expected and waited out.
async fn wait_over(app: &TestApp, run_id: i64, within: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let response = app.get(&format!("/api/v1/runs/{run_id}")).await;
        if response.status().is_success() {
            let run: Value = response.json().await.unwrap();
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                return run;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "run {run_id} not over in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_run_outlives_postgres_restarts_with_every_line_stored_once() {
    let cluster = Cluster::create();
    let app = TestApp::spawn_on(&cluster.url(), &[("test_ticker.py", TICKER)], |_| {}).await;
    let run_id = crate::helpers::id(&app.create_run(70, &["test_ticker.py"]).await);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["log_lines"].as_i64() >= Some(5)
    })
    .await;

    // A restart (every connection is dropped), then an outage longer than
    // the pool's 10 s wait for a connection, while the test keeps printing.
    cluster.ctl("restart");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.ctl("stop");
    tokio::time::sleep(Duration::from_secs(14)).await;
    cluster.ctl("start");

    let run = wait_over(&app, run_id, Duration::from_secs(120)).await;
    assert_eq!(run["status"], "success", "{run}");

    let lines: Vec<String> = sqlx::query_scalar(
        "select substring(line from 'tick \\d\\d') from run_logs
          where run_id = $1 and line ~ 'tick \\d\\d' order by seq",
    )
    .bind(run_id)
    .fetch_all(&app.db)
    .await
    .unwrap();
    let expected: Vec<String> = (0..30).map(|i| format!("tick {i:02}")).collect();
    assert_eq!(lines, expected, "every tick once, in order");
    let (stored, counted): (i64, i32) = sqlx::query_as(
        "select (select count(*) from run_logs where run_id = $1), log_lines from runs where id = $1",
    )
    .bind(run_id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, i64::from(counted), "no row lost or stored twice");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[69]["busy_run_id"].is_null(), "{}", envs[69]);
}
