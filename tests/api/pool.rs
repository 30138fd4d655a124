//! Warm sandboxes: pre-started containers, one per run, never reused.

use std::{process::Command, time::Duration};

use serde_json::Value;

use crate::helpers::{id, TestApp};

async fn warm_pool_app(extra: &[(&str, &str)], size: usize, image: Option<String>) -> TestApp {
    let app = TestApp::spawn_with(extra, |c| {
        c.warm_pool = Some(size);
        if let Some(image) = image {
            c.runner_image = image;
        }
    })
    .await;
    pool_ready(&app, size).await;
    app
}

async fn pool_ready(app: &TestApp, size: usize) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let health: Value = app.get("/healthz").await.json().await.unwrap();
        if health["warm_pool"]["ready"].as_u64() == Some(size as u64) {
            return health;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool never filled: {health}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn pooled_containers(instance: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args([
            "ps",
            "-q",
            "--filter",
            &format!("label=te.instance={instance}"),
            "--filter",
            "name=pool",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

const PROBES: &str = r#"
import errno, os, socket, threading

def test_sandbox_holds_on_a_warm_container():
    assert open("/proc/net/route").read().splitlines()[1:] == []
    try:
        open("/probe", "w")
        raise AssertionError("root filesystem writable")
    except OSError as e:
        assert e.errno in (errno.EROFS, errno.EACCES)
    assert os.getuid() != 0
    assert not os.path.exists("/var/run/docker.sock")
    assert not any("DATABASE" in k or "TOKEN" in k for k in os.environ)
    stop, threads = threading.Event(), []
    try:
        for _ in range(400):
            t = threading.Thread(target=stop.wait); t.start(); threads.append(t)
    except RuntimeError:
        pass
    finally:
        stop.set()
        for t in threads: t.join()
    assert len(threads) < 256, len(threads)
"#;

const NOSY: &str = r#"
import os, subprocess

def test_leaves_traces_and_looks_for_others():
    found = [p for p in os.listdir("/tmp") if p.startswith("trace-")]
    procs = [p for p in os.listdir("/proc") if p.isdigit() and p != str(os.getpid())]
    cmdlines = [open(f"/proc/{p}/cmdline", "rb").read() for p in procs if os.path.exists(f"/proc/{p}/cmdline")]
    open(f"/tmp/trace-{os.environ['TE_RUN_ID']}", "w").write("here")
    subprocess.Popen(["sleep", "300"])
    assert found == [], f"saw another run's files: {found}"
    assert not any(b"sleep" in c for c in cmdlines), "saw another run's processes"
"#;

#[tokio::test]
async fn the_sandbox_and_limits_hold_on_warm_containers() {
    let app = warm_pool_app(&[("test_probes.py", PROBES)], 2, None).await;
    app.set_limits(40, 256, 120).await;
    app.set_limits(41, 512, 3).await;
    let probe = app.create_run(42, &["test_probes.py"]).await;
    let probe = app.wait_finished(id(&probe), Duration::from_secs(60)).await;
    assert_eq!(
        probe["status"],
        "success",
        "{probe} {:?}",
        app.log_text(id(&probe)).await
    );
    assert_eq!(probe["sandbox"], "warm");

    pool_ready(&app, 2).await;
    let hog = app.create_run(40, &["resources/test_memory_hog.py"]).await;
    let sleeper = app.create_run(41, &["slow/test_one_minute.py"]).await;
    let hog = app.wait_finished(id(&hog), Duration::from_secs(60)).await;
    let sleeper = app
        .wait_finished(id(&sleeper), Duration::from_secs(60))
        .await;
    assert_eq!(hog["sandbox"], "warm");
    assert!(
        hog["reason"]
            .as_str()
            .unwrap()
            .starts_with("killed: out of memory (limit 256 MiB"),
        "{hog}"
    );
    let logs = app.log_text(id(&hog)).await.join("\n");
    assert!(
        !logs.contains("allocated 320 MiB"),
        "the 256 MiB limit was applied, not the pool's 512: {logs}"
    );
    assert_eq!(sleeper["sandbox"], "warm");
    assert_eq!(sleeper["status"], "timed_out", "{sleeper}");
    assert!(sleeper["timings_ms"]["pytest"].as_i64().unwrap() >= 3000);
}

#[tokio::test]
async fn two_runs_in_a_row_never_see_each_others_files_or_processes() {
    let app = warm_pool_app(&[("test_nosy.py", NOSY)], 2, None).await;
    for env in [43, 43, 44] {
        let run = app.create_run(env, &["test_nosy.py"]).await;
        let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
        assert_eq!(
            run["status"],
            "success",
            "{run} {:?}",
            app.log_text(id(&run)).await
        );
        assert_eq!(run["sandbox"], "warm");
        pool_ready(&app, 2).await;
    }
}

#[tokio::test]
async fn a_killed_warm_container_is_replaced_within_seconds() {
    let app = warm_pool_app(&[], 2, None).await;
    let before = pooled_containers(&app.instance);
    assert_eq!(before.len(), 2);
    let killed = Command::new("docker")
        .args(["kill", &before[0]])
        .output()
        .unwrap();
    assert!(killed.status.success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = pooled_containers(&app.instance);
        if now.len() == 2 && !now.contains(&before[0]) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool not healed: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = app.create_run(45, &["test_math.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success");
}

#[tokio::test]
async fn a_rebuilt_runner_image_replaces_the_warm_containers() {
    let tag = format!(
        "test-executor-runner:pooltest-{:08x}",
        rand::random::<u32>()
    );
    let base =
        std::env::var("RUNNER_IMAGE").unwrap_or_else(|_| "test-executor-runner:latest".into());
    assert!(Command::new("docker")
        .args(["tag", &base, &tag])
        .status()
        .unwrap()
        .success());
    let app = warm_pool_app(&[], 2, Some(tag.clone())).await;
    let before = pooled_containers(&app.instance);

    // "Rebuild": a new image under the same name.
    let dir = std::env::temp_dir().join(format!("te-rebuild-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nLABEL rebuilt=\"{tag}\"\n"),
    )
    .unwrap();
    let built = Command::new("docker")
        .args(["build", "-q", "-t", &tag])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let now = pooled_containers(&app.instance);
        if now.len() == 2 && now.iter().all(|c| !before.contains(c)) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pool still on the old image: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let run = app.create_run(46, &["test_math.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success");
    drop(app);
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
}

#[tokio::test]
async fn without_a_pool_every_run_takes_the_plain_path() {
    let app = TestApp::spawn_with(&[], |c| c.warm_pool = Some(0)).await;
    let health: Value = app.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["warm_pool"]["size"], 0);
    let run = app.create_run(47, &["test_math.py"]).await;
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["status"], "success");
    assert_eq!(run["sandbox"], "plain");
    assert!(pooled_containers(&app.instance).is_empty());
}

fn cpu_shares(container: &str) -> Option<i64> {
    let out = Command::new("docker")
        .args(["inspect", "-f", "{{.HostConfig.CpuShares}}", container])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

#[tokio::test]
async fn waiting_sandboxes_have_the_configured_cpu_weight_and_a_claimed_one_the_default() {
    let app = TestApp::spawn_with(&[], |c| {
        c.warm_pool = Some(1);
        c.warm_pool_cpu_shares = 2;
    })
    .await;
    pool_ready(&app, 1).await;
    let waiting = pooled_containers(&app.instance);
    assert_eq!(waiting.len(), 1);
    assert_eq!(cpu_shares(&waiting[0]), Some(2));
    app.set_limits(48, 512, 5).await;
    let run = app.create_run(48, &["slow/test_one_minute.py"]).await;
    let name = format!("te-{}-run-{}", app.instance, id(&run));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let running = loop {
        let now = app.get_json(&format!("/api/v1/runs/{}", id(&run))).await;
        // pytest's first line comes after the claim gave the container its
        // limits (the rename that gives it the run's name may come first)
        if now["status"] == "running" && !app.log_text(id(&run)).await.is_empty() {
            if let Some(shares) = cpu_shares(&name) {
                break shares;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never running: {now}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(running, 1024, "the run's container has the default weight");
    let run = app.wait_finished(id(&run), Duration::from_secs(60)).await;
    assert_eq!(run["sandbox"], "warm", "{run}");
}
