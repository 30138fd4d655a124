//! The attach stream can end long before the container stops: a test closes
//! its stdout and stderr (on some engines that ends the stream), or the
//! connection to the engine drops. The executor's own timers must still
//! enforce the environment's time limit, and a cancel must still kill it.
//!
//! On this machine's engine (20.10) closing the descriptors does not end the
//! stream (measured), so the tests also cut the attach connection for real:
//! the app reaches the engine through a small proxy that drops it on demand.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

use serde_json::json;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream, UnixStream},
    sync::watch,
};

use crate::helpers::{id, TestApp};

/// A TCP front for the local engine's socket that can cut every attach
/// connection at once, or freeze them (open, but silent); the containers and
/// the engine's other calls go on.
struct EngineProxy {
    address: String,
    mode: watch::Sender<Mode>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Relay,
    Cut,
    Freeze,
    /// The engine stops answering: nothing new is passed on either way.
    Stall,
}

impl EngineProxy {
    async fn start() -> EngineProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("tcp://{}", listener.local_addr().unwrap());
        let (mode, modes) = watch::channel(Mode::Relay);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, modes.clone()));
            }
        });
        EngineProxy { address, mode }
    }

    fn cut_attach_streams(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    fn freeze_attach_streams(&self) {
        self.mode.send_replace(Mode::Freeze);
    }

    fn stall(&self) {
        self.mode.send_replace(Mode::Stall);
    }

    fn relay_again(&self) {
        self.mode.send_replace(Mode::Relay);
    }
}

async fn relay(client: TcpStream, mut modes: watch::Receiver<Mode>) {
    if *modes.borrow() == Mode::Stall {
        // Accept, answer nothing (the connection stays open meanwhile).
        std::future::pending::<()>().await
    }
    let Ok(engine) = UnixStream::connect("/var/run/docker.sock").await else {
        return;
    };
    let attach = Arc::new(AtomicBool::new(false));
    let (mut client_read, mut client_write) = client.into_split();
    let (mut engine_read, mut engine_write) = engine.into_split();
    let seen = attach.clone();
    let upstream_modes = modes.clone();
    let upstream = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            if *upstream_modes.borrow() == Mode::Stall {
                // Hold the request (and the connection) forever.
                std::future::pending::<()>().await
            }
            if buf[..n].windows(8).any(|w| w == b"/attach?") {
                seen.store(true, Ordering::SeqCst);
            }
            if engine_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        // The executor half-closes after the files (stdin's end): pass that
        // on and keep the output flowing.
        let _ = engine_write.shutdown().await;
        std::future::pending::<()>().await
    };
    let downstream = tokio::io::copy(&mut engine_read, &mut client_write);
    let changed = async {
        loop {
            let mode = *modes.borrow_and_update();
            if mode != Mode::Relay && attach.load(Ordering::SeqCst) {
                return mode;
            }
            if modes.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    };
    let mode = tokio::select! {
        _ = upstream => Mode::Relay,
        _ = downstream => Mode::Relay,
        mode = changed => mode,
    };
    if matches!(mode, Mode::Freeze | Mode::Stall) {
        // Keep both connections open and pass nothing on.
        let _held = (client_write, engine_read);
        std::future::pending::<()>().await
    }
}

/// An app whose engine is reached through `proxy`, without warm sandboxes
/// (their attach streams would be cut or frozen too).
async fn app_behind(proxy: &EngineProxy, extra: &[(&str, &str)]) -> TestApp {
    // Read once, when the app connects; cleared again so the docker CLI the
    // helpers run (also while the runtime is blocked) talks to the engine.
    std::env::set_var("DOCKER_HOST", &proxy.address);
    let app = TestApp::spawn_with(extra, |c| c.warm_pool = Some(0)).await;
    std::env::remove_var("DOCKER_HOST");
    app
}

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
    let proxy = EngineProxy::start().await;
    let app = app_behind(&proxy, &[("test_sleeper.py", SLEEPER)]).await;
    // Long enough for pytest to reach the test even on a loaded machine.
    app.set_limits(61, 512, 8).await;
    let run = app.create_run(61, &["test_sleeper.py"]).await;
    let run_id = id(&run);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["log_lines"].as_i64() > Some(0)
    })
    .await;
    proxy.cut_attach_streams();
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
    let proxy = EngineProxy::start().await;
    let app = app_behind(&proxy, &[("test_spinner.py", SPINNER)]).await;
    let run = app.create_run(62, &["test_spinner.py"]).await;
    let run_id = id(&run);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["status"] == "running" && r["log_lines"].as_i64() > Some(0)
    })
    .await;
    let name = test_executor::executor::container_name(&app.instance, run_id);
    proxy.cut_attach_streams();
    // Give the executor time to see its stream end while the container spins on.
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

/// Prints a line, then finishes normally a few seconds later.
const QUICK: &str = r#"
import time

def test_finishes_soon():
    print("started", flush=True)
    time.sleep(3)
"#;

#[tokio::test]
async fn a_run_whose_output_stream_hangs_open_ends_when_its_container_does() {
    let proxy = EngineProxy::start().await;
    let app = app_behind(&proxy, &[("test_quick.py", QUICK)]).await;
    let run_id = id(&app.create_run(63, &["test_quick.py"]).await);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["log_lines"].as_i64() > Some(0)
    })
    .await;
    proxy.freeze_attach_streams();
    // The environment's limit is 15 minutes: the run must end with its
    // container, seconds from now, not at the limit.
    let run = app.wait_finished(run_id, Duration::from_secs(30)).await;
    assert_ne!(run["status"], "timed_out", "{run}");
    assert!(
        seconds_between(&run, "started_at", "finished_at") < 25,
        "ended with its container: {run}"
    );
    let name = test_executor::executor::container_name(&app.instance, run_id);
    assert!(!container_running(&name), "{name} is dead");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[62]["busy_run_id"].is_null(), "{}", envs[62]);
}

#[tokio::test]
async fn a_silent_engine_keeps_the_run_until_it_can_see_it_dead_then_the_run_times_out() {
    let proxy = EngineProxy::start().await;
    let app = app_behind(&proxy, &[("test_sleeper.py", SLEEPER)]).await;
    app.set_limits(64, 512, 6).await;
    let run_id = id(&app.create_run(64, &["test_sleeper.py"]).await);
    app.wait_for(run_id, Duration::from_secs(60), |r| {
        r["log_lines"].as_i64() > Some(0)
    })
    .await;
    let name = test_executor::executor::container_name(&app.instance, run_id);

    // The engine stops answering until well past the 6 s limit: the kill
    // cannot be confirmed, so the run keeps its environment.
    proxy.stall();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let run = app.get_json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run["status"], "running", "{run}");
    let envs = app.get_json("/api/v1/environments").await;
    assert_eq!(envs[63]["busy_run_id"], run_id, "{}", envs[63]);
    assert!(container_running(&name), "{name} lives on");

    // It answers again: the executor kills, sees the container dead, ends it.
    proxy.relay_again();
    let run = app.wait_finished(run_id, Duration::from_secs(60)).await;
    assert_eq!(run["status"], "timed_out", "{run}");
    assert!(!container_running(&name), "{name} is dead");
    let envs = app.get_json("/api/v1/environments").await;
    assert!(envs[63]["busy_run_id"].is_null(), "{}", envs[63]);
}
