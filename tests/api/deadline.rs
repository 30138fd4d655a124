//! A run's container never outlives its deadline for long, even when no
//! executor watches it: its worker killed with SIGKILL and never started
//! again, the runner (PID 1) ends the container at the deadline plus its
//! grace, whatever the test does to stay alive.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    helpers::{remove_containers, test_files},
    server_process::Server,
};

/// The runner's grace past the deadline (GRACE_SECS in te_runner.py).
const GRACE: Duration = Duration::from_secs(30);
const TIMEOUT_SECS: u64 = 3;

/// Never ends by itself: ignores the signals a polite stop sends, tries to
/// stop PID 1, and starts a child that would outlive it.
const FOREVER: &str = r#"
import os, signal, subprocess, time

def test_forever():
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        signal.signal(s, signal.SIG_IGN)
    for s in (signal.SIGTERM, signal.SIGKILL, signal.SIGCHLD):
        try:
            os.kill(1, s)
        except OSError:
            pass
    subprocess.Popen(["sleep", "100000"])
    print("holding on", flush=True)
    while True:
        time.sleep(1)
"#;

/// The container's `running` flag and exit code; `None` once it is removed.
fn container_state(name: &str) -> Option<(bool, i64)> {
    let out = Command::new("docker")
        .args([
            "inspect",
            "-f",
            "{{.State.Running}} {{.State.ExitCode}}",
            name,
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let (running, code) = text.trim().split_once(' ')?;
    Some((running == "true", code.parse().ok()?))
}

async fn wait_for_output(server: &Server, run_id: i64, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let found: bool = sqlx::query_scalar(
            "select exists(select 1 from run_logs where run_id = $1 and line like $2)",
        )
        .bind(run_id)
        .bind(format!("%{line}%"))
        .fetch_one(&server.db)
        .await
        .unwrap();
        if found {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} never printed {line:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_container_whose_worker_was_killed_ends_itself_after_its_deadline_and_grace() {
    let tests_dir = test_files(&[("test_forever.py", FOREVER)]);
    let mut server = Server::start(tests_dir, &[("WARM_POOL", "0")]).await;
    let instance: String = sqlx::query_scalar("select id from installation")
        .fetch_one(&server.db)
        .await
        .unwrap();
    let _cleanup = Cleanup(instance.clone());
    sqlx::query("update environments set timeout_secs = $1 where id = 9")
        .bind(TIMEOUT_SECS as i32)
        .execute(&server.db)
        .await
        .unwrap();
    let created = server.create_run(9, "test_forever.py").await;
    assert_eq!(created.status(), 201);
    let run_id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    // the runner has read its deadline once the test prints
    wait_for_output(&server, run_id, "holding on").await;
    server.kill_9();
    let killed_at = Instant::now();
    let name = test_executor::executor::container_name(&instance, run_id);
    assert_eq!(
        container_state(&name).map(|s| s.0),
        Some(true),
        "running with nobody watching"
    );

    let limit = Duration::from_secs(TIMEOUT_SECS) + GRACE + Duration::from_secs(10);
    let ended = loop {
        match container_state(&name) {
            Some((true, _)) if killed_at.elapsed() < limit => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            state => break state,
        }
    };
    let took = killed_at.elapsed();
    assert_eq!(
        ended,
        Some((false, 124)),
        "ended by the runner after {took:?}"
    );
    assert!(
        took >= GRACE,
        "ended after {took:?}, before the grace was over"
    );
}

/// Removes the containers the test's server left on the engine.
struct Cleanup(String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        remove_containers(&self.0);
    }
}
